-- The GB/T 28181 devices an admin registered, as the SQLite files 00001 and
-- 00002 leave them. The departments table is the registry's: the registry
-- migrates first. Ids are 20 digits; COLLATE "C" orders them bytewise, as
-- SQLite does.
-- +goose Up
CREATE TABLE gb28181_devices (
	id          TEXT COLLATE "C" NOT NULL PRIMARY KEY,
	name        TEXT   NOT NULL,
	department  TEXT   NOT NULL REFERENCES departments(id),
	password    TEXT   NOT NULL DEFAULT '',
	created_ns  BIGINT NOT NULL,
	transport   TEXT   NOT NULL DEFAULT ''
);
