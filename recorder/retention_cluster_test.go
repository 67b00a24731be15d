package recorder

import (
	"context"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

// In a cluster (RunsHere set) a node retains the cameras it records at every
// pass; the ids no camera owns (deleted cameras) only where RunsHere says;
// and never a camera another node records, whose retention it does not know.
func TestRetentionRunsHere(t *testing.T) {
	dir := t.TempDir()
	store, err := archive.NewLocalStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ix := rectest.NewIndex(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	ctx := context.Background()
	add := func(cam string, age time.Duration) string {
		start := now.Add(-age)
		key := archive.SegmentKey(cam, start)
		if err := store.Put(ctx, key, strings.NewReader("xxxx"), 4, nil); err != nil {
			t.Fatal(err)
		}
		if err := ix.Add(ctx, archive.Segment{Camera: cam, Start: start, End: start.Add(time.Minute), Bytes: 4, Key: key,
			Fragments: []archive.Fragment{{Size: 4, Keyframe: true}}}); err != nil {
			t.Fatal(err)
		}
		return key
	}
	kept := func(key string) bool {
		rc, err := store.Get(ctx, key, 0, -1)
		if err == nil {
			rc.Close()
		}
		return err == nil
	}
	for _, o := range []archive.Owner{
		{Camera: "cam-other", UID: "o", Department: "d", Since: now.Add(-50 * day)}, // recorded by another node
		{Camera: "cam-gone", UID: "g", Department: "d", Since: now.Add(-50 * day)},  // deleted below
	} {
		if _, err := ix.Own(ctx, o, now.Add(-50*day)); err != nil {
			t.Fatal(err)
		}
	}
	other, gone := add("cam-other", 40*day), add("cam-gone", 40*day)
	if err := ix.Disown(ctx, "cam-gone", now.Add(-day)); err != nil {
		t.Fatal(err)
	}
	var elected atomic.Bool
	rec, err := New(Options{Store: store, Index: ix, SpoolDir: filepath.Join(dir, "spool"), RetentionDays: 30,
		Now: func() time.Time { return now }, Log: testLog(t), RunsHere: elected.Load}, &recStreams{})
	if err != nil {
		t.Fatal(err)
	}
	rec.Set(ingest.Camera{ID: "cam-here", UID: "h", Department: "d", RetentionDays: 7, Since: now.Add(-50 * day)})
	here := add("cam-here", 10*day)

	if err := rec.Retain(ctx); err != nil {
		t.Fatal(err)
	}
	if kept(here) || !kept(gone) || !kept(other) {
		t.Fatalf("not elected: kept here %v gone %v other %v; want false true true", kept(here), kept(gone), kept(other))
	}
	elected.Store(true)
	if err := rec.Retain(ctx); err != nil {
		t.Fatal(err)
	}
	if kept(gone) || !kept(other) {
		t.Fatalf("elected: kept gone %v other %v; want false true", kept(gone), kept(other))
	}
}
