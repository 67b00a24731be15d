package recorder

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

var recT0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

// testLog is the recorder's logger in a test: into the test's log.
func testLog(t testing.TB) *slog.Logger { return testkit.Log(t) }

// checkLeaks verifies at the end of the test, after the cleanups registered
// later (which stop what the test started), that no goroutine was left. On
// PostgreSQL the test server (one per test binary, with goroutines that
// outlive the test) is started first.
func checkLeaks(t *testing.T) {
	if testdb.Postgres() {
		pgtest.URL(t)
	}
	testkit.CheckLeaks(t)
}

// recHarness runs a Recorder over test-fed streams.
type recHarness struct {
	t      *testing.T
	rec    *Recorder
	src    *recStreams
	ix     *archive.Index
	store  archive.Store
	cancel context.CancelFunc
	done   chan error
}

// localOptions are opts with the index, the spool and (unless opts has a
// Store) a local store in dir, and (unless opts has a Log) the test's log.
func localOptions(t testing.TB, dir string, opts Options) Options {
	t.Helper()
	if opts.Store == nil {
		store, err := archive.NewLocalStore(filepath.Join(dir, "store"))
		if err != nil {
			t.Fatal(err)
		}
		opts.Store = store
	}
	opts.Index = rectest.NewIndex(t)
	opts.SpoolDir = filepath.Join(dir, "spool")
	if opts.Log == nil {
		opts.Log = testLog(t)
	}
	return opts
}

// newLocal makes, without running it, a recorder with localOptions in a
// temporary directory, over streams the test feeds.
func newLocal(t testing.TB, opts Options) *Recorder {
	t.Helper()
	r, err := New(localOptions(t, t.TempDir(), opts), &recStreams{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// startLocal starts a recorder with localOptions in dir.
func startLocal(t *testing.T, dir string, opts Options) *recHarness {
	t.Helper()
	return startRecorder(t, localOptions(t, dir, opts))
}

func startRecorder(t *testing.T, opts Options) *recHarness {
	t.Helper()
	return startRecorderFrom(t, opts, nil)
}

// startRecorderFrom runs a Recorder over src; nil means streams the test feeds (h.src).
func startRecorderFrom(t *testing.T, opts Options, src Source) *recHarness {
	t.Helper()
	return startPrepared(t, opts, src, nil)
}

// startPrepared runs a Recorder over src (nil: h.src), calling prepare, when
// not nil, between New and Run.
func startPrepared(t *testing.T, opts Options, src Source, prepare func(*Recorder)) *recHarness {
	t.Helper()
	h := &recHarness{t: t, src: &recStreams{}, ix: opts.Index, store: opts.Store}
	if src == nil {
		src = h.src
	}
	if opts.Log == nil {
		opts.Log = testLog(t)
	}
	rec, err := New(opts, src)
	if err != nil {
		t.Fatal(err)
	}
	h.rec = rec
	if prepare != nil {
		prepare(rec)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- rec.Run(ctx) }()
	t.Cleanup(h.stop)
	return h
}

func (h *recHarness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	h.cancel = nil
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		h.t.Fatal("Run did not return")
	}
}

// camera registers a recorded camera with a stream the test feeds.
func (h *recHarness) camera(id string, audio bool, base time.Time) (*ingest.Stream, *recClip) {
	fx := loadRecFixture(h.t)
	st := h.src.add(id)
	media := st.SetTracks(fx.tracks(audio))
	h.rec.Set(ingest.Camera{ID: id, Record: true, Enabled: true})
	testkit.WaitFor(h.t, 5*time.Second, "the recorder to subscribe", func() bool { return st.Stats().Subscribers > 0 })
	return st, newRecClip(fx, media, base)
}

func TestRecordLocal(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	h := startLocal(t, dir, Options{SegmentDuration: 4 * time.Second})

	cams := []string{"cam-a", "cam-b"}
	for i, id := range cams {
		st, c := h.camera(id, i == 0, recT0.Add(time.Duration(i)*time.Second))
		c.feedUntil(st, 9*time.Second)
		testkit.WaitFor(t, 5*time.Second, "recording", func() bool { return h.rec.Recording(id) })
		st.Close() // the writer drains its queue, then closes the segment
	}
	testkit.WaitFor(t, 20*time.Second, "uploads", func() bool {
		s := h.rec.Status()
		return s.Uploaded == 6 && s.Waiting == 0
	})
	st := h.rec.Status()
	if st.Dropped != 0 || st.UploadErrors != 0 || st.SpoolBytes != 0 {
		t.Errorf("status %+v", st)
	}
	rows := checkRecStored(t, h.store, h.ix, cams, true, "h264")
	for i, id := range cams {
		segs := rows[id]
		if len(segs) != 3 {
			t.Fatalf("%s: %d segments, want 3", id, len(segs))
		}
		base := recT0.Add(time.Duration(i) * time.Second)
		for j, s := range segs {
			wantStart := base.Add(time.Duration(j) * 4 * time.Second)
			wantEnd := wantStart.Add(4 * time.Second)
			if j == 2 {
				wantEnd = base.Add(9 * time.Second)
			}
			if !s.Start.Equal(wantStart) || !s.End.Equal(wantEnd) {
				t.Errorf("%s segment %d: %v – %v, want %v – %v", id, j, s.Start, s.End, wantStart, wantEnd)
			}
			if s.Key != archive.SegmentKey(id, wantStart) {
				t.Errorf("%s segment %d key %s", id, j, s.Key)
			}
		}
	}
	// a player opens a segment on its own: ffprobe, where installed
	if ffprobe, err := exec.LookPath("ffprobe"); err == nil {
		file := filepath.Join(filepath.Join(dir, "store"), filepath.FromSlash(rows["cam-a"][0].Key))
		out, err := exec.Command(ffprobe, "-v", "error", "-count_frames", "-show_entries",
			"stream=codec_name,nb_read_frames", "-of", "csv=p=0", file).CombinedOutput()
		if err != nil || string(out) != "h264,100\naac,188\n" {
			t.Errorf("ffprobe %s: %v\n%s", file, err, out)
		}
	}

	// nothing left in the spool
	var left []string
	filepath.WalkDir(filepath.Join(dir, "spool"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			left = append(left, p)
		}
		return nil
	})
	if len(left) > 0 {
		t.Errorf("spool not empty: %v", left)
	}

	// reindex into a fresh database rebuilds identical rows
	ix2 := rectest.NewIndex(t)
	n, err := archive.Reindex(context.Background(), h.store, ix2)
	if err != nil || n != 6 {
		t.Fatalf("reindex: %d, %v", n, err)
	}
	for _, id := range cams {
		again, err := ix2.Segments(context.Background(), id, time.Unix(0, 0), time.Unix(1<<32, 0), true)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(again, rows[id]) {
			t.Errorf("%s: reindexed rows differ:\n%+v\n%+v", id, again, rows[id])
		}
	}
	h.stop()
}
