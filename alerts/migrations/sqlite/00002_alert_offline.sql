-- cameras announced offline, so that camera.online follows a restart
-- +goose Up
CREATE TABLE alert_offline (
	camera     TEXT PRIMARY KEY,
	down_since INTEGER NOT NULL -- unix ms
);
