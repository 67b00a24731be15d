-- offline periods, for the playback timeline (events.go)
-- +goose Up
CREATE TABLE offline (
	camera   TEXT    NOT NULL,
	start_ms INTEGER NOT NULL, -- unix milliseconds
	end_ms   INTEGER,          -- NULL while the camera is still offline
	seen_ms  INTEGER NOT NULL, -- the last sample that saw it offline
	message  TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (camera, start_ms)
) WITHOUT ROWID;
