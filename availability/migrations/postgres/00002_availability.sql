-- The availability tables at version 2 (the SQLite files 00001 and 00002 in one).
-- +goose Up
CREATE TABLE uptime (
	camera      TEXT COLLATE "C" NOT NULL,
	minute      BIGINT NOT NULL, -- unix seconds of the minute's start
	observed_ms BIGINT NOT NULL,
	online_ms   BIGINT NOT NULL,
	PRIMARY KEY (camera, minute)
);
CREATE TABLE offline (
	camera   TEXT COLLATE "C" NOT NULL,
	start_ms BIGINT NOT NULL, -- unix milliseconds
	end_ms   BIGINT,          -- NULL while the camera is still offline
	seen_ms  BIGINT NOT NULL, -- the last sample that saw it offline
	message  TEXT   NOT NULL DEFAULT '',
	PRIMARY KEY (camera, start_ms)
);
