-- The registry, version 4 (step 4 of its former sqlitedb migrations, adopted
-- by Legacy "registry"): GB/T 28181: a camera's source, device and channel,
-- PTZ and missing flags.
-- +goose Up
ALTER TABLE cameras ADD COLUMN source TEXT NOT NULL DEFAULT 'rtsp';
ALTER TABLE cameras ADD COLUMN gb_device TEXT NOT NULL DEFAULT '';
ALTER TABLE cameras ADD COLUMN gb_channel TEXT NOT NULL DEFAULT '';
ALTER TABLE cameras ADD COLUMN gb_ptz INTEGER NOT NULL DEFAULT 0;
ALTER TABLE cameras ADD COLUMN gb_missing INTEGER NOT NULL DEFAULT 0;
CREATE INDEX cameras_gb_device ON cameras(gb_device) WHERE gb_device != '';
