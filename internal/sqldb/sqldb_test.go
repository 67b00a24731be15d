package sqldb

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-vms/vigil/internal/sqlitedb"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// forEachDialect runs test against a new SQLite file and a new PostgreSQL
// database (skipped where PostgreSQL is missing, unless required).
func forEachDialect(t *testing.T, test func(t *testing.T, db *DB)) {
	t.Run("sqlite", func(t *testing.T) {
		db, err := Open(context.Background(), Config{Path: filepath.Join(t.TempDir(), "vigil.db")})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		test(t, db)
	})
	t.Run("postgres", func(t *testing.T) {
		db, err := Open(context.Background(), Config{URL: pgtest.URL(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		test(t, db)
	})
}

var rebindCases = []struct{ in, want string }{
	{`SELECT 1`, `SELECT 1`},
	{`SELECT a FROM t WHERE b = ? AND c = ?`, `SELECT a FROM t WHERE b = $1 AND c = $2`},
	{`INSERT INTO t(a, b) VALUES(?, ?) ON CONFLICT(a) DO UPDATE SET b = excluded.b`, `INSERT INTO t(a, b) VALUES($1, $2) ON CONFLICT(a) DO UPDATE SET b = excluded.b`},
	{`SELECT '?' || ?`, `SELECT '?' || $1`},
	{`SELECT 'it''s ?', ?`, `SELECT 'it''s ?', $1`},
	{`SELECT "odd?name" FROM t WHERE x = ?`, `SELECT "odd?name" FROM t WHERE x = $1`},
	{"SELECT ? -- why?\n, ?", "SELECT $1 -- why?\n, $2"},
	{`SELECT /* a ? here */ ?`, `SELECT /* a ? here */ $1`},
	{`SELECT 'unterminated ?`, `SELECT 'unterminated ?`},
	{`SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?`, `SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11`},
	// SQLite's numbered form: ?NNN is parameter NNN, a plain ? the next after the largest
	{`SELECT ?2, ?1, ?`, `SELECT $2, $1, $3`},
	{`SELECT ?0`, `SELECT $0`},
	{`WHERE a = ?1 OR b = ?1`, `WHERE a = $1 OR b = $1`},
}

func TestRebind(t *testing.T) {
	for _, c := range rebindCases {
		if got := Postgres.Rebind(c.in); got != c.want {
			t.Errorf("Rebind(%q) = %q, want %q", c.in, got, c.want)
		}
		if got := SQLite.Rebind(c.in); got != c.in {
			t.Errorf("SQLite rewrote %q to %q", c.in, got)
		}
	}
}

// Rebind changes nothing but placeholders: with every `?NNN`, `?`, `$NNN`
// written as `?`, the query and its rewriting read the same, and a `$`
// appears once per placeholder (no number runs into what follows).
func FuzzRebind(f *testing.F) {
	for _, c := range rebindCases {
		f.Add(c.in)
	}
	placeholder := regexp.MustCompile(`[?$][0-9]*`)
	f.Fuzz(func(t *testing.T, q string) {
		if strings.Contains(q, "$") {
			return // the property tells inserted from original `$` apart only without them
		}
		out := Postgres.Rebind(q)
		if a, b := placeholder.ReplaceAllString(q, "?"), placeholder.ReplaceAllString(out, "?"); a != b {
			t.Fatalf("Rebind(%q) = %q: changed more than placeholders", q, out)
		}
		if strings.Count(out, "$")+strings.Count(out, "?") != strings.Count(q, "?") {
			t.Fatalf("Rebind(%q) = %q: placeholders lost or made", q, out)
		}
	})
}

func TestOpenRejects(t *testing.T) {
	_, err := Open(context.Background(), Config{URL: "mysql://u:secret@h/db"})
	if err == nil || strings.Contains(err.Error(), "secret") || !strings.Contains(err.Error(), "database.url") {
		t.Fatalf("err = %v, want a database.url error without the password", err)
	}
	// an unreachable server: a clear error, the password hidden
	_, err = Open(context.Background(), Config{URL: "postgres://u:secret@127.0.0.1:1/db?sslmode=disable&connect_timeout=2"})
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Fatalf("err = %v, want a connection error without the password", err)
	}
}

//go:embed testdata/audit
var auditFiles embed.FS

// The audit component, converted: one set of queries, one migration per
// dialect, and append-only in either database itself.
func auditMigrations(t *testing.T) Migrations {
	return Migrations{Component: "audit", FS: mustSub(t, auditFiles, "testdata/audit")}
}

func TestAuditAppendOnly(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		m := auditMigrations(t)
		if err := db.Migrate(ctx, m); err != nil {
			t.Fatal(err)
		}
		if err := db.Migrate(ctx, m); err != nil { // twice: nothing to do
			t.Fatalf("second migrate: %v", err)
		}
		const insert = `INSERT INTO audit(time_ns, username, address, action, camera, start_ns, end_ns, result, detail)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)`
		var ids []int64
		for i := range 3 {
			id, err := db.InsertID(ctx, insert, int64(1000+i), "admin", "127.0.0.1", "view", "cam-1", 0, 0, "ok", "")
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, id)
		}
		if ids[0] >= ids[1] || ids[1] >= ids[2] {
			t.Fatalf("ids %v not increasing", ids)
		}
		var n int
		if err := db.QueryRow(ctx, `SELECT count(*) FROM audit WHERE camera = ? AND time_ns >= ?`, "cam-1", 1001).Scan(&n); err != nil || n != 2 {
			t.Fatalf("count = %d, %v", n, err)
		}
		for _, stmt := range []string{
			`UPDATE audit SET result = 'forged' WHERE id = ?`,
			`DELETE FROM audit WHERE id = ?`,
		} {
			_, err := db.Exec(ctx, stmt, ids[0])
			if err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("%s: err = %v, want append-only refusal", stmt, err)
			}
		}
		// a transaction cannot get round it either
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM audit WHERE time_ns > ?`, 0); err == nil {
			t.Error("delete in a transaction passed")
		}
		tx.Rollback()
		if db.Dialect == Postgres {
			if _, err := db.Exec(ctx, `TRUNCATE audit`); err == nil || !strings.Contains(err.Error(), "append-only") {
				t.Errorf("truncate: err = %v", err)
			}
		}
		if err := db.QueryRow(ctx, `SELECT count(*) FROM audit`).Scan(&n); err != nil || n != 3 {
			t.Fatalf("after refused changes: %d rows, %v", n, err)
		}
		var result string
		if err := db.QueryRow(ctx, `SELECT result FROM audit WHERE id = ?`, ids[0]).Scan(&result); err != nil || result != "ok" {
			t.Fatalf("row 1 result %q, %v", result, err)
		}
	})
}

// Upserts and unique violations read the same on both engines.
func TestUpsertAndUniqueViolation(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, `CREATE TABLE kv (k TEXT PRIMARY KEY, v TEXT NOT NULL, n INTEGER NOT NULL DEFAULT 0)`); err != nil {
			t.Fatal(err)
		}
		const upsert = `INSERT INTO kv(k, v) VALUES(?, ?) ON CONFLICT(k) DO UPDATE SET v = excluded.v, n = kv.n + 1 RETURNING n`
		for i, v := range []string{"a", "b", "c"} {
			var n int
			if err := db.QueryRow(ctx, upsert, "key", v).Scan(&n); err != nil || n != i {
				t.Fatalf("upsert %d: n = %d, %v", i, n, err)
			}
		}
		if _, err := db.Exec(ctx, `INSERT INTO kv(k, v) VALUES(?, ?) ON CONFLICT DO NOTHING`, "key", "ignored"); err != nil {
			t.Fatal(err)
		}
		var v string
		if err := db.QueryRow(ctx, `SELECT v FROM kv WHERE k = ?`, "key").Scan(&v); err != nil || v != "c" {
			t.Fatalf("v = %q, %v", v, err)
		}
		_, err := db.Exec(ctx, `INSERT INTO kv(k, v) VALUES(?, ?)`, "key", "dup")
		if !db.Dialect.IsUniqueViolation(err) {
			t.Fatalf("duplicate key: %v not recognised as a unique violation", err)
		}
		if db.Dialect.IsUniqueViolation(errors.New("duplicate")) || db.Dialect.IsUniqueViolation(nil) {
			t.Fatal("a plain error counted as a unique violation")
		}
	})
}

// Nodes that start together migrate a shared database once: goose holds
// PostgreSQL's advisory lock while it migrates.
func TestConcurrentMigrate(t *testing.T) {
	u := pgtest.URL(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			db, err := Open(ctx, Config{URL: u})
			if err != nil {
				errs[i] = err
				return
			}
			defer db.Close()
			errs[i] = db.Migrate(ctx, auditMigrations(t))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("node %d: %v", i, err)
		}
	}
	db, err := Open(ctx, Config{URL: u})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var applied int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM goose_audit WHERE version_id = 1`).Scan(&applied); err != nil || applied != 1 {
		t.Fatalf("version 1 applied %d times, %v", applied, err)
	}
}

// A database migrated by a newer program is refused, not downgraded.
func TestMigrateNewerDatabase(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if err := db.Migrate(ctx, auditMigrations(t)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(ctx, `INSERT INTO goose_audit(version_id, is_applied) VALUES(?, ?)`, 7, true); err != nil {
			t.Fatal(err)
		}
		err := db.Migrate(ctx, auditMigrations(t))
		if err == nil || !strings.Contains(err.Error(), "newer than this program") {
			t.Fatalf("err = %v", err)
		}
		if err := db.Migrate(ctx, Migrations{Component: "Bad-Name", FS: auditFiles}); err == nil {
			t.Fatal("a bad component name passed")
		}
	})
}

func mustSub(t *testing.T, fsys embed.FS, dir string) fs.FS {
	t.Helper()
	sub, err := fs.Sub(fsys, dir)
	if err != nil {
		t.Fatal(err)
	}
	return sub
}

// A SQLite database that internal/sqlitedb migrated (today's installations)
// is adopted: goose records the old steps as applied instead of running them
// again, and the data stays.
func TestAdoptLegacySQLite(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{Path: filepath.Join(t.TempDir(), "vigil.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	step1, err := auditFiles.ReadFile("testdata/audit/sqlite/00001_audit.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.Migrate(ctx, db.DB, "registry_audit", []string{string(step1)}); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO audit(time_ns, username, address, action, camera, result, detail) VALUES(?, ?, ?, ?, ?, ?, ?)`,
		1, "admin", "127.0.0.1", "login", "", "ok", ""); err != nil {
		t.Fatal(err)
	}
	m := auditMigrations(t)
	// without adoption goose would run step 1 again and fail on the existing table
	if err := db.Migrate(ctx, m); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("unadopted: %v", err)
	}
	if _, err := db.Exec(ctx, `DROP TABLE goose_audit`); err != nil {
		t.Fatal(err)
	}
	m.Legacy = "registry_audit"
	for range 2 {
		if err := db.Migrate(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.QueryRow(ctx, `SELECT count(*) FROM audit`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("audit rows %d, %v", n, err)
	}
	if err := db.QueryRow(ctx, `SELECT max(version_id) FROM goose_audit`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("goose version %d, %v", n, err)
	}
}

// QueryList reads through a DB and a Tx alike, on both engines.
func TestQueryList(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *DB) {
		ctx := context.Background()
		if _, err := db.Exec(ctx, `CREATE TABLE n (i INTEGER NOT NULL)`); err != nil {
			t.Fatal(err)
		}
		for i := range 5 {
			if _, err := db.Exec(ctx, `INSERT INTO n(i) VALUES(?)`, i); err != nil {
				t.Fatal(err)
			}
		}
		scan := func(r *sql.Rows, v *int) error { return r.Scan(v) }
		got, err := QueryList(ctx, db, "numbers", scan, `SELECT i FROM n WHERE i >= ? ORDER BY i`, 2)
		if err != nil || fmt.Sprint(got) != "[2 3 4]" {
			t.Fatalf("db: %v, %v", got, err)
		}
		tx, err := db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback()
		got, err = QueryList(ctx, tx, "numbers", scan, `SELECT i FROM n WHERE i > ? ORDER BY i`, 10)
		if err != nil || got == nil || len(got) != 0 {
			t.Fatalf("tx: %#v, %v", got, err)
		}
		if _, err := QueryList(ctx, tx, "numbers", scan, `SELECT nope FROM n`); err == nil || !strings.HasPrefix(err.Error(), "numbers: ") {
			t.Fatalf("bad query: %v", err)
		}
	})
}
