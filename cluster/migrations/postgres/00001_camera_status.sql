-- The statuses of the cameras, as their owners last saw them (issue 16):
-- the node that runs a camera writes its status here, so that every node
-- answers GET /api/v1/status and the camera status for every camera.
-- PostgreSQL only (a cluster); a single node answers from memory.
-- +goose Up
CREATE TABLE camera_status (
	camera  TEXT        NOT NULL PRIMARY KEY,
	node    TEXT        NOT NULL,
	status  TEXT        NOT NULL, -- JSON: dispatch.Status
	updated TIMESTAMPTZ NOT NULL
);
