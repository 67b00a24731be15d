-- Devices announced offline (device.offline sent, device.online not yet).
-- +goose Up
CREATE TABLE gb28181_device_offline (
		device     TEXT PRIMARY KEY,
		down_since INTEGER NOT NULL -- unix ms
	);
