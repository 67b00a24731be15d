-- +goose Up
CREATE TABLE segments (
	id        INTEGER PRIMARY KEY,
	camera    TEXT    NOT NULL,
	start_ns  INTEGER NOT NULL,
	end_ns    INTEGER NOT NULL,
	bytes     INTEGER NOT NULL,
	key       TEXT    NOT NULL UNIQUE,
	init_size INTEGER NOT NULL,
	fragments BLOB    NOT NULL
);
CREATE INDEX segments_camera_start ON segments(camera, start_ns);
CREATE INDEX segments_camera_end ON segments(camera, end_ns);
