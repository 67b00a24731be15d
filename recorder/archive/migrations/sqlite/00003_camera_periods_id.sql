-- camera_periods gets an id column, the rowid it had (the order in which
-- periods were opened, which Owners sorts ties by), so that the table reads
-- the same on PostgreSQL, which has no rowid.
-- +goose Up
CREATE TABLE camera_periods_new (
	id         INTEGER PRIMARY KEY,
	camera     TEXT    NOT NULL,
	uid        TEXT    NOT NULL,
	department TEXT    NOT NULL,
	since_ns   INTEGER NOT NULL,
	until_ns   INTEGER
);
INSERT INTO camera_periods_new(id, camera, uid, department, since_ns, until_ns)
	SELECT rowid, camera, uid, department, since_ns, until_ns FROM camera_periods;
DROP TABLE camera_periods;
ALTER TABLE camera_periods_new RENAME TO camera_periods;
CREATE INDEX camera_periods_camera ON camera_periods(camera, since_ns);
