-- Alarms of the same millisecond are listed in the order they were stored:
-- by an id column, which PostgreSQL has too, instead of SQLite's rowid.
-- The table is rebuilt with id = the old rowid (INTEGER PRIMARY KEY is the
-- rowid), so the order of the alarms stored before stays.
-- +goose Up
CREATE TABLE gb28181_alarms_v2 (
	id          INTEGER PRIMARY KEY,
	camera      TEXT    NOT NULL,
	time_ms     INTEGER NOT NULL,
	device      TEXT    NOT NULL,
	priority    INTEGER NOT NULL,
	method      INTEGER NOT NULL,
	type        TEXT    NOT NULL,
	description TEXT    NOT NULL
);
INSERT INTO gb28181_alarms_v2(id, camera, time_ms, device, priority, method, type, description)
	SELECT rowid, camera, time_ms, device, priority, method, type, description FROM gb28181_alarms;
DROP TABLE gb28181_alarms;
ALTER TABLE gb28181_alarms_v2 RENAME TO gb28181_alarms;
CREATE INDEX gb28181_alarms_camera ON gb28181_alarms(camera, time_ms);
CREATE INDEX gb28181_alarms_time ON gb28181_alarms(time_ms);
