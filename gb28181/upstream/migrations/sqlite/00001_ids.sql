-- The 20-digit IDs Vigil shows upper platforms for what has none of its own.
-- +goose Up
CREATE TABLE gb28181_upstream_ids (
		key    TEXT    NOT NULL PRIMARY KEY, -- "camera:<id>" or "department:<id>"
		kind   INTEGER NOT NULL,             -- 131 or 216
		serial INTEGER NOT NULL,             -- 1 … 9999999
		UNIQUE(kind, serial)
	) WITHOUT ROWID;
