package ui

import (
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

func TestMain(m *testing.M) {
	if testdb.Postgres() {
		// pgtest.Main runs the tests and stops the PostgreSQL server; it
		// exits, so the leak check below is the SQLite run's (the pgx
		// driver's connections end with their databases).
		pgtest.Main(m)
	}
	code := m.Run()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			os.Stderr.WriteString("goroutine leak: " + err.Error() + "\n")
			code = 1
		}
	}
	os.Exit(code)
}
