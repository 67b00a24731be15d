package pgtest

import (
	"context"
	"database/sql"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
)

func TestMain(m *testing.M) { Main(m) }

// Each test gets its own empty database on the one server: a table made in
// one is absent from the other, and the server is a PostgreSQL 15 or newer.
func TestFreshDatabasePerTest(t *testing.T) {
	ctx := context.Background()
	a, b := Open(t), Open(t)
	if _, err := a.ExecContext(ctx, `CREATE TABLE only_in_a (x int); INSERT INTO only_in_a VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := a.QueryRowContext(ctx, `SELECT count(*) FROM only_in_a`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("a: %d, %v", n, err)
	}
	if _, err := b.ExecContext(ctx, `SELECT * FROM only_in_a`); err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Fatalf("b sees a's table: %v", err)
	}
	var version int
	if err := b.QueryRowContext(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&version); err != nil {
		t.Fatal(err)
	}
	if version < 150000 {
		t.Fatalf("server version %d, want 15 or newer", version)
	}
	if os.Getenv(EnvURL) == "" && shared != nil {
		// the started server listens on 127.0.0.1 only, its socket in its own directory
		if _, err := os.Stat(shared.Dir + "/.s.PGSQL." + strconv.Itoa(shared.Port)); err != nil {
			t.Errorf("unix socket: %v", err)
		}
	}
}

// A database dropped at a test's end is gone from the server.
func TestDatabaseDroppedAtCleanup(t *testing.T) {
	var name string
	t.Run("inner", func(t *testing.T) {
		u := URL(t)
		name = u[strings.LastIndex(u, "/")+1 : strings.Index(u, "?")]
	})
	db := Open(t)
	var exists bool
	if err := db.QueryRow(`SELECT EXISTS (SELECT 1 FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		t.Fatal(err)
	}
	if exists {
		t.Fatalf("database %s outlived its test", name)
	}
}

// A dedicated server restarts on its port with its data, and refuses
// connections while it is down.
func TestDedicatedRestart(t *testing.T) {
	s := Dedicated(t)
	ctx := context.Background()
	db, err := sql.Open("pgx", s.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	restarted := make(chan error, 1)
	go func() { restarted <- s.Restart(time.Second) }()
	// while it is down (or going down) the pool's connections fail
	testkit.WaitFor(t, 10*time.Second, "the server to go down", func() bool {
		return db.PingContext(ctx) != nil
	})
	testkit.Returned(t, restarted, 60*time.Second, "restart")
	var x int
	if err := db.QueryRowContext(ctx, `SELECT x FROM kept`).Scan(&x); err != nil || x != 42 {
		t.Fatalf("after restart: %d, %v", x, err)
	}
}
