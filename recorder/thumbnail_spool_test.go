package recorder

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/internal/fmp4read"
)

// TestThumbnailOfOpenSegment: the segment being written gives thumbnails
// already (marked not final: a nearer keyframe may be written yet), from
// the keyframe at or before the moment; once it is uploaded the same
// moment gives the same keyframe from the index, final.
func TestThumbnailOfOpenSegment(t *testing.T) {
	checkLeaks(t)
	h := startLocal(t, t.TempDir(), Options{}) // 60 s segments
	st, c := h.camera("cam-1", true, recT0)
	c.feedPaced(st, 6040*time.Millisecond)
	rv := h.review()
	testkit.WaitFor(t, 5*time.Second, "the fragment up to 6 s on disk", func() bool {
		r := h.recordings(rv, "cam-1")
		return len(r.Spans) == 1 && !r.Spans[0].End.Before(recT0.Add(6*time.Second))
	})
	at := recT0.Add(4500 * time.Millisecond)
	kf := spooledKeyframeAtOrBefore(h.rec, "cam-1", at)
	check := func(final bool) {
		t.Helper()
		th, err := rv.Thumbnail(context.Background(), "cam-1", at)
		if err != nil {
			t.Fatal(err)
		}
		if !th.Time.Equal(kf) || th.Final != final {
			t.Fatalf("thumbnail at %s, final %v; want the keyframe at %s, final %v", th.Time, th.Final, kf, final)
		}
		top, err := fmp4read.Boxes(th.MP4, 0, len(th.MP4))
		if err != nil || len(top) != 4 || top[2].Type != "moof" || top[3].Type != "mdat" {
			t.Fatalf("thumbnail boxes %v, %v", top, err)
		}
	}
	check(false)
	st.Close()
	testkit.WaitFor(t, 10*time.Second, "the upload", func() bool { s := h.rec.Status(); return s.Uploaded == 1 && s.Waiting == 0 })
	check(true)
	h.stop()
}
