-- The registry, version 5 (step 5 of its former sqlitedb migrations, adopted
-- by Legacy "registry"): layouts and tours of the live wall; incident
-- status, update time and notes.
-- +goose Up
CREATE TABLE layouts (
	id            TEXT    NOT NULL PRIMARY KEY,
	name          TEXT    NOT NULL,
	grid          INTEGER NOT NULL,
	cells         TEXT    NOT NULL,
	shared        TEXT    NOT NULL DEFAULT '',
	has_tour      INTEGER NOT NULL DEFAULT 0,
	tour_layouts  TEXT    NOT NULL DEFAULT '[]',
	tour_dwell_ns INTEGER NOT NULL DEFAULT 0,
	owner         TEXT    NOT NULL REFERENCES users(username) ON DELETE CASCADE,
	updated_ns    INTEGER NOT NULL
);
CREATE INDEX layouts_owner ON layouts(owner);
ALTER TABLE incidents ADD COLUMN status TEXT NOT NULL DEFAULT 'open';
ALTER TABLE incidents ADD COLUMN updated_ns INTEGER NOT NULL DEFAULT 0;
CREATE TABLE incident_notes (
	id       INTEGER PRIMARY KEY AUTOINCREMENT,
	incident INTEGER NOT NULL REFERENCES incidents(id) ON DELETE CASCADE,
	author   TEXT    NOT NULL,
	time_ns  INTEGER NOT NULL,
	text     TEXT    NOT NULL
);
CREATE INDEX incident_notes_incident ON incident_notes(incident);
-- +goose StatementBegin
CREATE TRIGGER incident_notes_no_update BEFORE UPDATE ON incident_notes
	BEGIN SELECT RAISE(ABORT, 'incident notes are append-only'); END;
-- +goose StatementEnd
