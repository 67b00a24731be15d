-- The secret the nodes of a cluster sign their requests to each other with
-- (cluster/remote). One row, made by the first node that starts.
-- +goose Up
CREATE TABLE cluster_secret (
	id     INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	secret TEXT    NOT NULL
);

-- +goose Down
DROP TABLE cluster_secret;
