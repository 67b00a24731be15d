-- The site map (one row), step 1 of its former sqlitedb migrations
-- (Legacy "sitemap").
-- +goose Up
CREATE TABLE site_map (
	id           INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	image        BLOB    NOT NULL,
	content_type TEXT    NOT NULL,
	width        INTEGER NOT NULL,
	height       INTEGER NOT NULL,
	refs         TEXT    NOT NULL DEFAULT '[]',
	etag         TEXT    NOT NULL,
	updated_ns   INTEGER NOT NULL,
	updated_by   TEXT    NOT NULL
);
