package registry

import (
	"context"
	"io/fs"
	"path"
	"path/filepath"
	"sync"
	"testing"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/sqlitedb"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

// openNodes opens the registry twice on one database, as two nodes of a
// cluster do (on SQLite: two handles on one file). On PostgreSQL both open
// at once: the migrations run once, under goose's lock.
func openNodes(t *testing.T) (*Registry, *Registry) {
	t.Helper()
	ctx := context.Background()
	var dbs [2]*sqldb.DB
	if testdb.Postgres() {
		u := pgtest.URL(t)
		dbs = [2]*sqldb.DB{testdb.OpenURL(t, u), testdb.OpenURL(t, u)}
	} else {
		path := filepath.Join(t.TempDir(), "vigil.db")
		dbs = [2]*sqldb.DB{testdb.OpenSQLite(t, path), testdb.OpenSQLite(t, path)}
		if _, err := Open(ctx, dbs[0]); err != nil { // one process migrates an SQLite file
			t.Fatal(err)
		}
	}
	var regs [2]*Registry
	var errs [2]error
	var wg sync.WaitGroup
	for i := range dbs {
		wg.Go(func() { regs[i], errs[i] = Open(ctx, dbs[i]) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return regs[0], regs[1]
}

// What one node writes the other reads at once: the registry keeps no rows
// in memory.
func TestTwoNodesShareTheRegistry(t *testing.T) {
	ctx := context.Background()
	a, b := openNodes(t)
	if ds, err := b.Departments(ctx); err != nil || len(ds) != 4 {
		t.Fatalf("departments seeded %d times? %+v %v", len(ds)/4, ds, err)
	}
	if _, err := a.CreateCamera(ctx, goodCamera("police-1")); err != nil {
		t.Fatal(err)
	}
	if c, err := b.Camera(ctx, "police-1"); err != nil || c.MainURL != goodCamera("police-1").MainURL || !c.Record || !c.Enabled {
		t.Fatalf("node b: %+v %v", c, err)
	}
	if _, err := b.CreateCamera(ctx, goodCamera("police-1")); apierr.Status(err) != 409 {
		t.Fatalf("the same id on node b: %v", err)
	}
	if _, err := b.DeleteCamera(ctx, "police-1"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Camera(ctx, "police-1"); apierr.Status(err) != 404 {
		t.Fatalf("node a after b deleted: %v", err)
	}
	if _, err := a.CreateUser(ctx, User{Username: "li.wei", Role: RoleViewer}, "password1"); err != nil {
		t.Fatal(err)
	}
	id, _, err := a.StartSession(ctx, "li.wei", 3600e9, 7200e9)
	if err != nil {
		t.Fatal(err)
	}
	if s, err := b.Session(ctx, id); err != nil || s.User.Role != RoleViewer {
		t.Fatalf("session on node b: %+v %v", s, err)
	}
	if _, err := b.UpdateUser(ctx, User{Username: "li.wei", Role: RoleOperator}, ""); err != nil {
		t.Fatal(err)
	}
	if s, err := a.Session(ctx, id); err != nil || s.User.Role != RoleOperator {
		t.Fatalf("session on node a after b changed the role: %+v %v", s, err)
	}
}

// Two nodes that each demote one of the last two admins at once: one of
// them is refused, an admin is left (on PostgreSQL the admins' rows are
// locked before the check).
func TestLastAdminAcrossNodes(t *testing.T) {
	ctx := context.Background()
	a, b := openNodes(t)
	for _, name := range []string{"a1", "a2"} {
		if _, err := a.CreateUser(ctx, User{Username: name, Role: RoleAdmin}, "password1"); err != nil {
			t.Fatal(err)
		}
	}
	for round := range 8 {
		var errs [2]error
		var wg sync.WaitGroup
		for i, r := range []*Registry{a, b} {
			wg.Go(func() {
				if round%2 == 0 {
					_, errs[i] = r.UpdateUser(ctx, User{Username: []string{"a1", "a2"}[i], Role: RoleViewer}, "")
				} else {
					errs[i] = r.DeleteUser(ctx, []string{"a1", "a2"}[i])
				}
			})
		}
		wg.Wait()
		refused := 0
		for _, err := range errs {
			switch {
			case apierr.Status(err) == 409:
				refused++
			case err != nil:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		var admins int
		if err := a.db.QueryRow(ctx, `SELECT count(*) FROM users WHERE role = 'admin'`).Scan(&admins); err != nil {
			t.Fatal(err)
		}
		if refused != 1 || admins != 1 {
			t.Fatalf("round %d: %d refused, %d admins left (%v)", round, refused, admins, errs)
		}
		// make the demoted or deleted one an admin again
		for _, name := range []string{"a1", "a2"} {
			if _, err := a.UpdateUser(ctx, User{Username: name, Role: RoleAdmin}, ""); apierr.Status(err) == 404 {
				_, err = a.CreateUser(ctx, User{Username: name, Role: RoleAdmin}, "password1")
				if err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
		}
	}
}

// An SQLite database that the former sqlitedb migrations brought to their
// newest step is adopted: goose records the versions, runs nothing again,
// and the rows stay.
func TestLegacyDatabaseAdopted(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenSQLite(t, "")
	for _, m := range []sqldb.Migrations{migrations, siteMapMigrations} {
		files, err := fs.Glob(m.FS, path.Join(m.Dir, "sqlite/*.sql"))
		if err != nil || len(files) == 0 {
			t.Fatalf("%s: %v %v", m.Component, files, err)
		}
		var steps []string
		for _, f := range files {
			b, err := fs.ReadFile(m.FS, f)
			if err != nil {
				t.Fatal(err)
			}
			steps = append(steps, string(b))
		}
		if err := sqlitedb.Migrate(ctx, db.DB, m.Legacy, steps); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Exec(ctx, `INSERT INTO users(username, hash, role, created_ns) VALUES('old', 'x', 'viewer', 1)`); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if u, err := r.User(ctx, "old"); err != nil || u.Role != RoleViewer {
		t.Fatalf("%+v %v", u, err)
	}
	for table, want := range map[string]int{"goose_registry": 5, "goose_sitemap": 1} {
		var v int
		if err := db.QueryRow(ctx, `SELECT max(version_id) FROM `+table).Scan(&v); err != nil || v != want {
			t.Errorf("%s: version %d (%v), want %d", table, v, err, want)
		}
	}
	if ds, err := r.Departments(ctx); err != nil || len(ds) != 4 {
		t.Errorf("departments %+v %v", ds, err)
	}
}
