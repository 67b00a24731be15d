-- Devices announced offline (device.offline sent, device.online not yet).
-- +goose Up
CREATE TABLE gb28181_device_offline (
	device     TEXT   NOT NULL PRIMARY KEY,
	down_since BIGINT NOT NULL -- unix ms
);
