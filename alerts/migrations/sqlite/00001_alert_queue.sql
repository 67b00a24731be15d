-- +goose Up
CREATE TABLE alert_queue (
	seq     INTEGER PRIMARY KEY AUTOINCREMENT,
	webhook TEXT NOT NULL,    -- the webhook's URL
	body    BLOB NOT NULL,    -- the event's JSON, as sent
	created INTEGER NOT NULL  -- unix ms
);
CREATE INDEX alert_queue_webhook ON alert_queue(webhook, seq);
