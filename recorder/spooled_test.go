package recorder

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// brokenLocalStore returns a local store whose directory is replaced by a
// file, so that every upload fails, and a function that repairs it.
func brokenLocalStore(t *testing.T, dir string) (*archive.LocalStore, func()) {
	t.Helper()
	storeDir := filepath.Join(dir, "store")
	store, err := archive.NewLocalStore(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(storeDir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(storeDir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
	return store, func() {
		t.Helper()
		if err := os.Remove(storeDir); err != nil {
			t.Fatal(err)
		}
		if err := os.Mkdir(storeDir, 0o750); err != nil {
			t.Fatal(err)
		}
	}
}

// startBroken starts a recorder over a local store that fails every upload
// until repair is called.
func startBroken(t *testing.T, opts Options) (h *recHarness, repair func()) {
	t.Helper()
	dir := t.TempDir()
	store, repair := brokenLocalStore(t, dir)
	opts.Store = store
	return startLocal(t, dir, opts), repair
}

// TestSpooledView: the recorder shows the segments on local disk — closed
// ones waiting for upload and the one being written — with exactly the row
// a scan of their file gives; a pinned spool file outlives its upload until
// it is unpinned.
func TestSpooledView(t *testing.T) {
	checkLeaks(t)
	h, repair := startBroken(t, Options{
		SegmentDuration: 2 * time.Second, UploadRetryMax: 200 * time.Millisecond})
	st, c := h.camera("cam-1", true, recT0)
	c.feedUntil(st, 5500*time.Millisecond)

	all := func() []archive.Segment { return h.rec.Spooled("cam-1", recT0.Add(-time.Hour), recT0.Add(time.Hour)) }
	testkit.WaitFor(t, 10*time.Second, "three spooled segments up to 5 s", func() bool {
		s := all()
		return len(s) == 3 && !s[2].End.Before(recT0.Add(5*time.Second))
	})
	segs := all()
	for i, s := range segs {
		if want := recT0.Add(time.Duration(i) * 2 * time.Second); !s.Start.Equal(want) || s.Key != archive.SegmentKey("cam-1", want) {
			t.Errorf("spooled %d: %s from %v, want %v", i, s.Key, s.Start, want)
		}
		f, err := os.Open(h.spoolFile(t, s.Key))
		if err != nil {
			t.Fatal(err)
		}
		sc, err := archive.ScanSegment(f)
		f.Close()
		if err != nil {
			t.Fatalf("scan %s: %v", s.Key, err)
		}
		if i == 2 {
			// the open file: the scan may see a fragment written since
			sc.Fragments = sc.Fragments[:min(len(sc.Fragments), len(s.Fragments))]
			last := sc.Fragments[len(sc.Fragments)-1]
			sc.Valid = last.Pos + last.Size
			sc.Duration = s.End.Sub(s.Start)
		}
		row, err := archive.SegmentRow(s.Key, sc)
		if err != nil {
			t.Fatal(err)
		}
		got := s
		if !reflect.DeepEqual(got, row) {
			t.Errorf("spooled %d differs from its scan:\n%+v\n%+v", i, got, row)
		}
	}
	if got := h.rec.Spooled("cam-1", recT0.Add(2500*time.Millisecond), recT0.Add(3*time.Second)); len(got) != 1 || got[0].Key != segs[1].Key {
		t.Errorf("spooled over 2.5–3 s: %v", got)
	}
	if got := h.rec.Spooled("cam-2", recT0, recT0.Add(time.Hour)); len(got) != 0 {
		t.Errorf("another camera: %v", got)
	}

	// pinned while uploaded: the file stays until unpinned
	unpin := h.rec.Pin(segs[0].Key)
	repair()
	testkit.WaitFor(t, 10*time.Second, "the closed segments uploaded", func() bool { return h.rec.Status().Uploaded == 2 })
	if _, err := os.Stat(h.spoolFile(t, segs[0].Key)); err != nil {
		t.Errorf("pinned spool file removed after upload: %v", err)
	}
	if _, err := os.Stat(h.spoolFile(t, segs[1].Key)); err == nil {
		t.Error("unpinned spool file kept after upload")
	}
	if got := all(); len(got) != 1 || got[0].Key != segs[2].Key {
		t.Errorf("spooled after the uploads: %d segments", len(got))
	}
	before := h.rec.Status().SpoolBytes
	unpin()
	unpin()
	if _, err := os.Stat(h.spoolFile(t, segs[0].Key)); err == nil {
		t.Error("spool file kept after unpin")
	}
	if after := h.rec.Status().SpoolBytes; after != before-segs[0].Bytes {
		t.Errorf("spool bytes %d after unpin, %d before, segment of %d", after, before, segs[0].Bytes)
	}
	st.Close()
	testkit.WaitFor(t, 10*time.Second, "the last upload", func() bool { s := h.rec.Status(); return s.Uploaded == 3 && s.Waiting == 0 })
	if s := h.rec.Status(); s.SpoolBytes != 0 {
		t.Errorf("status %+v", s)
	}
	checkRecStored(t, h.store, h.ix, []string{"cam-1"}, true, "h264")
	h.stop()
}

// spoolFile is the path of the spool file of a segment key.
func (h *recHarness) spoolFile(t testing.TB, key string) string {
	t.Helper()
	p, err := h.rec.spool.file(key)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
