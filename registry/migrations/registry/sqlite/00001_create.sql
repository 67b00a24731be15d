-- The registry, version 1 (step 1 of its former sqlitedb migrations, adopted
-- by Legacy "registry"): departments, cameras, users, sessions, tokens, the
-- append-only audit log, incidents.
-- +goose Up
CREATE TABLE departments (
	id      TEXT NOT NULL PRIMARY KEY,
	name_zh TEXT NOT NULL,
	name_en TEXT NOT NULL
);
INSERT INTO departments(id, name_zh, name_en) VALUES
	('flood-control',  '水利三防',   'Flood control'),
	('police',         '公安监控',   'Police'),
	('cold-storage',   '冷库监控',   'Cold storage'),
	('rental-housing', '出租屋管理', 'Rental housing');
CREATE TABLE cameras (
	id             TEXT    NOT NULL PRIMARY KEY,
	name           TEXT    NOT NULL,
	department     TEXT    NOT NULL REFERENCES departments(id),
	lat            REAL    NOT NULL DEFAULT 0,
	lng            REAL    NOT NULL DEFAULT 0,
	address        TEXT    NOT NULL DEFAULT '',
	main_url       TEXT    NOT NULL,
	sub_url        TEXT    NOT NULL DEFAULT '',
	transport      TEXT    NOT NULL,
	record         INTEGER NOT NULL,
	retention_days INTEGER NOT NULL,
	enabled        INTEGER NOT NULL,
	tags           TEXT    NOT NULL DEFAULT '[]',
	created_ns     INTEGER NOT NULL,
	updated_ns     INTEGER NOT NULL
);
CREATE INDEX cameras_department ON cameras(department);
CREATE TABLE users (
	username   TEXT    NOT NULL PRIMARY KEY,
	hash       TEXT    NOT NULL,
	role       TEXT    NOT NULL,
	created_ns INTEGER NOT NULL
);
CREATE TABLE user_departments (
	username   TEXT NOT NULL REFERENCES users(username) ON DELETE CASCADE,
	department TEXT NOT NULL REFERENCES departments(id),
	PRIMARY KEY (username, department)
);
CREATE TABLE sessions (
	id_hash    TEXT    NOT NULL PRIMARY KEY,
	csrf       TEXT    NOT NULL,
	username   TEXT    NOT NULL REFERENCES users(username) ON DELETE CASCADE,
	created_ns INTEGER NOT NULL,
	expires_ns INTEGER NOT NULL
);
CREATE TABLE tokens (
	id           TEXT    NOT NULL PRIMARY KEY,
	name         TEXT    NOT NULL,
	hash         TEXT    NOT NULL UNIQUE,
	username     TEXT    NOT NULL REFERENCES users(username) ON DELETE CASCADE,
	created_ns   INTEGER NOT NULL,
	last_used_ns INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE audit (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	time_ns  INTEGER NOT NULL,
	username TEXT    NOT NULL,
	address  TEXT    NOT NULL,
	action   TEXT    NOT NULL,
	camera   TEXT    NOT NULL,
	start_ns INTEGER NOT NULL DEFAULT 0,
	end_ns   INTEGER NOT NULL DEFAULT 0,
	result   TEXT    NOT NULL,
	detail   TEXT    NOT NULL
);
CREATE INDEX audit_time ON audit(time_ns);
-- +goose StatementBegin
CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit
	BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- +goose StatementEnd
-- +goose StatementBegin
CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit
	BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
-- +goose StatementEnd
CREATE TABLE incidents (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	title      TEXT    NOT NULL,
	start_ns   INTEGER NOT NULL,
	end_ns     INTEGER NOT NULL,
	note       TEXT    NOT NULL,
	created_by TEXT    NOT NULL,
	created_ns INTEGER NOT NULL
);
CREATE TABLE incident_cameras (
	incident INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
	camera   TEXT    NOT NULL,
	PRIMARY KEY (incident, camera)
);
CREATE INDEX incident_cameras_camera ON incident_cameras(camera);
