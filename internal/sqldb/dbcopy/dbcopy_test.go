package dbcopy

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

//go:embed testdata
var testdata embed.FS

// migrations are two components of the test, written for both engines:
// "fleet" (flags, reals, blobs, an identity id, a chain of foreign keys,
// rows its migration inserts) and "audit" (append-only by trigger, with a
// GENERATED ALWAYS identity on PostgreSQL).
func migrations(t *testing.T) []Migrate {
	var out []Migrate
	for _, c := range []string{"fleet", "audit"} {
		sub, err := fs.Sub(testdata, "testdata/"+c)
		if err != nil {
			t.Fatal(err)
		}
		m := sqldb.Migrations{Component: c, FS: sub}
		out = append(out, func(ctx context.Context, db *sqldb.DB) error { return db.Migrate(ctx, m) })
	}
	return out
}

func exec(t *testing.T, db *sqldb.DB, query string, args ...any) {
	t.Helper()
	if _, err := db.Exec(context.Background(), query, args...); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// source is an SQLite database migrated by the test's components and
// filled as a node would fill it.
func source(t *testing.T) *sqldb.DB {
	t.Helper()
	ctx := context.Background()
	db := testdb.OpenSQLite(t, "")
	for _, m := range migrations(t) {
		if err := m(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	// the user changed the departments the migration made
	exec(t, db, `DELETE FROM departments WHERE id = 'flood'`)
	exec(t, db, `INSERT INTO departments(id, name) VALUES ('cold', '冷库监控')`)
	exec(t, db, `UPDATE departments SET name = 'Police (city)' WHERE id = 'police'`)
	cams := []struct {
		id, dept string
		record   bool
		lat      float64
		snap     []byte
	}{
		{"cam-1", "police", true, 23.125, []byte{0, 1, 2, 0xff}},
		{"cam-2", "police", false, -0.5, nil},
		{"cam-3", "cold", true, 0, []byte{}},
	}
	for i, c := range cams {
		exec(t, db, `INSERT INTO cameras(id, department, record, lat, snapshot, created_ns, old_flag) VALUES(?, ?, ?, ?, ?, ?, 1)`,
			c.id, c.dept, c.record, c.lat, c.snap, int64(1_700_000_000_000_000_000)+int64(i))
	}
	// a text in a BLOB column (SQLite keeps what it is given)
	exec(t, db, `INSERT INTO cameras(id, department, record, snapshot, created_ns) VALUES('cam-4', 'cold', 0, 'jpeg', 4)`)
	// ids with a gap: the copy keeps them and the sequence goes past 7
	for _, id := range []int64{1, 2, 7} {
		exec(t, db, `INSERT INTO incidents(id, title, closed) VALUES(?, ?, ?)`, id, "incident "+string(rune('0'+id)), id == 2)
	}
	// incident 9 was deleted: AUTOINCREMENT does not give its id again,
	// and neither may PostgreSQL after the copy
	exec(t, db, `INSERT INTO incidents(id, title) VALUES(9, 'gone')`)
	exec(t, db, `DELETE FROM incidents WHERE id = 9`)
	exec(t, db, `INSERT INTO incident_cameras(incident, camera) VALUES(1, 'cam-1'), (7, 'cam-1'), (7, 'cam-3')`)
	for i := range 3 {
		exec(t, db, `INSERT INTO audit(time_ns, username, address, action, camera, result, detail) VALUES(?, 'admin', '127.0.0.1', 'view', 'cam-1', 'ok', ?)`,
			int64(1000+i), strings.Repeat("x", i))
	}
	return db
}

func TestCopy(t *testing.T) {
	ctx := context.Background()
	src := source(t)
	dst := testdb.OpenPostgres(t)
	var progress []string
	rep, err := Copy(ctx, src, dst, Options{Migrate: migrations(t), Progress: func(table string, rows int64) {
		progress = append(progress, table)
	}})
	if err != nil {
		t.Fatal(err)
	}
	var order []string
	rows := map[string]int64{}
	for _, tb := range rep.Tables {
		order = append(order, tb.Name)
		rows[tb.Name] = tb.Rows
	}
	if !slices.Equal(order, progress) {
		t.Errorf("progress %v, report %v", progress, order)
	}
	// parents first, though the names sort the other way
	pos := func(n string) int { return slices.Index(order, n) }
	if pos("departments") > pos("cameras") || pos("cameras") > pos("incident_cameras") || pos("incidents") > pos("incident_cameras") {
		t.Errorf("order %v does not follow the foreign keys", order)
	}
	want := map[string]int64{"departments": 2, "cameras": 4, "incidents": 3, "incident_cameras": 3, "audit": 3}
	if len(rows) != len(want) {
		t.Errorf("tables %v, want %v", rows, want)
	}
	for n, w := range want {
		if rows[n] != w {
			t.Errorf("%s: %d rows copied, want %d", n, rows[n], w)
		}
	}
	if rep.Rows() != 15 {
		t.Errorf("Rows() = %d", rep.Rows())
	}
	if !slices.Equal(rep.NotCopied, []string{"notes_scratch"}) {
		t.Errorf("not copied %v", rep.NotCopied)
	}
	for _, tb := range rep.Tables {
		switch tb.Name {
		case "cameras":
			if !slices.Equal(tb.Dropped, []string{"old_flag"}) {
				t.Errorf("cameras dropped %v", tb.Dropped)
			}
		case "departments":
			if tb.Replaced != 2 {
				t.Errorf("departments: replaced %d seeded rows, want 2", tb.Replaced)
			}
		case "incidents", "audit":
			if len(tb.Sequences) != 1 {
				t.Errorf("%s: sequences %v", tb.Name, tb.Sequences)
			}
		}
	}

	// the departments are the file's, not the migration's
	depts := map[string]string{}
	r, err := dst.Query(ctx, `SELECT id, name FROM departments`)
	if err != nil {
		t.Fatal(err)
	}
	for r.Next() {
		var id, name string
		r.Scan(&id, &name)
		depts[id] = name
	}
	r.Close()
	if len(depts) != 2 || depts["police"] != "Police (city)" || depts["cold"] != "冷库监控" {
		t.Errorf("departments %v", depts)
	}
	// booleans, reals, blobs (NULL and empty apart), bigints
	type cam struct {
		record  bool
		lat     float64
		snap    []byte
		created int64
	}
	for id, w := range map[string]cam{
		"cam-1": {true, 23.125, []byte{0, 1, 2, 0xff}, 1_700_000_000_000_000_000},
		"cam-2": {false, -0.5, nil, 1_700_000_000_000_000_001},
		"cam-3": {true, 0, []byte{}, 1_700_000_000_000_000_002},
		"cam-4": {false, 0, []byte("jpeg"), 4},
	} {
		var g cam
		if err := dst.QueryRow(ctx, `SELECT record, lat, snapshot, created_ns FROM cameras WHERE id = ?`, id).Scan(&g.record, &g.lat, &g.snap, &g.created); err != nil {
			t.Fatal(err)
		}
		if g.record != w.record || g.lat != w.lat || !bytes.Equal(g.snap, w.snap) || (g.snap == nil) != (w.snap == nil) || g.created != w.created {
			t.Errorf("%s: %+v, want %+v", id, g, w)
		}
	}
	var closed bool
	if err := dst.QueryRow(ctx, `SELECT closed FROM incidents WHERE id = 2`).Scan(&closed); err != nil || !closed {
		t.Errorf("incident 2 closed = %v, %v", closed, err)
	}
	// the sequences are past the copied ids, and past the deleted 9
	id, err := dst.InsertID(ctx, `INSERT INTO incidents(title) VALUES('new')`)
	if err != nil || id != 10 {
		t.Errorf("next incident id %d, %v; want 10", id, err)
	}
	id, err = dst.InsertID(ctx, `INSERT INTO audit(time_ns, username, address, action, camera, result, detail) VALUES(2000, 'admin', '', 'login', '', 'ok', '')`)
	if err != nil || id != 4 {
		t.Errorf("next audit id %d, %v; want 4", id, err)
	}
	// the audit stays append-only
	if _, err := dst.Exec(ctx, `UPDATE audit SET result = 'forged' WHERE id = 1`); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Errorf("update of the copied audit: %v", err)
	}
	// the source was read, not written
	var n int
	if err := src.QueryRow(ctx, `SELECT count(*) FROM departments`).Scan(&n); err != nil || n != 2 {
		t.Errorf("source departments %d, %v", n, err)
	}

	// a second copy into the same database is refused, and changes nothing
	_, err = Copy(ctx, src, dst, Options{Migrate: migrations(t)})
	var ne *NotEmptyError
	if !errors.As(err, &ne) {
		t.Fatalf("second copy: %v, want NotEmptyError", err)
	}
	if ne.Rows["cameras"] != 4 || ne.Rows["incidents"] != 4 || ne.Rows["departments"] != 2 {
		t.Errorf("refusal counts %v", ne.Rows)
	}
	if !strings.Contains(err.Error(), "cameras (4 rows)") || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("message %q", err)
	}
}

// A database a node has used is refused before anything is done to it:
// not even migrated.
func TestRefusesUsedTarget(t *testing.T) {
	ctx := context.Background()
	src := source(t)
	dst := testdb.OpenPostgres(t)
	exec(t, dst, `CREATE TABLE users (name TEXT PRIMARY KEY)`)
	exec(t, dst, `INSERT INTO users VALUES ('admin')`)
	_, err := Copy(ctx, src, dst, Options{Migrate: migrations(t)})
	var ne *NotEmptyError
	if !errors.As(err, &ne) || ne.Rows["users"] != 1 || len(ne.Rows) != 1 {
		t.Fatalf("err = %v, want NotEmptyError for users", err)
	}
	var n int
	if err := dst.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&n); err != nil || n != 1 {
		t.Errorf("%d tables in the refused target, want 1 (not migrated); %v", n, err)
	}
}

// A copy that fails leaves nothing behind but the migrated schema, and a
// second attempt (the cause fixed) goes through: the rows the migrations
// inserted do not count as data.
func TestFailedCopyRollsBack(t *testing.T) {
	ctx := context.Background()
	src := source(t)
	dst := testdb.OpenPostgres(t)
	exec(t, src, `INSERT INTO cameras(id, department, record, created_ns) VALUES('cam-bad', 'police', 2, 0)`)
	_, err := Copy(ctx, src, dst, Options{Migrate: migrations(t)})
	if err == nil || !strings.Contains(err.Error(), "table cameras") || !strings.Contains(err.Error(), "column record") ||
		!strings.Contains(err.Error(), "id = cam-bad") || !strings.Contains(err.Error(), "not a boolean") {
		t.Fatalf("err = %v, want the bad flag named", err)
	}
	for _, table := range []string{"cameras", "incidents", "audit"} {
		var n int
		if err := dst.QueryRow(ctx, `SELECT count(*) FROM `+table).Scan(&n); err != nil || n != 0 {
			t.Errorf("%s after the failed copy: %d rows, %v", table, n, err)
		}
	}
	exec(t, src, `UPDATE cameras SET record = 1 WHERE id = 'cam-bad'`)
	rep, err := Copy(ctx, src, dst, Options{Migrate: migrations(t)})
	if err != nil {
		t.Fatalf("second attempt: %v", err)
	}
	if rep.Rows() != 16 {
		t.Errorf("copied %d rows, want 16", rep.Rows())
	}
}

// A SQLite table with rows and no PostgreSQL table stops the copy, unless
// it is skipped by name.
func TestMissingTable(t *testing.T) {
	ctx := context.Background()
	src := source(t)
	exec(t, src, `INSERT INTO notes_scratch VALUES ('keep me')`)
	dst := testdb.OpenPostgres(t)
	_, err := Copy(ctx, src, dst, Options{Migrate: migrations(t)})
	if err == nil || !strings.Contains(err.Error(), "notes_scratch (1 rows)") {
		t.Fatalf("err = %v, want notes_scratch named", err)
	}
	rep, err := Copy(ctx, src, dst, Options{Migrate: migrations(t), Skip: []string{"notes_scratch"}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(rep.NotCopied, []string{"notes_scratch"}) {
		t.Errorf("not copied %v", rep.NotCopied)
	}
}

// A SQLite file at another schema version than this program's is refused
// with what to do.
func TestVersionMismatch(t *testing.T) {
	ctx := context.Background()
	src := source(t)
	exec(t, src, `INSERT INTO goose_fleet(version_id, is_applied) VALUES(2, 1)`)
	dst := testdb.OpenPostgres(t)
	_, err := Copy(ctx, src, dst, Options{Migrate: migrations(t)})
	if err == nil || !strings.Contains(err.Error(), "fleet: the SQLite database is at version 2, this program's schema at 1") {
		t.Fatalf("err = %v", err)
	}
}

func TestWrongDialects(t *testing.T) {
	ctx := context.Background()
	lite := testdb.OpenSQLite(t, "")
	if _, err := Copy(ctx, lite, lite, Options{}); err == nil || !strings.Contains(err.Error(), "target must be a PostgreSQL") {
		t.Errorf("sqlite → sqlite: %v", err)
	}
}

func TestOrderCycle(t *testing.T) {
	c := &catalog{refs: map[string][]string{"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}}
	plans := []*tablePlan{{name: "a"}, {name: "b"}, {name: "c"}, {name: "d"}}
	_, err := c.order(plans)
	if !errors.Is(err, errCycle) || !strings.Contains(err.Error(), "a → b → c → a") {
		t.Errorf("err = %v", err)
	}
	// a reference to a table that is not copied does not order anything
	c = &catalog{refs: map[string][]string{"b": {"a", "x"}, "a": {"x"}}}
	got, err := c.order([]*tablePlan{{name: "b"}, {name: "a"}})
	if err != nil || got[0].name != "a" || got[1].name != "b" {
		t.Errorf("order %v, %v", got, err)
	}
}

var conversions = []struct {
	pgType string
	in     any
	want   any
	err    string
}{
	{"boolean", int64(0), false, ""},
	{"boolean", int64(1), true, ""},
	{"boolean", true, true, ""},
	{"boolean", "true", true, ""},
	{"boolean", nil, nil, ""},
	{"boolean", int64(2), nil, "not a boolean"},
	{"boolean", "yes", nil, "not a boolean"},
	{"bigint", int64(-7), int64(-7), ""},
	{"bigint", 3.0, int64(3), ""},
	{"bigint", 3.5, nil, "not an integer"},
	{"bigint", "42", int64(42), ""},
	{"integer", []byte{1}, nil, "not an integer"},
	{"double precision", int64(2), 2.0, ""},
	{"double precision", "1.5", 1.5, ""},
	{"real", "x", nil, "not a number"},
	{"bytea", "ab", []byte("ab"), ""},
	{"bytea", int64(1), nil, "not a blob"},
	{"text", []byte("héllo"), "héllo", ""},
	{"text", int64(12), "12", ""},
	{"text", "a\x00b", nil, "NUL byte"},
	{"text", "\xff", nil, "UTF-8"},
	{"jsonb", `{"a":1}`, `{"a":1}`, ""},
	{"numeric", "1.25", "1.25", ""},
}

func TestConvert(t *testing.T) {
	for _, c := range conversions {
		conv, err := converterFor(c.pgType)
		if err != nil {
			t.Fatal(err)
		}
		got, err := conv(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("%s ← %#v: %v, %v; want error %q", c.pgType, c.in, got, err, c.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s ← %#v: %v", c.pgType, c.in, err)
			continue
		}
		if gb, ok := got.([]byte); ok {
			if !bytes.Equal(gb, c.want.([]byte)) {
				t.Errorf("%s ← %#v = %#v, want %#v", c.pgType, c.in, got, c.want)
			}
		} else if got != c.want {
			t.Errorf("%s ← %#v = %#v, want %#v", c.pgType, c.in, got, c.want)
		}
	}
	if _, err := converterFor("point"); err == nil {
		t.Error("point: no error")
	}
}

// BenchmarkCopySegments copies a recordings index of 200,000 segment rows
// (a camera's month at one-minute segments is 43,200): the copy's rate.
//
//	go test -run '^$' -bench CopySegments -benchtime 1x ./internal/sqldb/dbcopy
func BenchmarkCopySegments(b *testing.B) {
	const n = 200_000
	ctx := context.Background()
	src := testdb.OpenSQLite(b, "")
	const cols = `camera TEXT NOT NULL, start_ns INTEGER NOT NULL, end_ns INTEGER NOT NULL, bytes INTEGER NOT NULL,
		key TEXT NOT NULL PRIMARY KEY, init_size INTEGER NOT NULL, fragments BLOB NOT NULL, camera_uid TEXT NOT NULL, department TEXT NOT NULL`
	if _, err := src.Exec(ctx, `CREATE TABLE segments (`+cols+`)`); err != nil {
		b.Fatal(err)
	}
	// recursive CTE: the rows are made inside SQLite, quickly
	if _, err := src.Exec(ctx, `WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?)
		INSERT INTO segments SELECT 'cam-' || (i % 300), i * 60000000000, i * 60000000000 + 59990000000, 30000000,
			'cam-' || (i % 300) || '/' || i || '.mp4', 1200, zeroblob(600), 'uid-' || (i % 300), 'police' FROM s`, n); err != nil {
		b.Fatal(err)
	}
	pgCols := strings.NewReplacer("INTEGER", "BIGINT", "BLOB", "BYTEA").Replace(cols)
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		dst := testdb.OpenPostgres(b)
		if _, err := dst.Exec(ctx, `CREATE TABLE segments (`+pgCols+`)`); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		rep, err := Copy(ctx, src, dst, Options{})
		if err != nil || rep.Rows() != n {
			b.Fatalf("%v, %d rows", err, rep.Rows())
		}
	}
	b.ReportMetric(float64(n*b.N)/b.Elapsed().Seconds(), "rows/s")
}
