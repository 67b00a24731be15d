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
	"testing"
	"time"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
)

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
	deadline := time.Now().Add(30 * time.Second)
	var before int
	for before < 3 {
		segs, _ := a.Index.Segments(context.Background(), "cam-1", time.Time{}, far, false)
		before = len(segs)
		if time.Now().After(deadline) {
			t.Fatalf("only %d segments recorded", before)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
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
