-- A component's tables as SQLite keeps them: flags as INTEGER 0/1, REAL,
-- BLOB, AUTOINCREMENT ids, foreign keys, and rows the migration inserts.
-- +goose Up
CREATE TABLE departments (
	id   TEXT NOT NULL PRIMARY KEY,
	name TEXT NOT NULL
);
INSERT INTO departments(id, name) VALUES ('police', 'Police'), ('flood', 'Flood control');
CREATE TABLE cameras (
	id         TEXT    NOT NULL PRIMARY KEY,
	department TEXT    NOT NULL REFERENCES departments(id),
	record     INTEGER NOT NULL,
	lat        REAL    NOT NULL DEFAULT 0,
	snapshot   BLOB,
	created_ns INTEGER NOT NULL,
	old_flag   INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE incidents (
	id     INTEGER PRIMARY KEY AUTOINCREMENT,
	title  TEXT    NOT NULL,
	closed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE incident_cameras (
	incident INTEGER NOT NULL REFERENCES incidents(id),
	camera   TEXT    NOT NULL REFERENCES cameras(id),
	PRIMARY KEY (incident, camera)
);
CREATE TABLE notes_scratch (x TEXT);
