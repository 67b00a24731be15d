-- The registry's audit table (registry/registry.go), as a goose migration:
-- append-only in the database itself. A trigger refuses UPDATE and DELETE
-- row by row and TRUNCATE for the table; it binds every role, the table's
-- owner too (a REVOKE does not bind the owner). Dropping or disabling the
-- trigger takes an ALTER by the owner: a deliberate act, not a stray query.
-- +goose Up
CREATE TABLE audit (
	id       BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	time_ns  BIGINT NOT NULL,
	username TEXT   NOT NULL,
	address  TEXT   NOT NULL,
	action   TEXT   NOT NULL,
	camera   TEXT   NOT NULL,
	start_ns BIGINT NOT NULL DEFAULT 0,
	end_ns   BIGINT NOT NULL DEFAULT 0,
	result   TEXT   NOT NULL,
	detail   TEXT   NOT NULL
);
CREATE INDEX audit_time ON audit(time_ns);
-- +goose StatementBegin
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	RAISE EXCEPTION 'the audit log is append-only' USING ERRCODE = 'insufficient_privilege';
END
$$;
-- +goose StatementEnd
CREATE TRIGGER audit_no_change BEFORE UPDATE OR DELETE ON audit
	FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
	FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();
