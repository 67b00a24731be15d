-- The registry's audit table (registry/registry.go), as a goose migration:
-- append-only in the database itself.
-- +goose Up
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
