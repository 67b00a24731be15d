// Package testdb opens the SQLite database of a test, as the server opens it
// (internal/sqlitedb), and closes it when the test ends. It is apart from
// testkit, which imports none of Vigil's packages.
package testdb

import (
	"database/sql"
	"path/filepath"
	"testing"

	"github.com/vigil-vms/vigil/internal/sqlitedb"
)

// Open opens (creating it when missing) the database at path, or at a new
// file in the test's temporary directory when path is "". It fails the test
// when the database does not open, and closes it at the test's end (closing
// it earlier as well is fine).
func Open(t testing.TB, path string) *sql.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "vigil.db")
	}
	db, err := sqlitedb.Open(path)
	if err != nil {
		t.Fatalf("open database %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
