-- Incarnations (see Own): each row is a period during which one
-- incarnation of a camera, in one department, owned the segments filed
-- under the camera's id; until_ns is NULL while it lasts.
-- +goose Up
ALTER TABLE segments ADD COLUMN camera_uid TEXT NOT NULL DEFAULT '';
ALTER TABLE segments ADD COLUMN department TEXT NOT NULL DEFAULT '';
CREATE TABLE camera_periods (
	camera     TEXT    NOT NULL,
	uid        TEXT    NOT NULL,
	department TEXT    NOT NULL,
	since_ns   INTEGER NOT NULL,
	until_ns   INTEGER
);
CREATE INDEX camera_periods_camera ON camera_periods(camera, since_ns);
