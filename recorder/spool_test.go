package recorder

import (
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestSpoolFull: while the store fails, the spool keeps within SpoolMaxBytes by
// dropping the oldest waiting segments, counted in Status; the newest are
// uploaded once the store works again.
func TestSpoolFull(t *testing.T) {
	checkLeaks(t)
	const limit = 120 << 10 // about two and a half 2 s segments of the fixture
	h, repair := startBroken(t, Options{
		SegmentDuration: 2 * time.Second, SpoolMaxBytes: limit, UploadRetryMax: 500 * time.Millisecond})
	st, c := h.camera("cam-1", false, recT0)
	for end := 2 * time.Second; end <= 20*time.Second; end += 2 * time.Second {
		c.feedUntil(st, end-20*time.Millisecond) // ten segments, the last closed by st.Close
		time.Sleep(10 * time.Millisecond)        // pace the camera a little (not a wait for a condition)
	}
	testkit.WaitFor(t, 10*time.Second, "drops", func() bool { return h.rec.Status().Dropped >= 6 })
	s := h.rec.Status()
	if s.SpoolBytes > limit || s.Uploaded != 0 || s.LastUploadError == "" {
		t.Errorf("status %+v", s)
	}
	t.Logf("status while the store fails: %+v", s)

	// the store comes back: the newest waiting segments are uploaded
	repair()
	st.Close()
	testkit.WaitFor(t, 10*time.Second, "uploads", func() bool { s := h.rec.Status(); return s.Waiting == 0 && s.Uploaded > 0 })
	s = h.rec.Status()
	rows := checkRecStored(t, h.store, h.ix, []string{"cam-1"}, true, "h264")["cam-1"]
	if int64(len(rows)) != s.Uploaded || s.Uploaded+s.Dropped != 10 {
		t.Errorf("%d rows, status %+v", len(rows), s)
	}
	// what survived is the newest: contiguous up to the end
	for i, r := range rows {
		want := recT0.Add(20*time.Second - time.Duration(len(rows)-i)*2*time.Second)
		if !r.Start.Equal(want) {
			t.Errorf("kept segment %d starts at %v, want %v", i, r.Start, want)
		}
	}
	h.stop()
}
