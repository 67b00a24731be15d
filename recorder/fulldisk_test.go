package recorder

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
)

// logCounter counts log records by level and keeps their messages.
type logCounter struct {
	mu   sync.Mutex
	msgs []string
	byLv map[slog.Level]int
}

func (c *logCounter) Enabled(context.Context, slog.Level) bool { return true }
func (c *logCounter) Handle(_ context.Context, r slog.Record) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byLv[r.Level]++
	c.msgs = append(c.msgs, r.Level.String()+" "+r.Message)
	return nil
}
func (c *logCounter) WithAttrs([]slog.Attr) slog.Handler { return c }
func (c *logCounter) WithGroup(string) slog.Handler      { return c }

// A full disk: the segment already recorded stays and is uploaded, nothing is
// counted as lost for the failed writes, the failure is logged once instead
// of at every keyframe, and recording resumes by itself once writes work.
// Writes go to /dev/full, where the kernel answers ENOSPC.
func TestSpoolDiskFull(t *testing.T) {
	dir := t.TempDir()
	logs := &logCounter{byLv: map[slog.Level]int{}}
	r := newFullDiskRecorder(t, dir, Options{Log: slog.New(logs)})
	var full atomic.Bool
	r.createFile = fullDiskWhen(full.Load)
	w := &camWriter{r: r, camera: "cam-1", log: r.log, recording: &atomic.Bool{}}
	play := clipPlayer(t, w)
	waiting := func() []string { return spoolWaiting(r) }

	play(5 * time.Second) // one 4 s segment closed, the next one open
	if got := waiting(); len(got) != 1 {
		t.Fatalf("before the disk fills: waiting %v", got)
	}
	full.Store(true)
	// the open segment's file still works (it was opened before); the next
	// ones cannot be written: 30 s of camera time, 15 keyframes
	play(40 * time.Second)
	if got := waiting(); len(got) != 2 {
		t.Fatalf("while the disk is full: waiting %v, want the two segments recorded before", got)
	}
	var st0 Status
	r.spool.status(&st0)
	if st0.Dropped != 0 {
		t.Errorf("failed writes counted as %d lost segments", st0.Dropped)
	}
	logs.mu.Lock()
	errs := logs.byLv[slog.LevelError]
	logs.mu.Unlock()
	if errs == 0 || errs > 2 {
		t.Errorf("%d error lines while the disk was full, want 1 (2 at most): %v", errs, logs.msgs)
	}
	if w.recording.Load() {
		t.Error("recording reported while nothing can be written")
	}

	// space again: recording resumes within writeRetry and a keyframe
	full.Store(false)
	w.failedAt = time.Now().Add(-writeRetry) // the retry pause is wall-clock time; the clip is not
	play(50 * time.Second)
	if !w.recording.Load() {
		t.Fatal("recording did not resume")
	}
	logs.mu.Lock()
	resumed := false
	for _, m := range logs.msgs {
		resumed = resumed || strings.Contains(m, "recording resumed")
	}
	logs.mu.Unlock()
	if !resumed {
		t.Errorf("no line says recording resumed: %v", logs.msgs)
	}
	w.closeSegment("test")
	if got := waiting(); len(got) < 4 {
		t.Fatalf("after the disk has space again: waiting %v", got)
	}
	// nothing empty was left behind in the spool
	err := filepath.Walk(filepath.Join(dir, "spool"), func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && info.Size() == 0 {
			t.Errorf("empty spool file left: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// newFullDiskRecorder skips the test where there is no /dev/full and
// returns a recorder of 4 s segments over a local store in dir, with opts
// as the rest of its options.
func newFullDiskRecorder(t *testing.T, dir string, opts Options) *Recorder {
	t.Helper()
	if _, err := os.Stat("/dev/full"); err != nil {
		t.Skip("no /dev/full")
	}
	opts.SegmentDuration = 4 * time.Second
	r, err := New(localOptions(t, dir, opts), &recStreams{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// fullDiskWhen creates spool files as the recorder does while full() is
// false; while it is true the file is /dev/full, where the first write fails
// with ENOSPC.
func fullDiskWhen(full func() bool) func(path string) (*os.File, error) {
	return func(path string) (*os.File, error) {
		if full() {
			return os.OpenFile("/dev/full", os.O_WRONLY, 0)
		}
		return createSpoolFile(path)
	}
}

// clipPlayer feeds the test clip to w as camera cam-1's main stream; the
// function it returns writes the clip's units up to a camera time.
func clipPlayer(t *testing.T, w *camWriter) func(until time.Duration) {
	t.Helper()
	fx := loadRecFixture(t)
	st := ingest.NewStream("cam-1/main")
	c := newRecClip(fx, st.SetTracks(fx.tracks(false)), recT0)
	return func(until time.Duration) {
		for c.videoPTS() < until {
			w.unit(c.next(), false)
		}
	}
}

// spoolWaiting lists the keys of the segments waiting in r's spool for
// upload, oldest first.
func spoolWaiting(r *Recorder) []string {
	r.spool.mu.Lock()
	defer r.spool.mu.Unlock()
	var keys []string
	for _, it := range r.spool.waiting {
		keys = append(keys, it.key)
	}
	return keys
}
