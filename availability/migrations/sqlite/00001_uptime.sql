-- +goose Up
CREATE TABLE uptime (
	camera      TEXT    NOT NULL,
	minute      INTEGER NOT NULL, -- unix seconds of the minute's start
	observed_ms INTEGER NOT NULL,
	online_ms   INTEGER NOT NULL,
	PRIMARY KEY (camera, minute)
) WITHOUT ROWID;
