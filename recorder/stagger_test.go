package recorder

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
)

func TestSegmentTarget(t *testing.T) {
	const d = time.Minute
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	if got := segmentTarget(d, false, "cam-1", t0.Add(7*time.Second)); got != d {
		t.Fatalf("without staggering: %v", got)
	}
	// every camera's first segment ends on its own grid and lasts 0.5 to 1.5 durations
	ends := map[int64]bool{}
	for i := 0; i < 50; i++ {
		cam := fmt.Sprintf("police-%03d", i)
		for _, start := range []time.Time{t0, t0.Add(17 * time.Second), t0.Add(59*time.Second + 999*time.Millisecond)} {
			got := segmentTarget(d, true, cam, start)
			if got < d/2 || got >= d+d/2 {
				t.Fatalf("%s from %s: first segment %v", cam, start, got)
			}
			end := start.Add(got)
			// the grid of the camera does not depend on where the segment started
			if again := segmentTarget(d, true, cam, end); again < d-time.Nanosecond || again > d {
				t.Fatalf("%s: the segment after a boundary lasts %v, want %v", cam, again, d)
			}
			if start == t0 {
				ends[end.UnixNano()%int64(d)/int64(time.Second)] = true
			}
		}
	}
	// 50 cameras started together close over many different seconds of the minute
	if len(ends) < 25 {
		t.Fatalf("50 cameras close their segments at only %d different seconds of the minute", len(ends))
	}
}

// With staggering, two cameras fed the same stream from the same moment cut
// their segments at different times, and each keeps its own grid.
func TestWriterStaggers(t *testing.T) {
	r := newLocal(t, Options{SegmentDuration: 4 * time.Second, StaggerSegments: true})
	fx := loadRecFixture(t)
	// two camera ids whose first segments end a GOP (2 s) apart, well inside
	// the keyframe grid: the first about 3 s after the start, the other about 5 s
	pick := func(lo, hi time.Duration) string {
		for i := 0; i < 1000; i++ {
			id := fmt.Sprintf("cam-%d", i)
			if d := segmentTarget(4*time.Second, true, id, recT0); d >= lo && d <= hi {
				return id
			}
		}
		t.Fatalf("no camera id with a first segment of %v to %v", lo, hi)
		return ""
	}
	camA, camB := pick(2500*time.Millisecond, 3500*time.Millisecond), pick(4500*time.Millisecond, 5500*time.Millisecond)
	starts := map[string][]time.Duration{}
	for _, cam := range []string{camA, camB} {
		w := &camWriter{r: r, camera: cam, log: r.log, recording: &atomic.Bool{}}
		st := ingest.NewStream(cam + "/main")
		c := newRecClip(fx, st.SetTracks(fx.tracks(false)), recT0)
		for c.videoPTS() < 21*time.Second {
			w.unit(c.next(), false)
		}
		w.closeSegment("test")
	}
	r.spool.mu.Lock()
	for _, it := range r.spool.waiting {
		for _, cam := range []string{camA, camB} {
			if len(it.key) > len(cam) && it.key[:len(cam)+1] == cam+"/" {
				starts[cam] = append(starts[cam], it.start.Sub(recT0))
			}
		}
	}
	r.spool.mu.Unlock()
	for cam, ss := range starts {
		if len(ss) < 4 {
			t.Fatalf("%s: segments from %v", cam, ss)
		}
		for i := 2; i < len(ss); i++ {
			if d := ss[i] - ss[i-1]; d != 4*time.Second {
				t.Errorf("%s: segments from %v: after the first, each lasts 4 s (got %v)", cam, ss, d)
			}
		}
	}
	if a, b := starts[camA], starts[camB]; len(a) < 2 || len(b) < 2 || a[1] != 4*time.Second || b[1] != 6*time.Second {
		t.Errorf("first cuts: %s at %v, %s at %v; want 4 s and 6 s", camA, a, camB, b)
	}
	t.Logf("segment starts: %s %v, %s %v", camA, starts[camA], camB, starts[camB])
}
