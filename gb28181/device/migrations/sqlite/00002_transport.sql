-- The media transport that last worked, tried first.
-- +goose Up
ALTER TABLE gb28181_devices ADD COLUMN transport TEXT NOT NULL DEFAULT '';
