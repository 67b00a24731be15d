-- The registry, version 3 (step 3 of its former sqlitedb migrations, adopted
-- by Legacy "registry"): sliding sessions (idle_ns, cap_ns) and displays.
-- +goose Up
ALTER TABLE sessions ADD COLUMN idle_ns INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN cap_ns INTEGER NOT NULL DEFAULT 0;
UPDATE sessions SET cap_ns = expires_ns;
CREATE TABLE displays (
	id              TEXT    NOT NULL PRIMARY KEY,
	name            TEXT    NOT NULL,
	departments     TEXT    NOT NULL,
	created_by      TEXT    NOT NULL,
	created_ns      INTEGER NOT NULL,
	code_hash       TEXT    UNIQUE,
	code_expires_ns INTEGER NOT NULL DEFAULT 0,
	session_hash    TEXT    UNIQUE,
	csrf            TEXT    NOT NULL DEFAULT '',
	signed_in_ns    INTEGER NOT NULL DEFAULT 0,
	last_seen_ns    INTEGER NOT NULL DEFAULT 0
);
