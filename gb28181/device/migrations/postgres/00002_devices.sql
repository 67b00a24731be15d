-- The GB/T 28181 devices an admin registered, as the SQLite files 00001 and
-- 00002 leave them. The departments table is the registry's: the registry
-- migrates first. COLLATE "C" orders ids bytewise, as SQLite does, and is
-- the collation of departments.id.
-- +goose Up
CREATE TABLE gb28181_devices (
	id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	name        TEXT   NOT NULL,
	department  TEXT COLLATE "C" NOT NULL REFERENCES departments(id),
	password    TEXT   NOT NULL DEFAULT '',
	created_ns  BIGINT NOT NULL,
	transport   TEXT   NOT NULL DEFAULT ''
);
