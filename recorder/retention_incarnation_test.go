package recorder

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

// A camera created under a deleted camera's id does not impose its
// retention on the deleted camera's segments: they go by the default, as
// any deleted camera's.
func TestRetentionByIncarnation(t *testing.T) {
	dir := t.TempDir()
	store, err := archive.NewLocalStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ix := rectest.NewIndex(t)
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	ctx := context.Background()
	add := func(age time.Duration) string {
		start := now.Add(-age)
		key := archive.SegmentKey("cam-x", start)
		if err := store.Put(ctx, key, strings.NewReader("xxxx"), 4, nil); err != nil {
			t.Fatal(err)
		}
		if err := ix.Add(ctx, archive.Segment{Camera: "cam-x", Start: start, End: start.Add(time.Minute), Bytes: 4, Key: key,
			Fragments: []archive.Fragment{{Size: 4, Keyframe: true}}}); err != nil {
			t.Fatal(err)
		}
		return key
	}
	// police's cam-x recorded 35 to 10 days ago and was deleted
	if _, err := ix.Own(ctx, archive.Owner{Camera: "cam-x", UID: "police", Department: "police", Since: now.Add(-40 * day)}, now.Add(-40*day)); err != nil {
		t.Fatal(err)
	}
	old35, old20, old10 := add(35*day), add(20*day), add(10*day)
	if err := ix.Disown(ctx, "cam-x", now.Add(-10*day+time.Hour)); err != nil {
		t.Fatal(err)
	}
	rec, err := New(Options{Store: store, Index: ix, SpoolDir: filepath.Join(dir, "spool"), RetentionDays: 30,
		Now: func() time.Time { return now }, Log: testLog(t)}, &recStreams{})
	if err != nil {
		t.Fatal(err)
	}
	// flood-control's cam-x, created 9 days ago, keeps 7 days
	rec.Set(ingest.Camera{ID: "cam-x", UID: "flood", Department: "flood-control", RetentionDays: 7, Since: now.Add(-9 * day)})
	new8, new1 := add(8*day), add(day)
	if err := rec.Retain(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		key  string
		kept bool
	}{
		{"police 35 days, default retention 30", old35, false},
		{"police 20 days", old20, true},
		{"police 10 days", old10, true},
		{"flood-control 8 days, retention 7", new8, false},
		{"flood-control 1 day", new1, true},
	} {
		rc, err := store.Get(ctx, tc.key, 0, -1)
		if err == nil {
			rc.Close()
		}
		if (err == nil) != tc.kept {
			t.Errorf("%s: kept %v, want %v", tc.name, err == nil, tc.kept)
		}
	}
}
