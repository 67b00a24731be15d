package registry

import (
	"context"
	"io/fs"
	"path"
	"regexp"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/sqlitedb"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

var uidRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// Every camera is an incarnation with its own uid, kept by edits and never
// given to a camera created later under the same id.
func TestCameraIncarnation(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	before := time.Now()
	c, err := r.CreateCamera(ctx, goodCamera("cam-x"))
	if err != nil {
		t.Fatal(err)
	}
	if !uidRE.MatchString(c.UID) || c.Since.Before(before.Add(-time.Second)) || c.Since.After(time.Now()) {
		t.Fatalf("created: uid %q since %v", c.UID, c.Since)
	}
	got, err := r.Camera(ctx, "cam-x")
	if err != nil || got.UID != c.UID || !got.Since.Equal(c.Since) {
		t.Fatalf("stored: %q %v (%v), created %q %v", got.UID, got.Since, err, c.UID, c.Since)
	}
	edit := goodCamera("cam-x")
	edit.Department = "flood-control"
	now, _, err := r.ReplaceCamera(ctx, edit)
	if err != nil || now.UID != c.UID || !now.Since.Equal(c.Since) {
		t.Fatalf("edited: %q %v (%v)", now.UID, now.Since, err)
	}
	if got, _ := r.Camera(ctx, "cam-x"); got.UID != c.UID {
		t.Fatalf("edit changed the uid: %q, was %q", got.UID, c.UID)
	}
	gone, err := r.DeleteCamera(ctx, "cam-x")
	if err != nil || gone.UID != c.UID {
		t.Fatalf("deleted: %q (%v)", gone.UID, err)
	}
	again, err := r.CreateCamera(ctx, goodCamera("cam-x"))
	if err != nil || again.UID == c.UID || !uidRE.MatchString(again.UID) {
		t.Fatalf("created again: %q (%v), the deleted one had %q", again.UID, err, c.UID)
	}

	cams := []ingest.Camera{goodCamera("cam-a"), goodCamera("cam-b")}
	if err := r.ImportCameras(ctx, cams, nil); err != nil {
		t.Fatal(err)
	}
	if cams[0].UID == "" || cams[0].UID == cams[1].UID {
		t.Fatalf("imported: uids %q %q", cams[0].UID, cams[1].UID)
	}
	if got, _ := r.Camera(ctx, "cam-b"); got.UID != cams[1].UID {
		t.Fatalf("imported: stored %q, returned %q", got.UID, cams[1].UID)
	}
}

// Cameras of a database from before incarnations get a uid each at the
// upgrade, and own every older recording of their id (Since zero).
func TestCameraIncarnationMigration(t *testing.T) {
	ctx := context.Background()
	// a database that the former sqlitedb migrations brought to step 1
	db := testdb.OpenSQLite(t, "")
	step1, err := fs.ReadFile(migrations.FS, path.Join(migrations.Dir, "sqlite/00001_create.sql"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.Migrate(ctx, db.DB, "registry", []string{string(step1)}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"cam-1", "cam-2"} {
		if _, err := db.Exec(ctx, `INSERT INTO cameras(id, name, department, main_url, transport, record, retention_days, enabled, created_ns, updated_ns)
			VALUES(?, 'Cam', 'police', 'rtsp://10.1.2.3/', 'auto', 1, 0, 1, 1, 1)`, id); err != nil {
			t.Fatal(err)
		}
	}
	// an incident on cam-1 and on a camera deleted before the upgrade
	if _, err := db.Exec(ctx, `INSERT INTO incidents(id, title, start_ns, end_ns, note, created_by, created_ns) VALUES(7, 'T', 1, 2, '', 'a', 1);
		INSERT INTO incident_cameras(incident, camera) VALUES(7, 'cam-1'), (7, 'cam-gone')`); err != nil {
		t.Fatal(err)
	}
	r, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	in, err := r.IncidentByID(ctx, 7)
	if err != nil || len(in.Cameras) != 1 || in.Cameras[0] != "cam-1" || len(in.PastCameras) != 1 || in.PastCameras[0] != "cam-gone" {
		t.Errorf("migrated incident: cameras %v, past %v (%v)", in.Cameras, in.PastCameras, err)
	}
	cams, err := r.Cameras(ctx)
	if err != nil || len(cams) != 2 {
		t.Fatalf("%d cameras (%v)", len(cams), err)
	}
	for _, c := range cams {
		if !uidRE.MatchString(c.UID) || !c.Since.IsZero() {
			t.Errorf("%s: uid %q since %v", c.ID, c.UID, c.Since)
		}
	}
	if cams[0].UID == cams[1].UID {
		t.Errorf("two cameras share the uid %q", cams[0].UID)
	}
}

// An incident names the camera it was made on, not its id: after the camera
// is deleted and its id reused, the incident is not the new camera's, and it
// still holds the id's recordings.
func TestIncidentKeepsItsCamera(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	if _, err := r.CreateCamera(ctx, goodCamera("cam-x")); err != nil {
		t.Fatal(err)
	}
	if _, err := r.CreateCamera(ctx, goodCamera("cam-y")); err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	in, err := r.CreateIncident(ctx, Incident{Title: "police matter", Cameras: []string{"cam-x", "cam-y"},
		Start: start, End: start.Add(time.Hour), CreatedBy: "cop"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.DeleteCamera(ctx, "cam-x"); err != nil {
		t.Fatal(err)
	}
	again := goodCamera("cam-x")
	again.Department = "flood-control"
	if _, err := r.CreateCamera(ctx, again); err != nil {
		t.Fatal(err)
	}
	got, err := r.IncidentByID(ctx, in.ID)
	if err != nil || len(got.Cameras) != 1 || got.Cameras[0] != "cam-y" || len(got.PastCameras) != 1 || got.PastCameras[0] != "cam-x" {
		t.Fatalf("incident: cameras %v, past %v (%v)", got.Cameras, got.PastCameras, err)
	}
	if ins, err := r.Incidents(ctx, "cam-x", time.Time{}, time.Time{}); err != nil || len(ins) != 0 {
		t.Errorf("the new cam-x's incidents: %+v %v", ins, err)
	}
	if ins, err := r.Incidents(ctx, "cam-y", time.Time{}, time.Time{}); err != nil || len(ins) != 1 {
		t.Errorf("cam-y's incidents: %+v %v", ins, err)
	}
	if holds, err := r.Holds(ctx, "cam-x"); err != nil || len(holds) != 1 || !holds[0][0].Equal(start) {
		t.Errorf("holds of cam-x: %v %v", holds, err)
	}
}
