package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/registry"
)

// SIGTERM while recording to a real S3 server: the open segments are closed
// and uploaded, and the process exits within 10 s.
func TestSIGTERMUploadsOpenSegments(t *testing.T) {
	endpoint, ak, sk, bucket, _, _ := testkit.StartS3(t)
	sim := simcam.Start(t, camsim.Options{Count: 2, Codec: "h264"})

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "vigil.db")
	cfgPath := writeConfig(t, dir,
		fmt.Sprintf("backend: s3, s3: { endpoint: %q, bucket: %q, region: us-east-1, tls: false }", endpoint, bucket),
		fmt.Sprintf("spoolDir: %q, segment: 30s", filepath.Join(dir, "spool")), dbPath)

	// register the cameras before the server starts
	ctx := context.Background()
	db := testdb.OpenSQLite(t, dbPath)
	reg, err := registry.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		c := ingest.Camera{ID: fmt.Sprintf("cam-%d", i), Name: "Cam", Department: "police",
			MainURL: sim.URL(i, false), Transport: "tcp", Record: true, Enabled: true}
		if _, err := reg.CreateCamera(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	cmd := serveCmd(cfgPath, "VIGIL_ADMIN_PASSWORD=sigterm-test-pw",
		"VIGIL_STORAGE_S3_ACCESSKEY="+ak, "VIGIL_STORAGE_S3_SECRETKEY="+sk)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// wait until both cameras record, then a few seconds into the 30 s segment
	awaitLog(t, stderr, "camera stream online", 2, 30*time.Second)
	time.Sleep(5 * time.Second) // record into the open segment: this is the content under test
	stopAt := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	testkit.Returned(t, waitErr, 10*time.Second, "vigil after SIGTERM")
	t.Logf("exited %s after SIGTERM", time.Since(stopAt).Round(time.Millisecond))

	// every camera's open segment reached the store and the index
	cfg, err := config.Load(cfgPath, []string{"VIGIL_STORAGE_S3_ACCESSKEY=" + ak, "VIGIL_STORAGE_S3_SECRETKEY=" + sk})
	if err != nil {
		t.Fatal(err)
	}
	db2, ix, store, err := app.OpenIndexAndStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	for i := 1; i <= 2; i++ {
		id := fmt.Sprintf("cam-%d", i)
		segs, err := ix.Segments(ctx, id, stopAt.Add(-time.Hour), stopAt.Add(time.Hour), false)
		if err != nil || len(segs) == 0 {
			t.Fatalf("%s: no segment after SIGTERM (%v)", id, err)
		}
		last := segs[len(segs)-1]
		if d := last.End.Sub(last.Start); d < 3*time.Second {
			t.Errorf("%s: last segment lasts %s, want the ~5 s recorded before SIGTERM", id, d)
		}
		if gap := stopAt.Sub(last.End); gap > 3*time.Second {
			t.Errorf("%s: last segment ends %s before SIGTERM", id, gap)
		}
		rc, err := store.Get(ctx, last.Key, 0, -1)
		if err != nil {
			t.Fatalf("%s: %s not in S3: %v", id, last.Key, err)
		}
		rc.Close()
	}
}

// vigil reindex rebuilds a lost index from the segment files in the store.
func TestReindexCommand(t *testing.T) {
	sim := simcam.Start(t, camsim.Options{Count: 1, Codec: "h264"})
	dir := t.TempDir()
	cfgPath := writeLocalConfig(t, dir, "2s")
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}

	// record a few segments
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{AdminPassword: "reindex-test-pw"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Registry.CreateCamera(ctx, ingest.Camera{ID: "cam-1", Name: "Cam", Department: "police",
		MainURL: sim.URL(1, false), Transport: "tcp", Record: true, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	far := time.Now().Add(time.Hour)
	testkit.WaitFor(t, 30*time.Second, "3 segments recorded", func() bool {
		segs, _ := a.Index.Segments(context.Background(), "cam-1", time.Time{}, far, false)
		return len(segs) >= 3
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	segs, _ := a.Index.Segments(context.Background(), "cam-1", time.Time{}, far, true)
	a.Close()

	// lose the database, then rebuild the index from the store
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(dir, "vigil.db"+suffix))
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"reindex", "--config", cfgPath}, &out, &out, nil); err != nil {
		t.Fatalf("reindex: %v\n%s", err, out.String())
	}
	m := regexp.MustCompile(`reindexed (\d+) segments`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("output: %q", out.String())
	}
	if n, _ := strconv.Atoi(m[1]); n != len(segs) {
		t.Fatalf("reindexed %d segments, the store holds %d", n, len(segs))
	}
	db, ix, _, err := app.OpenIndexAndStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	again, err := ix.Segments(context.Background(), "cam-1", time.Time{}, far, true)
	if err != nil || len(again) != len(segs) {
		t.Fatalf("after reindex: %d rows (%v), want %d", len(again), err, len(segs))
	}
	for i := range segs {
		s, r := segs[i], again[i]
		if s.Key != r.Key || !s.Start.Equal(r.Start) || !s.End.Equal(r.End) || s.Bytes != r.Bytes || len(s.Fragments) != len(r.Fragments) {
			t.Errorf("row %d differs after reindex:\n%+v\n%+v", i, s, r)
		}
	}
	db.Close()

	// cam-1 registered again is a new camera: the files recorded before
	// belong to no camera until the admin gives them to it
	a, err = app.New(context.Background(), cfg, app.Options{AdminPassword: "reindex-test-pw"})
	if err != nil {
		t.Fatal(err)
	}
	cam, err := a.Registry.CreateCamera(context.Background(), ingest.Camera{ID: "cam-1", Name: "Cam", Department: "police",
		MainURL: sim.URL(1, false), Transport: "tcp", Record: false, Enabled: false})
	if err != nil {
		t.Fatal(err)
	}
	a.Cameras.Apply(cam)
	if hidden, _ := a.Index.Segments(context.Background(), "cam-1", time.Time{}, far, false); len(hidden) != 0 {
		t.Errorf("the camera registered again shows %d segments recorded before it", len(hidden))
	}
	a.Close()
	out.Reset()
	if err := run(context.Background(), []string{"reindex", "--config", cfgPath}, &out, &out, nil); err != nil {
		t.Fatalf("reindex: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("%d segments belong to no camera", len(segs))) {
		t.Errorf("reindex does not say that %d segments belong to no camera:\n%s", len(segs), out.String())
	}
	out.Reset()
	if err := run(context.Background(), []string{"reindex", "--adopt-orphans", "--config", cfgPath}, &out, &out, nil); err != nil {
		t.Fatalf("reindex --adopt-orphans: %v\n%s", err, out.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("%d segments of no camera given", len(segs))) || strings.Contains(out.String(), "belong to no camera") {
		t.Errorf("reindex --adopt-orphans:\n%s", out.String())
	}
	db, ix, _, err = app.OpenIndexAndStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if back, _ := ix.Segments(context.Background(), "cam-1", time.Time{}, far, false); len(back) != len(segs) {
		t.Errorf("after --adopt-orphans cam-1 shows %d segments, want %d", len(back), len(segs))
	}
}
