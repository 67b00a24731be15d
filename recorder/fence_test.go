package recorder

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/cluster/lease"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// files lists the regular files under dir, relative and with slashes.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	return out
}

// A segment the fence refuses is moved to the spool's fenced directory and
// never stored nor indexed; one the fence cannot decide on now (the
// database does not answer) waits and is stored later; the fenced files
// stay out of the next start's recovery.
func TestFencedSegmentsMovedAside(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	var mu sync.Mutex
	asked := map[string]int{}
	fence := func(ctx context.Context, camera string, start, end time.Time) error {
		mu.Lock()
		defer mu.Unlock()
		asked[camera]++
		if !end.After(start) {
			t.Errorf("%s: fence asked for a segment from %v to %v", camera, start, end)
		}
		switch {
		case camera == "cam-fenced":
			return fmt.Errorf("cluster: segment of %s at %v: %w", camera, start, lease.ErrFenced)
		case asked[camera] == 1:
			return errors.New("database unreachable")
		}
		return nil
	}
	h := startLocal(t, dir, Options{SegmentDuration: 4 * time.Second, UploadRetryMax: 200 * time.Millisecond, Fence: fence})
	for i, id := range []string{"cam-fenced", "cam-ok"} {
		st, c := h.camera(id, false, recT0.Add(time.Duration(i)*time.Second))
		c.feedUntil(st, 9*time.Second)
		testkit.WaitFor(t, 5*time.Second, "recording", func() bool { return h.rec.Recording(id) })
		st.Close()
	}
	testkit.WaitFor(t, 20*time.Second, "uploads and fences", func() bool {
		s := h.rec.Status()
		return s.Uploaded == 3 && s.Fenced == 3 && s.Waiting == 0
	})
	if st := h.rec.Status(); st.SpoolBytes != 0 || st.Dropped != 0 {
		t.Errorf("status %+v", st)
	}
	stored := files(t, filepath.Join(dir, "store"))
	for _, f := range stored {
		if strings.Contains(f, "cam-fenced") {
			t.Errorf("fenced camera stored: %s", f)
		}
	}
	if segs, err := h.ix.Segments(context.Background(), "cam-fenced", time.Unix(0, 0), time.Unix(1<<32, 0), true); err != nil || len(segs) != 0 {
		t.Errorf("fenced camera indexed: %v, %v", segs, err)
	}
	checkRecStored(t, h.store, h.ix, []string{"cam-ok"}, true, "h264")
	spool := files(t, filepath.Join(dir, "spool"))
	if len(spool) != 3 {
		t.Fatalf("spool: %v, want the 3 fenced segments", spool)
	}
	for _, f := range spool {
		if !strings.HasPrefix(f, FencedDir+"/") || !strings.Contains(f, "cam-fenced") {
			t.Errorf("spool file %s: want under %s/", f, FencedDir)
		}
	}
	h.stop()

	// a new start leaves them alone
	h2 := startLocal(t, dir, Options{SegmentDuration: 4 * time.Second})
	time.Sleep(300 * time.Millisecond)
	if st := h2.rec.Status(); st.Waiting != 0 || st.Uploaded != 0 || st.SpoolBytes != 0 {
		t.Errorf("fenced segments recovered: %+v", st)
	}
	if got := files(t, filepath.Join(dir, "spool")); len(got) != 3 {
		t.Errorf("spool after restart: %v", got)
	}
}

// The cluster keeps its state in a hidden file of the spool directory: the
// recovery of the spool leaves it alone, without a word.
func TestSpoolRecoverSkipsHiddenFiles(t *testing.T) {
	dir := t.TempDir()
	state := filepath.Join(dir, ".cluster-provisional.json")
	if err := os.WriteFile(state, []byte(`[]`), 0o644); err != nil {
		t.Fatal(err)
	}
	var logs strings.Builder
	s := newSpool(dir, 1<<30, time.Second, slog.New(slog.NewTextHandler(&logs, nil)))
	n, err := s.recover()
	if err != nil || n != 0 {
		t.Fatalf("recover: %d, %v", n, err)
	}
	if _, err := os.Stat(state); err != nil {
		t.Errorf("state file: %v", err)
	}
	if logs.Len() != 0 {
		t.Errorf("logged: %s", logs.String())
	}
}
