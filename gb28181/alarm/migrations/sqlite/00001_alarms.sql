-- +goose Up
CREATE TABLE gb28181_alarms (
		camera      TEXT    NOT NULL,
		time_ms     INTEGER NOT NULL,
		device      TEXT    NOT NULL,
		priority    INTEGER NOT NULL,
		method      INTEGER NOT NULL,
		type        TEXT    NOT NULL,
		description TEXT    NOT NULL
	);
	CREATE INDEX gb28181_alarms_camera ON gb28181_alarms(camera, time_ms);
	CREATE INDEX gb28181_alarms_time ON gb28181_alarms(time_ms);
