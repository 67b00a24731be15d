// Package gb28181_test checks what the GB/T 28181 stores share: their
// tables on the two database engines.
package gb28181_test

import (
	"context"
	"slices"
	"testing"

	"github.com/vigil-vms/vigil/gb28181/alarm"
	"github.com/vigil-vms/vigil/gb28181/device"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/gb28181/upstream"
	"github.com/vigil-vms/vigil/gb28181/watch"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

type never struct{}

func (never) DeviceState(string) sip.State { return sip.State{} }

// openAll migrates every GB/T 28181 table in db.
func openAll(t *testing.T, db *sqldb.DB) {
	t.Helper()
	ctx := context.Background()
	// the registry's departments table, as far as the devices' foreign key
	// needs it
	if _, err := db.Exec(ctx, `CREATE TABLE departments (id TEXT NOT NULL PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	devs, err := device.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	cams := func(context.Context) ([]ingest.Camera, error) { return nil, nil }
	if _, err := alarm.Open(ctx, db, alarm.Options{Cameras: cams}); err != nil {
		t.Fatal(err)
	}
	if _, err := watch.New(ctx, db, watch.Options{Devices: devs, States: never{}}); err != nil {
		t.Fatal(err)
	}
	if _, err := upstream.OpenChannels(ctx, db, "4401130000"); err != nil {
		t.Fatal(err)
	}
}

// columns lists a table's columns in order.
func columns(t *testing.T, db *sqldb.DB, table string) []string {
	t.Helper()
	q := `SELECT name FROM pragma_table_info(?) ORDER BY cid`
	if db.Dialect == sqldb.Postgres {
		q = `SELECT column_name FROM information_schema.columns
			WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`
	}
	var out []string
	rows, err := db.Query(context.Background(), q, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSchemasAgree: every GB/T 28181 table has the same columns, in the
// same order, on SQLite (migrated step by step) and PostgreSQL (one file at
// the newest version), so that a database copied from one to the other
// keeps all of them.
func TestSchemasAgree(t *testing.T) {
	lite, pg := testdb.OpenSQLite(t, ""), testdb.OpenPostgres(t)
	openAll(t, lite)
	openAll(t, pg)
	for _, table := range []string{"gb28181_devices", "gb28181_alarms", "gb28181_device_offline", "gb28181_upstream_ids"} {
		l, p := columns(t, lite, table), columns(t, pg, table)
		if len(l) == 0 || !slices.Equal(l, p) {
			t.Errorf("%s: SQLite %q, PostgreSQL %q", table, l, p)
		}
	}
}
