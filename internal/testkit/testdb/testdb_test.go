package testdb

import (
	"path/filepath"
	"testing"
)

func TestOpen(t *testing.T) {
	db := Open(t, "")
	if _, err := db.Exec(`CREATE TABLE x (a INTEGER)`); err != nil {
		t.Fatal(err)
	}
	// a named file keeps what was written after it is closed and opened again
	path := filepath.Join(t.TempDir(), "named.db")
	db = Open(t, path)
	if _, err := db.Exec(`CREATE TABLE y (a INTEGER); INSERT INTO y VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	db.Close() // closed early: the cleanup's second Close is harmless
	var a int
	if err := Open(t, path).QueryRow(`SELECT a FROM y`).Scan(&a); err != nil || a != 7 {
		t.Fatalf("reopened: %d, %v", a, err)
	}
}
