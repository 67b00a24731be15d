-- Camera leases and cluster membership (issue 16). PostgreSQL only: a
-- single node on SQLite has no leases. All times are the database's clock,
-- so the nodes' clocks need not agree.
-- +goose Up
CREATE TABLE nodes (
	name      TEXT        NOT NULL PRIMARY KEY,
	advertise TEXT        NOT NULL,
	heartbeat TIMESTAMPTZ NOT NULL,
	state     TEXT        NOT NULL CHECK (state IN ('up', 'leaving', 'down')),
	since     TIMESTAMPTZ NOT NULL
);
CREATE TABLE leases (
	camera  TEXT        NOT NULL PRIMARY KEY,
	node    TEXT,                              -- NULL: free
	epoch   BIGINT      NOT NULL DEFAULT 0,    -- +1 on every change of owner
	expires TIMESTAMPTZ NOT NULL DEFAULT '-infinity'
);
CREATE INDEX leases_node ON leases(node);
