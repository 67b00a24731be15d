package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/registry"
)

func TestDBCopyArgs(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeLocalConfig(t, dir, "4s")
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"db"}, "copy is the only subcommand"},
		{[]string{"db", "move"}, "copy is the only subcommand"},
		{[]string{"db", "copy", "--config", cfgPath}, "--to postgres://… is required"},
		{[]string{"db", "copy", "--config", cfgPath, "--to", "postgres://u:pw@127.0.0.1:1/x", "extra"}, `unexpected arguments ["extra"]`},
		// the database does not exist yet: nothing is created, nothing copied
		{[]string{"db", "copy", "--config", cfgPath, "--to", "postgres://u:pw@127.0.0.1:1/x"}, "no database at " + filepath.Join(dir, "vigil.db")},
		{[]string{"db", "copy", "--from", filepath.Join(dir, "other.db"), "--to", "postgres://u:pw@127.0.0.1:1/x"}, "no database at " + filepath.Join(dir, "other.db")},
		{[]string{"db", "copy", "--bogus"}, "flag provided but not defined"},
	} {
		var out bytes.Buffer
		err := run(context.Background(), c.args, &out, &out, nil)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want %q", c.args, err, c.want)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "vigil.db")); !os.IsNotExist(err) {
		t.Errorf("the command made the source database: %v", err)
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"db", "help"}, &out, &out, nil); err != nil || !strings.Contains(out.String(), "vigil db copy --to") {
		t.Errorf("help: %v\n%s", err, out.String())
	}
}

// The command refuses a database a node has used, before migrating it,
// and never prints the password of the URL.
func TestDBCopyRefusesUsedTarget(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfgPath := writeLocalConfig(t, dir, "4s")
	testdb.Open(t, filepath.Join(dir, "vigil.db")).Close()
	url := pgtest.URL(t)
	pg := testdb.OpenURL(t, url)
	if _, err := pg.Exec(ctx, `CREATE TABLE users (username TEXT PRIMARY KEY); INSERT INTO users VALUES ('admin')`); err != nil {
		t.Fatal(err)
	}
	withPassword := strings.Replace(url, "vigil@", "vigil:hunter2@", 1)
	var out bytes.Buffer
	err := run(ctx, []string{"db", "copy", "--config", cfgPath, "--to", withPassword}, &out, &out, nil)
	if err == nil || !strings.Contains(err.Error(), "not empty: users (1 rows)") {
		t.Fatalf("err = %v, want the used target refused", err)
	}
	if strings.Contains(out.String()+err.Error(), "hunter2") {
		t.Errorf("the password was printed:\n%s\n%v", out.String(), err)
	}
	var tables int
	if err := pg.QueryRow(ctx, `SELECT count(*) FROM information_schema.tables WHERE table_schema = current_schema()`).Scan(&tables); err != nil || tables != 1 {
		t.Errorf("%d tables in the refused target (%v), want the one it had", tables, err)
	}
}

// End to end: a single node's database, written by the server itself
// (app.New: the admin, key files), with cameras (an encrypted password),
// users, an incident, recordings and audit entries, copied by the command
// and read back through the components on PostgreSQL.
func TestDBCopyEndToEnd(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	cfgPath := writeLocalConfig(t, dir, "4s")
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, cfg, app.Options{AdminPassword: "copy-test-admin"})
	if err != nil {
		t.Fatal(err)
	}
	cam := ingest.Camera{ID: "gate-1", Name: "北门", Department: "police", MainURL: "rtsp://viewer:s3cret@10.0.0.7/main",
		Transport: "tcp", Record: true, Enabled: true, Location: ingest.Location{Lat: 23.1, Lng: 113.3}}
	created, err := a.Registry.CreateCamera(ctx, cam)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Unix(1_790_000_000, 0)
	// the recordings' owner, as the recorder makes it when the camera starts
	if _, err := a.Index.Own(ctx, archive.Owner{Camera: created.ID, UID: created.UID, Department: created.Department}, t0); err != nil {
		t.Fatal(err)
	}
	cam2 := ingest.Camera{ID: "gate-2", Name: "South", Department: "cold-storage", MainURL: "rtsp://10.0.0.8/main",
		Transport: "udp", Record: false, Enabled: false}
	if _, err := a.Registry.CreateCamera(ctx, cam2); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Registry.CreateUser(ctx, registry.User{Username: "li.wei", Role: "responder", Departments: []string{"police"}}, "li-wei-password"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Registry.CreateIncident(ctx, registry.Incident{Title: "flood", Start: t0, End: t0.Add(time.Hour),
		Cameras: []string{"gate-1"}, CreatedBy: "admin"}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if err := a.Registry.Audit(ctx, registry.AuditEntry{Time: t0.Add(time.Duration(i) * time.Second), User: "admin",
			Address: "127.0.0.1", Action: "view", Camera: "gate-1", Result: "ok"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.Index.Add(ctx, archive.Segment{Camera: "gate-1", Start: t0, End: t0.Add(4 * time.Second), Bytes: 1234,
		Key: "gate-1/seg-1.mp4", InitSize: 100}); err != nil {
		t.Fatal(err)
	}
	// what the node holds, read before the copy
	wantCams, _ := a.Registry.Cameras(ctx)
	wantUsers, _ := a.Registry.Users(ctx)
	wantAudit, _ := a.Registry.AuditEntries(ctx, registry.AuditFilter{})
	wantIncidents, _ := a.Registry.FindIncidents(ctx, registry.IncidentFilter{})
	wantSegs, _ := a.Index.Segments(ctx, "gate-1", time.Unix(0, 0), time.Unix(1<<32, 0), false)
	if len(wantCams) != 2 || len(wantUsers) != 2 || len(wantAudit) < 3 || len(wantIncidents) != 1 || len(wantSegs) != 1 {
		t.Fatalf("the node holds %d cameras, %d users, %d audit entries, %d incidents, %d segments",
			len(wantCams), len(wantUsers), len(wantAudit), len(wantIncidents), len(wantSegs))
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	url := pgtest.URL(t)
	var out bytes.Buffer
	if err := run(ctx, []string{"db", "copy", "--config", cfgPath, "--to", url}, &out, &out, nil); err != nil {
		t.Fatalf("db copy: %v\n%s", err, out.String())
	}
	t.Logf("db copy said:\n%s", out.String())
	for _, w := range []string{"cameras", "users", "audit", "segments", "vigil.key", "evidence.key"} {
		if !strings.Contains(out.String(), w) {
			t.Errorf("the report does not name %s", w)
		}
	}

	pg := testdb.OpenURL(t, url)
	key, _, err := registry.LoadKey(filepath.Join(dir, app.SecretKeyFile), "")
	if err != nil {
		t.Fatal(err)
	}
	reg, err := registry.OpenWith(ctx, pg, registry.Options{SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	ix, err := archive.OpenIndex(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	same := func(what string, got, want any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s on PostgreSQL:\n%+v\nwant\n%+v", what, got, want)
		}
	}
	gotCams, err := reg.Cameras(ctx)
	same("cameras", gotCams, wantCams, err)
	gotUsers, err := reg.Users(ctx)
	same("users", gotUsers, wantUsers, err)
	gotIncidents, err := reg.FindIncidents(ctx, registry.IncidentFilter{})
	same("incidents", gotIncidents, wantIncidents, err)
	gotSegs, err := ix.Segments(ctx, "gate-1", time.Unix(0, 0), time.Unix(1<<32, 0), false)
	same("segments", gotSegs, wantSegs, err)
	// the copy's own audit rows aside, the node's audit is there, in order,
	// and goes on with new ids
	if err := reg.Audit(ctx, registry.AuditEntry{Time: t0.Add(time.Minute), User: "admin", Action: "login", Result: "ok"}); err != nil {
		t.Fatalf("audit on PostgreSQL after the copy: %v", err)
	}
	gotAudit, err := reg.AuditEntries(ctx, registry.AuditFilter{})
	if err != nil || len(gotAudit) != len(wantAudit)+1 {
		t.Fatalf("audit: %d entries, %v; want %d", len(gotAudit), err, len(wantAudit)+1)
	}
	// the password still opens the door, and the camera password decrypts
	if _, err := reg.Authenticate(ctx, "li.wei", "li-wei-password"); err != nil {
		t.Errorf("li.wei cannot sign in on PostgreSQL: %v", err)
	}
	if c, err := reg.Camera(ctx, "gate-1"); err != nil || c.MainURL != cam.MainURL {
		t.Errorf("gate-1 on PostgreSQL: %q, %v", c.MainURL, err)
	}
	// a second copy is refused
	err = run(ctx, []string{"db", "copy", "--config", cfgPath, "--to", url}, &out, &out, nil)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("second copy: %v", err)
	}
}
