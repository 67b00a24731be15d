package recorder

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// hookStore is a LocalStore that calls onDelete after each deletion.
type hookStore struct {
	*archive.LocalStore
	onDelete func(key string)
}

func (s *hookStore) Delete(ctx context.Context, key string) error {
	err := s.LocalStore.Delete(ctx, key)
	s.onDelete(key)
	return err
}

// TestRetentionIncidentDuringPass: an incident created while a retention
// pass runs (one deletion after another, each a request to the store)
// holds its recordings from that moment, not from the next pass.
func TestRetentionIncidentDuringPass(t *testing.T) {
	dir := t.TempDir()
	local, err := archive.NewLocalStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ix := openRecIndex(t, filepath.Join(dir, "vigil.db"))
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	ctx := context.Background()
	var keys []string
	for i := range 4 {
		start := now.Add(-40*24*time.Hour + time.Duration(i)*time.Minute)
		key := archive.SegmentKey("cam-a", start)
		if err := local.Put(ctx, key, strings.NewReader("data"), 4, nil); err != nil {
			t.Fatal(err)
		}
		if err := ix.Add(ctx, archive.Segment{Camera: "cam-a", Start: start, End: start.Add(time.Minute), Bytes: 4, Key: key,
			Fragments: []archive.Fragment{{Size: 4, Keyframe: true}}}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	// After the first deletion, a responder marks an incident over the last
	// two segments.
	var mu sync.Mutex
	var incidents [][2]time.Time
	store := &hookStore{LocalStore: local, onDelete: func(key string) {
		if key != keys[0] {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_, start, _ := archive.ParseSegmentKey(keys[2])
		incidents = append(incidents, [2]time.Time{start.Add(time.Second), start.Add(90 * time.Second)})
	}}
	holds := func(context.Context, string) ([][2]time.Time, error) {
		mu.Lock()
		defer mu.Unlock()
		return append([][2]time.Time(nil), incidents...), nil
	}
	rec, err := New(Options{Store: store, Index: ix, SpoolDir: filepath.Join(dir, "spool"), RetentionDays: 30,
		Holds: holds, Now: func() time.Time { return now }, Log: testLog(t)}, &recStreams{})
	if err != nil {
		t.Fatal(err)
	}
	rec.Set(ingest.Camera{ID: "cam-a", Enabled: true})
	if err := rec.Retain(ctx); err != nil {
		t.Fatal(err)
	}
	segs, err := ix.Segments(ctx, "cam-a", now.Add(-100*24*time.Hour), now, false)
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, s := range segs {
		left = append(left, s.Key)
	}
	want := []string{keys[2], keys[3]}
	if strings.Join(left, " ") != strings.Join(want, " ") {
		t.Fatalf("left after retention %v, want the held %v", left, want)
	}
}
