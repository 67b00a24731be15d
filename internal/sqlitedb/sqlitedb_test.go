package sqlitedb

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

func TestMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "sub", "v.db")
	db, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	steps := []string{
		`CREATE TABLE a (x INTEGER)`,
		`ALTER TABLE a ADD COLUMN y TEXT`,
	}
	if err := Migrate(ctx, db, "one", steps); err != nil {
		t.Fatal(err)
	}
	// idempotent
	if err := Migrate(ctx, db, "one", steps); err != nil {
		t.Fatal(err)
	}
	// another component keeps its own version
	if err := Migrate(ctx, db, "two", []string{`CREATE TABLE b (z INTEGER)`}); err != nil {
		t.Fatal(err)
	}
	// a failing step leaves the previous version and no half-applied change
	bad := append(steps, `CREATE TABLE c (q INTEGER); CREATE TABLE a (dup INTEGER)`)
	if err := Migrate(ctx, db, "one", bad); err == nil || !strings.Contains(err.Error(), "migrate one to 3") {
		t.Fatalf("err = %v", err)
	}
	var v int
	db.QueryRow(`SELECT version FROM schema_migrations WHERE component='one'`).Scan(&v)
	if v != 2 {
		t.Fatalf("version %d after a failed step, want 2", v)
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM sqlite_master WHERE name='c'`).Scan(&n)
	if n != 0 {
		t.Fatal("a failed step left a table behind")
	}
	// a database newer than the program is refused
	if err := Migrate(ctx, db, "one", steps[:1]); err == nil || !strings.Contains(err.Error(), "newer") {
		t.Fatalf("err = %v", err)
	}
	var mode string
	db.QueryRow(`PRAGMA journal_mode`).Scan(&mode)
	if mode != "wal" {
		t.Fatalf("journal mode %q", mode)
	}
}
