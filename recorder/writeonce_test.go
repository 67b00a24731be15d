package recorder

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

// TestWriterRowsEqualReindex: the index rows that the uploads write from the
// writer's fragment table, without reading a segment back, are the rows
// that vigil reindex (archive.Reindex) reads from the stored files, on the
// local store and on S3.
func TestWriterRowsEqualReindex(t *testing.T) {
	for _, tc := range []struct {
		name  string
		store func(t *testing.T, dir string) archive.Store
	}{
		{"local", func(t *testing.T, dir string) archive.Store {
			s, err := archive.NewLocalStore(filepath.Join(dir, "store"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		}},
		{"s3", func(t *testing.T, dir string) archive.Store {
			s, _, _, _ := rectest.StartS3Store(t)
			return s
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			dir := t.TempDir()
			store := tc.store(t, dir)
			h := startLocal(t, dir, Options{Store: store, SegmentDuration: 4 * time.Second})
			cams := []string{"cam-a", "cam-b"}
			for i, id := range cams {
				st, c := h.camera(id, i == 0, recT0.Add(time.Duration(i)*1500*time.Millisecond))
				c.feedUntil(st, 9*time.Second)
				st.Close()
			}
			testkit.WaitFor(t, 20*time.Second, "uploads", func() bool {
				s := h.rec.Status()
				return s.Uploaded == 6 && s.Waiting == 0
			})
			h.rec.spool.mu.Lock()
			rescans := h.rec.spool.rescans
			h.rec.spool.mu.Unlock()
			if rescans != 0 {
				t.Errorf("%d segments were read back to be indexed", rescans)
			}
			rows := checkRecStored(t, store, h.ix, cams, true, "h264")
			ix2 := rectest.NewIndex(t)
			if n, err := archive.Reindex(context.Background(), store, ix2); err != nil || n != 6 {
				t.Fatalf("reindex: %d, %v", n, err)
			}
			for _, id := range cams {
				again, err := ix2.Segments(context.Background(), id, time.Unix(0, 0), time.Unix(1<<32, 0), true)
				if err != nil {
					t.Fatal(err)
				}
				if len(rows[id]) != 3 || !reflect.DeepEqual(again, rows[id]) {
					t.Errorf("%s: the writer's rows differ from the reindexed ones:\n%+v\n%+v", id, rows[id], again)
				}
			}
			h.stop()
		})
	}
}

// TestCrashBetweenPutAndIndex: a segment put into the local store (linked
// into place) whose row was never written, as after a crash between the two
// steps, is indexed by the next start's recovery, from its spool file, which
// outlives the put until the row is written.
func TestCrashBetweenPutAndIndex(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	crashed := errors.New("crash between put and index")
	opts := localOptions(t, dir, Options{SegmentDuration: 4 * time.Second, UploadRetryMax: time.Hour, ShutdownGrace: time.Second})
	var puts []string
	putDone := make(chan string, 16)
	h := startPrepared(t, opts, nil, func(r *Recorder) {
		r.afterPut = func(_ context.Context, key string) error {
			putDone <- key
			return crashed
		}
	})
	st, c := h.camera("cam-1", true, recT0)
	c.feedUntil(st, 3*time.Second)
	st.Close()
	select {
	case k := <-putDone:
		puts = append(puts, k)
	case <-time.After(20 * time.Second):
		t.Fatal("no put")
	}
	h.stop()
	if n := len(puts); n != 1 {
		t.Fatalf("%d puts", n)
	}
	key := puts[0]
	stored := filepath.Join(dir, "store", filepath.FromSlash(key))
	spooled := filepath.Join(dir, "spool", filepath.FromSlash(key))
	a, err := os.Stat(stored)
	if err != nil {
		t.Fatalf("the put left no object: %v", err)
	}
	b, err := os.Stat(spooled)
	if err != nil {
		t.Fatalf("the spool file went before its row was written: %v", err)
	}
	if !os.SameFile(a, b) {
		t.Error("the object is a copy of the spool file, not the file itself")
	}
	if segs, err := opts.Index.Segments(context.Background(), "cam-1", time.Unix(0, 0), time.Unix(1<<32, 0), true); err != nil || len(segs) != 0 {
		t.Fatalf("rows before the restart: %v, %v", segs, err)
	}

	// the next start
	h2 := startLocal(t, dir, Options{SegmentDuration: 4 * time.Second})
	testkit.WaitFor(t, 20*time.Second, "the recovered segment indexed", func() bool {
		s := h2.rec.Status()
		return s.Uploaded == 1 && s.Waiting == 0
	})
	rows := checkRecStored(t, h2.store, h2.ix, []string{"cam-1"}, true, "h264")["cam-1"]
	if len(rows) != 1 || rows[0].Key != key || !rows[0].End.Equal(recT0.Add(3*time.Second)) {
		t.Fatalf("rows after the restart: %+v", rows)
	}
	if _, err := os.Stat(spooled); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("spool file after the row was written: %v", err)
	}
	ix2 := rectest.NewIndex(t)
	if n, err := archive.Reindex(context.Background(), h2.store, ix2); err != nil || n != 1 {
		t.Fatalf("reindex: %d, %v", n, err)
	}
	again, err := ix2.Segments(context.Background(), "cam-1", time.Unix(0, 0), time.Unix(1<<32, 0), true)
	if err != nil || !reflect.DeepEqual(again, rows) {
		t.Errorf("reindexed %+v (%v), indexed %+v", again, err, rows)
	}
	h2.stop()
}

// TestIndexRowsBatched: the rows of segments stored while the index writes
// one transaction are written together in the next, as at a shutdown, when
// every camera closes its segment at once; every segment is indexed, from
// the writer's table, and its spool file removed after its row is written.
func TestIndexRowsBatched(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	const cameras = 6
	opts := localOptions(t, dir, Options{SegmentDuration: time.Minute, Uploaders: cameras})
	var sizes []int
	puts := make(chan string, cameras)
	h := startPrepared(t, opts, nil, func(r *Recorder) {
		r.afterPut = func(_ context.Context, key string) error {
			puts <- key
			return nil
		}
		r.indexer.beforeTx = func(rows int) {
			if len(sizes) == 0 {
				// hold the first transaction until every segment is stored
				deadline := time.After(20 * time.Second)
				for len(puts) < cameras {
					select {
					case <-deadline:
						t.Error("the segments were not stored")
						return
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
			sizes = append(sizes, rows)
		}
	})
	var ids []string
	for i := range cameras {
		id := fmt.Sprintf("cam-%d", i)
		ids = append(ids, id)
		st, c := h.camera(id, i%2 == 0, recT0)
		c.feedUntil(st, 3*time.Second)
	}
	h.stop() // closes the six segments at once
	if got := h.rec.indexer.indexed.Load(); got != cameras {
		t.Fatalf("%d rows indexed, want %d", got, cameras)
	}
	if len(sizes) > 2 || sizes[0]+sizes[len(sizes)-1] < cameras {
		t.Errorf("transactions of %v rows: the rows stored meanwhile were not written together", sizes)
	}
	if s := h.rec.Status(); s.Uploaded != cameras || s.Waiting != 0 || s.SpoolBytes != 0 {
		t.Errorf("status after the shutdown: %+v", s)
	}
	rows := checkRecStored(t, h.store, h.ix, ids, true, "h264")
	ix2 := rectest.NewIndex(t)
	if n, err := archive.Reindex(context.Background(), h.store, ix2); err != nil || n != cameras {
		t.Fatalf("reindex: %d, %v", n, err)
	}
	for _, id := range ids {
		again, err := ix2.Segments(context.Background(), id, time.Unix(0, 0), time.Unix(1<<32, 0), true)
		if err != nil || len(rows[id]) != 1 || !reflect.DeepEqual(again, rows[id]) {
			t.Errorf("%s: indexed %+v, reindexed %+v (%v)", id, rows[id], again, err)
		}
	}
	left, err := filepath.Glob(filepath.Join(dir, "spool", "*", "*", "*", "*", "*.mp4"))
	if err != nil || len(left) != 0 {
		t.Errorf("spool files left: %v (%v)", left, err)
	}
}

// TestSpoolDirRemovedBeforeCreate: an uploader removes the camera's spool
// directory, emptied by the upload of its previous segment, between the
// writer's mkdir and its create of the next segment's file (removeEmptyDirs
// racing openSegment). The writer makes the directory again: nothing is
// lost, no write failure is reported.
func TestSpoolDirRemovedBeforeCreate(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	opts := localOptions(t, dir, Options{SegmentDuration: 2 * time.Second})
	var creates, raced int
	h := startPrepared(t, opts, nil, func(r *Recorder) {
		r.createFile = func(p string) (*os.File, error) {
			creates++
			if creates%2 == 0 {
				// every other segment: wait until the upload of the previous
				// one removed the emptied directory, after the writer's mkdir
				d := filepath.Dir(p)
				for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
					if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) {
						raced++
						break
					}
				}
			}
			return createSpoolFile(p)
		}
	})
	st, c := h.camera("cam-1", true, recT0)
	c.feedUntil(st, 9*time.Second)
	st.Close()
	testkit.WaitFor(t, 20*time.Second, "uploads", func() bool {
		s := h.rec.Status()
		return s.Uploaded >= 4 && s.Waiting == 0 && !h.rec.Recording("cam-1")
	})
	h.stop()
	if raced < 2 {
		t.Fatalf("the directory was removed before %d creates", raced)
	}
	if s := h.rec.Status(); s.UnitsLost != 0 || s.SpoolWriteFailing != 0 || s.Dropped != 0 {
		t.Errorf("status: %+v", s)
	}
	if problem, _, lost := h.rec.RecordingTrouble("cam-1"); problem != "" || lost != 0 {
		t.Errorf("trouble: %q, %d lost", problem, lost)
	}
	checkRecStored(t, h.store, h.ix, []string{"cam-1"}, true, "h264")
}
