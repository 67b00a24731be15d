package recorder

import (
	"context"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestSyncer: the one syncer syncs the files written to since their last
// sync, each once per round, and leaves alone a file removed from it (its
// writer syncs and closes it itself).
func TestSyncer(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	s := newSyncer(testLog(t), make(diskGate, 1), dir)
	open := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return f
	}
	a, b, c := s.add(open("a"), "a"), s.add(open("b"), "b"), s.add(open("c"), "c")
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { s.run(ctx) })
	defer func() { cancel(); wg.Wait() }()

	a.dirty.Store(true)
	b.dirty.Store(true)
	testkit.WaitFor(t, 10*syncEvery, "two files synced", func() bool { return s.synced.Load() == 2 })
	if a.dirty.Load() || b.dirty.Load() || c.dirty.Load() {
		t.Error("a file left dirty, or one not written to synced")
	}
	time.Sleep(2 * syncEvery)
	if n := s.synced.Load(); n != 2 {
		t.Errorf("%d syncs without writes, want 2", n)
	}
	// two files due: one syncfs for both (Linux); one file: its fsync
	if want := int64(1); runtime.GOOS == "linux" && s.fsyncs.Load() != want {
		t.Errorf("%d syncfs calls for the two files, want %d", s.fsyncs.Load(), want)
	}
	// a removed file is not synced again, even if marked
	s.remove(a)
	a.f.Close()
	a.dirty.Store(true)
	c.dirty.Store(true)
	testkit.WaitFor(t, 10*syncEvery, "the third file synced", func() bool { return !c.dirty.Load() })
	time.Sleep(syncEvery)
	if n := s.synced.Load(); n != 3 {
		t.Errorf("%d syncs, want 3 (the removed file synced?)", n)
	}
}

// TestDiskGateReleased: a writer holds a slot of the disk gate only from a
// fragment's marshalling to its write, also when the write fails; many
// failing writers do not use the slots up (they would wait for ever).
func TestDiskGateReleased(t *testing.T) {
	r := newLocal(t, Options{SegmentDuration: 4 * time.Second})
	for i := range 2 * diskSlots {
		w := &camWriter{r: r, camera: "cam-1", log: r.log, recording: &atomic.Bool{}, trouble: &writeTrouble{}}
		play := clipPlayer(t, w)
		play(time.Duration(1500+i) * time.Millisecond)
		if n := len(r.disk); n != 0 {
			t.Fatalf("writer %d: %d slots held between fragments", i, n)
		}
		w.f.Close() // the next fragment's write fails
		play(3 * time.Second)
		if n := len(r.disk); n != 0 {
			t.Fatalf("writer %d: %d slots held after a failed write", i, n)
		}
		if w.f != nil {
			t.Fatalf("writer %d: the file whose write failed is still open", i)
		}
	}
}
