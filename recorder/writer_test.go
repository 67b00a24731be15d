package recorder

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestWriterCuts drives a camera writer unit by unit: a segment ends at its
// length (on the next keyframe), on a gap (units lost), on new tracks, on a
// jump of the camera clock, and the next one starts at a keyframe.
func TestWriterCuts(t *testing.T) {
	r := newLocal(t, Options{SegmentDuration: 4 * time.Second})
	w := &camWriter{r: r, camera: "cam-1", log: r.log, recording: &atomic.Bool{}}
	fx := loadRecFixture(t)
	st := ingest.NewStream("cam-1/main")
	c := newRecClip(fx, st.SetTracks(fx.tracks(false)), recT0)
	play := func(until time.Duration, gap bool) {
		for c.videoPTS() < until {
			w.unit(c.next(), gap)
			gap = false
		}
	}
	skip := func(until time.Duration) {
		for c.videoPTS() < until {
			c.next()
		}
	}
	play(4*time.Second, false)
	play(5*time.Second, false) // the keyframe at 4 s starts the second segment
	skip(6 * time.Second)
	play(7*time.Second, true) // gap: the unit at 6 s is a keyframe and starts the third
	// new tracks from 7 s: the segment ends; the next one starts at the keyframe at 8 s
	c.media = st.SetTracks(fx.tracks(true))
	c.ai = int(7 * time.Second / (1024 * time.Second / time.Duration(fx.rate)))
	play(9*time.Second, false)
	// the camera clock jumps 30 s ahead: a new segment at the next keyframe
	c.vi += 30 * recFPS
	c.ai += int(30 * time.Second / (1024 * time.Second / time.Duration(fx.rate)))
	play(42*time.Second, false)
	if !w.recording.Load() {
		t.Error("not recording")
	}
	w.closeSegment("test")
	if w.recording.Load() {
		t.Error("still recording")
	}

	want := []struct{ start, end time.Duration }{
		{0, 4 * time.Second},
		{4 * time.Second, 5 * time.Second},
		{6 * time.Second, 7 * time.Second},
		{8 * time.Second, 9 * time.Second},
		{40 * time.Second, 42 * time.Second},
	}
	r.spool.mu.Lock()
	items := append([]*spoolItem(nil), r.spool.waiting...)
	r.spool.mu.Unlock()
	if len(items) != len(want) {
		t.Fatalf("%d segments, want %d", len(items), len(want))
	}
	for i, it := range items {
		fi, err := finalizeSpoolFile(it.key, it.path)
		if err != nil || fi == nil {
			t.Fatalf("%s: %v", it.key, err)
		}
		s := fi.seg
		if got := s.Start.Sub(recT0); got != want[i].start {
			t.Errorf("segment %d starts at %v, want %v", i, got, want[i].start)
		}
		if got := s.End.Sub(recT0); got != want[i].end {
			t.Errorf("segment %d ends at %v, want %v", i, got, want[i].end)
		}
		if fi.size != it.size {
			t.Errorf("segment %d: %d bytes in the file, %d counted", i, fi.size, it.size)
		}
	}
}

// TestSetRemove starts and stops recording with the camera's settings.
func TestSetRemove(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	h := startLocal(t, dir, Options{SegmentDuration: 4 * time.Second})
	st, c := h.camera("cam-1", false, recT0)
	c.feedUntil(st, time.Second)
	testkit.WaitFor(t, 5*time.Second, "recording", func() bool { return h.rec.Recording("cam-1") })

	cam := ingest.Camera{ID: "cam-1", Record: false, Enabled: true}
	h.rec.Set(cam) // recording off: the open segment is closed and stored
	if h.rec.Recording("cam-1") {
		t.Error("recording after record: false")
	}
	testkit.WaitFor(t, 5*time.Second, "the segment upload", func() bool { return h.rec.Status().Uploaded == 1 })
	testkit.WaitFor(t, 5*time.Second, "the unsubscription", func() bool { return st.Stats().Subscribers == 0 })

	cam.Record = true
	h.rec.Set(cam)
	testkit.WaitFor(t, 5*time.Second, "a new subscription", func() bool { return st.Stats().Subscribers == 1 })
	c.feedUntil(st, 3*time.Second) // the keyframe at 2 s starts a segment
	testkit.WaitFor(t, 5*time.Second, "recording again", func() bool { return h.rec.Recording("cam-1") })

	cam.Enabled = false
	h.rec.Set(cam)
	testkit.WaitFor(t, 5*time.Second, "the second upload", func() bool { return h.rec.Status().Uploaded == 2 })
	cam.Enabled = true
	h.rec.Set(cam)
	testkit.WaitFor(t, 5*time.Second, "a new subscription", func() bool { return st.Stats().Subscribers == 1 })
	h.rec.Remove("cam-1")
	testkit.WaitFor(t, 5*time.Second, "the unsubscription", func() bool { return st.Stats().Subscribers == 0 })
	if h.rec.Recording("cam-1") || h.rec.Status().Recording != 0 {
		t.Error("recording after Remove")
	}
	rows := checkRecStored(t, h.store, h.ix, []string{"cam-1"}, false, "h264")["cam-1"]
	if len(rows) != 2 || !rows[0].Start.Equal(recT0) || !rows[1].Start.Equal(recT0.Add(2*time.Second)) {
		t.Errorf("rows %+v", rows)
	}
	h.stop()
}

// countingSource counts the recorder's look-ups of a stream.
type countingSource struct {
	*recStreams
	lookups atomic.Int64
}

func (s *countingSource) Stream(id string, kind ingest.StreamKind) *ingest.Stream {
	s.lookups.Add(1)
	return s.recStreams.Stream(id, kind)
}

// TestWriterWaitsForStream: a camera to record that has no stream yet is
// looked up once, then its writer waits for the source to add a stream
// (no polling), and records it as soon as it is there.
func TestWriterWaitsForStream(t *testing.T) {
	checkLeaks(t)
	src := &countingSource{recStreams: &recStreams{}}
	h := startRecorderFrom(t, localOptions(t, t.TempDir(), Options{}), src)
	h.rec.Set(ingest.Camera{ID: "cam-1", Record: true, Enabled: true})
	testkit.WaitFor(t, 5*time.Second, "the first look-up", func() bool { return src.lookups.Load() > 0 })
	time.Sleep(1500 * time.Millisecond) // longer than the writer's old 1 s poll: a poll would look again
	if n := src.lookups.Load(); n != 1 {
		t.Fatalf("%d look-ups of a missing stream in 1.5 s, want 1", n)
	}
	st := src.add("cam-1")
	testkit.WaitFor(t, 5*time.Second, "the recorder to subscribe", func() bool { return st.Stats().Subscribers > 0 })
}

// BenchmarkWriterUnit measures a camera writer's path per unit, from hub
// unit to fragment appended to the spool file and shown to the review side
// (the syncer and the uploads apart: each closed segment is removed as if
// uploaded): allocations and bytes per unit.
func BenchmarkWriterUnit(b *testing.B) {
	r := newLocal(b, Options{SegmentDuration: 60 * time.Second})
	w := &camWriter{r: r, camera: "cam-1", log: r.log, recording: &atomic.Bool{}}
	fx := loadRecFixture(b)
	st := ingest.NewStream("cam-1/main")
	c := newRecClip(fx, st.SetTracks(fx.tracks(true)), recT0)
	units := make([]*ingest.Unit, 0, 4096)
	for len(units) < cap(units) {
		units = append(units, c.next())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		u := units[i%len(units)]
		if i%len(units) == 0 && i > 0 {
			// the clip again, later: shift the copies' times past the last pass
			shift := units[len(units)-1].PTS + 40*time.Millisecond
			b.StopTimer()
			for j, v := range units {
				c := *v
				c.PTS += shift
				c.Time = c.Time.Add(shift)
				units[j] = &c
			}
			u = units[0]
			b.StartTimer()
		}
		w.unit(u, false)
		if i%256 == 0 {
			r.spool.mu.Lock()
			var done []*spoolItem
			for _, it := range r.spool.waiting {
				if !it.busy {
					it.busy = true
					done = append(done, it)
				}
			}
			r.spool.mu.Unlock()
			for _, it := range done {
				r.spool.done(it, nil)
			}
		}
	}
	b.StopTimer()
	w.closeSegment("end")
}
