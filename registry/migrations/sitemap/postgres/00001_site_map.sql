-- The site map on PostgreSQL (one row, version 1).
-- +goose Up
CREATE TABLE site_map (
	id           INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	image        BYTEA   NOT NULL,
	content_type TEXT    NOT NULL,
	width        BIGINT  NOT NULL,
	height       BIGINT  NOT NULL,
	refs         TEXT    NOT NULL DEFAULT '[]',
	etag         TEXT    NOT NULL,
	updated_ns   BIGINT  NOT NULL,
	updated_by   TEXT    NOT NULL
);
