package recorder

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
)

func TestRetention(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	opts := localOptions(t, t.TempDir(), Options{RetentionDays: 30, MaxBytesPerCamera: 2500, Now: func() time.Time { return now }})
	store, ix := opts.Store, opts.Index
	day := 24 * time.Hour
	ctx := context.Background()
	add := func(cam string, age time.Duration, size int) string {
		return addSegment(t, store, ix, cam, now.Add(-age), size)
	}
	a10, a9, a8held, a8pinned := add("cam-a", 10*day, 100), add("cam-a", 9*day, 100), add("cam-a", 8*day, 100), add("cam-a", 8*day+time.Hour, 100)
	a1, a0 := add("cam-a", day, 100), add("cam-a", time.Hour, 100)
	var b []string
	for i := 5; i >= 1; i-- {
		b = append(b, add("cam-b", time.Duration(i)*time.Hour, 1000))
	}
	c31, c29 := add("cam-c", 31*day, 10), add("cam-c", 29*day, 10)
	d40 := add("cam-d", 40*day, 10)

	holdsErr := errors.New("incidents unavailable")
	holds := func(_ context.Context, cam string) ([][2]time.Time, error) {
		switch cam {
		case "cam-a": // an incident over the segment 8 days ago
			s := now.Add(-8 * day).Add(30 * time.Second)
			return [][2]time.Time{{s, s.Add(time.Second)}}, nil
		case "cam-b": // an incident over the oldest segment
			return [][2]time.Time{{now.Add(-6 * time.Hour), now.Add(-5*time.Hour + time.Second)}}, nil
		case "cam-d":
			return nil, holdsErr
		}
		return nil, nil
	}
	opts.Holds = holds
	rec, err := New(opts, &recStreams{})
	if err != nil {
		t.Fatal(err)
	}
	rec.Set(ingest.Camera{ID: "cam-a", RetentionDays: 7, Enabled: true})
	unpin := rec.Pin(a8pinned)

	err = rec.Retain(ctx)
	if !errors.Is(err, holdsErr) {
		t.Errorf("Retain: %v, want the holds error of cam-d", err)
	}
	exists := func(key string) bool {
		rc, err := store.Get(ctx, key, 0, -1)
		if err == nil {
			rc.Close()
		}
		segs, qerr := ix.Segments(ctx, strings.Split(key, "/")[0], time.Unix(0, 0), time.Unix(1<<32, 0), false)
		if qerr != nil {
			t.Fatal(qerr)
		}
		inIndex := false
		for _, s := range segs {
			inIndex = inIndex || s.Key == key
		}
		if inIndex != (err == nil) {
			t.Errorf("%s: in index %v, object error %v", key, inIndex, err)
		}
		return inIndex
	}
	for _, tc := range []struct {
		name string
		key  string
		kept bool
	}{
		{"cam-a 10 days, retention 7", a10, false},
		{"cam-a 9 days", a9, false},
		{"cam-a 8 days, held by an incident", a8held, true},
		{"cam-a 8 days, pinned by a reader", a8pinned, true},
		{"cam-a 1 day", a1, true},
		{"cam-a now", a0, true},
		{"cam-b oldest, held", b[0], true},
		{"cam-b 2nd oldest, over the size limit", b[1], false},
		{"cam-b 3rd oldest, over the size limit", b[2], false},
		{"cam-b 4th oldest, over the size limit", b[3], false},
		{"cam-b newest", b[4], true},
		{"cam-c 31 days, default retention 30", c31, false},
		{"cam-c 29 days", c29, true},
		{"cam-d 40 days, holds unknown", d40, true},
	} {
		if got := exists(tc.key); got != tc.kept {
			t.Errorf("%s: kept %v, want %v", tc.name, got, tc.kept)
		}
	}
	if n, _ := ix.CameraBytes(ctx, "cam-b"); n != 2000 {
		t.Errorf("cam-b holds %d bytes", n)
	}
	if got := rec.Status().Deleted; got != 6 {
		t.Errorf("deleted %d", got)
	}
	// unpinned, the old segment goes at the next pass
	unpin()
	unpin()
	rec.Retain(ctx)
	if exists(a8pinned) || !exists(a8held) {
		t.Error("after unpin: the pinned segment should go, the held one stay")
	}
}

// addSegment stores size bytes as a segment of cam that starts at start and
// lasts a minute, indexes it, and returns its key.
func addSegment(t *testing.T, store archive.Store, ix *archive.Index, cam string, start time.Time, size int) string {
	t.Helper()
	ctx := context.Background()
	key := archive.SegmentKey(cam, start)
	if err := store.Put(ctx, key, strings.NewReader(strings.Repeat("x", size)), int64(size), nil); err != nil {
		t.Fatal(err)
	}
	if err := ix.Add(ctx, archive.Segment{Camera: cam, Start: start, End: start.Add(time.Minute), Bytes: int64(size), Key: key,
		Fragments: []archive.Fragment{{Size: int64(size), Keyframe: true}}}); err != nil {
		t.Fatal(err)
	}
	return key
}

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
	store := &hookStore{LocalStore: local, onDelete: func(string) {}}
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	opts := localOptions(t, dir, Options{Store: store, RetentionDays: 30, Now: func() time.Time { return now }})
	ix := opts.Index
	ctx := context.Background()
	var keys []string
	for i := range 4 {
		keys = append(keys, addSegment(t, store, ix, "cam-a", now.Add(-40*24*time.Hour+time.Duration(i)*time.Minute), 4))
	}
	// After the first deletion, a responder marks an incident over the last
	// two segments.
	var mu sync.Mutex
	var incidents [][2]time.Time
	store.onDelete = func(key string) {
		if key != keys[0] {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		_, start, _ := archive.ParseSegmentKey(keys[2])
		incidents = append(incidents, [2]time.Time{start.Add(time.Second), start.Add(90 * time.Second)})
	}
	holds := func(context.Context, string) ([][2]time.Time, error) {
		mu.Lock()
		defer mu.Unlock()
		return append([][2]time.Time(nil), incidents...), nil
	}
	opts.Holds = holds
	rec, err := New(opts, &recStreams{})
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
