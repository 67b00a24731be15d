-- The GB/T 28181 devices an admin registered. The departments table is the
-- registry's: the registry migrates first.
-- +goose Up
CREATE TABLE gb28181_devices (
		id          TEXT    NOT NULL PRIMARY KEY,
		name        TEXT    NOT NULL,
		department  TEXT    NOT NULL REFERENCES departments(id),
		password    TEXT    NOT NULL DEFAULT '',
		created_ns  INTEGER NOT NULL
	) WITHOUT ROWID;
