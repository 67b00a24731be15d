package registry

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

// TestCameraPasswordsEncrypted: with a key, the database file holds no
// camera password, the registry gives them back, a database from before
// encryption is encrypted on open, and a wrong key or no key cannot read them.
func TestCameraPasswordsEncrypted(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "vigil.db")
	var db *sqldb.DB
	if testdb.Postgres() {
		db = testdb.OpenPostgres(t)
	} else {
		db = testdb.OpenSQLite(t, path) // its file is checked for passwords
	}

	// A database written before encryption.
	plain, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	old := goodCamera("police-001")
	old.MainURL = "rtsp://admin:Old-Pa55word@10.0.0.1/main"
	old.SubURL = "rtsp://admin:Old-Pa55word@10.0.0.1/sub"
	if _, err := plain.CreateCamera(ctx, old); err != nil {
		t.Fatal(err)
	}

	key, created, err := LoadKey(filepath.Join(dir, "vigil.key"), "")
	if err != nil || !created {
		t.Fatalf("LoadKey: %v created %v", err, created)
	}
	if st, err := os.Stat(filepath.Join(dir, "vigil.key")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", st.Mode(), err)
	}
	again, created, err := LoadKey(filepath.Join(dir, "vigil.key"), "")
	if err != nil || created || !bytes.Equal(again, key) {
		t.Fatalf("second LoadKey: %v created %v same %v", err, created, bytes.Equal(again, key))
	}
	r, err := OpenWith(ctx, db, Options{SecretKey: key})
	if err != nil {
		t.Fatal(err)
	}
	c := goodCamera("police-002")
	c.MainURL = "rtsp://admin:New-Pa55word@10.0.0.2:554/Streaming/Channels/101"
	if _, err := r.CreateCamera(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.ImportCameras(ctx, []ingest.Camera{{ID: "police-003", Name: "x", Department: "police",
		MainURL: "rtsp://u:Csv-Pa55word@10.0.0.3/x"}}, nil); err != nil {
		t.Fatal(err)
	}
	red := RedactCamera(c)
	red.Name = "renamed"
	if _, _, err := r.ReplaceCamera(ctx, red); err != nil {
		t.Fatal(err)
	}

	// The registry gives the passwords back.
	cams, err := r.Cameras(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"police-001": "Old-Pa55word", "police-002": "New-Pa55word", "police-003": "Csv-Pa55word"}
	for _, cam := range cams {
		if ingest.URLPassword(cam.MainURL) != want[cam.ID] {
			t.Errorf("%s: main URL %s", cam.ID, ingest.RedactURL(cam.MainURL))
		}
	}
	if got, _ := r.Camera(ctx, "police-001"); got.SubURL != old.SubURL || got.MainURL != old.MainURL {
		t.Errorf("police-001 read back %s %s", ingest.RedactURL(got.MainURL), ingest.RedactURL(got.SubURL))
	}

	// The database holds none of them (its file, WAL included): not even the
	// plain-text rows from before encryption in free pages.
	files, _ := filepath.Glob(path + "*") // none on PostgreSQL
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, pw := range want {
			if bytes.Contains(b, []byte(pw)) {
				t.Errorf("%s holds the password %s", f, pw)
			}
		}
	}
	var stored string
	if err := db.QueryRow(ctx, `SELECT main_url FROM cameras WHERE id = 'police-002'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stored, "rtsp://admin:"+sealedPrefix) || !strings.HasSuffix(stored, "@10.0.0.2:554/Streaming/Channels/101") {
		t.Errorf("stored %s", stored)
	}

	// A sealed password moved to another camera's row does not open.
	if _, err := db.Exec(ctx, `UPDATE cameras SET main_url = ? WHERE id = 'police-003'`, stored); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Camera(ctx, "police-003"); err == nil {
		t.Error("a password sealed for police-002 opens in police-003's row")
	}
	if _, err := db.Exec(ctx, `DELETE FROM cameras WHERE id = 'police-003'`); err != nil {
		t.Fatal(err)
	}

	// A password that looks sealed is a password like any other with the
	// key, and refused without it.
	odd := goodCamera("police-004")
	odd.MainURL = "rtsp://u:" + sealedPrefix + "AAAA@10.0.0.4/x"
	if _, err := r.CreateCamera(ctx, odd); err != nil {
		t.Fatal(err)
	}
	if got, err := r.Camera(ctx, "police-004"); err != nil || got.MainURL != odd.MainURL {
		t.Errorf("read back %q %v", got.MainURL, err)
	}
	if _, err := r.Cameras(ctx); err != nil {
		t.Errorf("list: %v", err)
	}
	if _, err := plain.CreateCamera(ctx, goodCamera("police-005")); err != nil {
		t.Fatal(err)
	}
	odd.ID = "police-006"
	if _, err := plain.CreateCamera(ctx, odd); err == nil {
		t.Error("without a key, a password that looks sealed is stored")
	}

	// Another key fails at open; no key cannot read them.
	other := bytes.Repeat([]byte{7}, KeySize)
	if _, err := OpenWith(ctx, db, Options{SecretKey: other}); err == nil || !strings.Contains(err.Error(), "secret key") {
		t.Errorf("open with another key: %v", err)
	}
	nokey, err := Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := nokey.Camera(ctx, "police-002"); err == nil {
		t.Error("read without the key")
	}
}

func TestLoadKey(t *testing.T) {
	dir := t.TempDir()
	hexKey := strings.Repeat("ab", KeySize)
	if k, _, err := LoadKey(filepath.Join(dir, "none"), hexKey); err != nil || len(k) != KeySize {
		t.Fatalf("env hex key: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "none")); err == nil {
		t.Error("a key from the environment wrote a key file")
	}
	for _, bad := range []string{"short", strings.Repeat("ab", KeySize+1)} {
		if _, _, err := LoadKey(filepath.Join(dir, "none"), bad); err == nil || !strings.Contains(err.Error(), "VIGIL_SECRET_KEY") {
			t.Errorf("env %q: %v", bad, err)
		}
	}
	open := filepath.Join(dir, "open.key")
	if err := os.WriteFile(open, []byte(hexKey), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadKey(open, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("a key file readable by others: %v", err)
	}
}
