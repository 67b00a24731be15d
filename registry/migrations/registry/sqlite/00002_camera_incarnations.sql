-- The registry, version 2 (step 2 of its former sqlitedb migrations, adopted
-- by Legacy "registry"): camera incarnations: a random uid per camera, never
-- reused, and the time since when it owns the recordings under its id.
-- +goose Up
ALTER TABLE cameras ADD COLUMN uid TEXT NOT NULL DEFAULT '';
ALTER TABLE cameras ADD COLUMN since_ns INTEGER NOT NULL DEFAULT 0;
UPDATE cameras SET uid = lower(hex(randomblob(16)));
CREATE UNIQUE INDEX cameras_uid ON cameras(uid);
ALTER TABLE incident_cameras ADD COLUMN camera_uid TEXT NOT NULL DEFAULT '';
UPDATE incident_cameras SET camera_uid = COALESCE((SELECT uid FROM cameras WHERE cameras.id = incident_cameras.camera), '');
