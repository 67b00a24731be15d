// Package testdb opens the database of a test, as the server opens it, and
// closes it when the test ends. It is apart from testkit, which imports none
// of Vigil's packages.
//
// [OpenDB] honours VIGIL_TEST_DATABASE: "postgres" runs the test on a new,
// empty PostgreSQL database (internal/testkit/pgtest; the package's TestMain
// must call pgtest.Main), anything else on a new SQLite file. CI runs the
// database packages' tests both ways.
package testdb

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/sqlitedb"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
)

// EnvDatabase selects the engine of [OpenDB]: "postgres", or SQLite.
const EnvDatabase = "VIGIL_TEST_DATABASE"

// Postgres reports whether the tests run on PostgreSQL (VIGIL_TEST_DATABASE=postgres).
func Postgres() bool { return os.Getenv(EnvDatabase) == "postgres" }

// Open opens (creating it when missing) the SQLite database at path, or at a
// new file in the test's temporary directory when path is "". It fails the
// test when the database does not open, and closes it at the test's end
// (closing it earlier as well is fine).
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

// OpenDB opens a new, empty database for the test on the engine
// VIGIL_TEST_DATABASE selects, and closes it at the test's end.
func OpenDB(t testing.TB) *sqldb.DB {
	t.Helper()
	if Postgres() {
		return OpenPostgres(t)
	}
	return OpenSQLite(t, "")
}

// OpenSQLite opens the SQLite database at path (a new file in the test's
// temporary directory when "") through the seam, whatever VIGIL_TEST_DATABASE
// says: for tests of a file on disk (reopening, crash recovery).
func OpenSQLite(t testing.TB, path string) *sqldb.DB {
	t.Helper()
	if path == "" {
		path = filepath.Join(t.TempDir(), "vigil.db")
	}
	db, err := sqldb.Open(context.Background(), sqldb.Config{Path: path})
	if err != nil {
		t.Fatalf("open database %s: %v", path, err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// OpenPostgres opens a new, empty PostgreSQL database (pgtest), whatever
// VIGIL_TEST_DATABASE says. The package's TestMain must call pgtest.Main.
func OpenPostgres(t testing.TB) *sqldb.DB {
	t.Helper()
	return OpenURL(t, pgtest.URL(t))
}

// OpenURL opens the PostgreSQL database at url (for a test that opens one
// database from several "nodes"); closed at the test's end.
func OpenURL(t testing.TB, url string) *sqldb.DB {
	t.Helper()
	db, err := sqldb.Open(context.Background(), sqldb.Config{URL: url})
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}
