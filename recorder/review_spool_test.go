package recorder

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"os"
	"reflect"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
	"github.com/vigil-vms/vigil/recorder/review"
)

// review returns a Review over the harness's store and index that sees the
// recorder's spool, as the application wires it.
func (h *recHarness) review() *review.Review {
	rv := review.NewReview(h.store, h.ix, h.rec.Pin)
	rv.Spool = h.rec
	rv.Logger = testLog(h.t)
	return rv
}

func (h *recHarness) recordings(rv *review.Review, camera string) review.Recordings {
	h.t.Helper()
	rec, err := rv.Recordings(context.Background(), camera, recT0.Add(-time.Hour), recT0.Add(time.Hour))
	if err != nil {
		h.t.Fatalf("recordings: %v", err)
	}
	return rec
}

// spooledKeyframeAtOrBefore is keyframeAtOrBefore over what the recorder
// shows of its spool.
func spooledKeyframeAtOrBefore(rec *Recorder, camera string, start time.Time) time.Time {
	return rectest.KeyframeAtOrBefore(rec.Spooled(camera, recT0.Add(-time.Hour), recT0.Add(time.Hour)), start)
}

// TestReviewOpenSegment: with 60 s segments, 6 s after recording starts, the
// open segment is reviewable: its span, a playback from 2.5 s in that runs
// to its current end, an export; more recording, more to play.
func TestReviewOpenSegment(t *testing.T) {
	checkLeaks(t)
	dir := t.TempDir()
	h := startLocal(t, dir, Options{}) // 60 s segments
	st, c := h.camera("cam-1", true, recT0)
	c.feedPaced(st, 6040*time.Millisecond) // 6 s of a camera in real time, the frame at 6.0 s included
	rv := h.review()
	testkit.WaitFor(t, 5*time.Second, "the fragment up to 6 s on disk", func() bool {
		r := h.recordings(rv, "cam-1")
		return len(r.Spans) == 1 && !r.Spans[0].End.Before(recT0.Add(6*time.Second))
	})
	if rows, err := h.ix.Segments(context.Background(), "cam-1", recT0.Add(-time.Hour), recT0.Add(time.Hour), false); err != nil || len(rows) != 0 {
		t.Fatalf("index rows %v, %v: the segment is open, nothing should be stored", rows, err)
	}
	r := h.recordings(rv, "cam-1")
	want := review.Recordings{Spans: []review.Span{{Start: recT0, End: recT0.Add(6 * time.Second)}},
		Segments: []review.SegmentInfo{{Start: recT0, End: recT0.Add(6 * time.Second), Bytes: r.Segments[0].Bytes}}}
	if !reflect.DeepEqual(r, want) || r.Segments[0].Bytes == 0 {
		t.Fatalf("recordings 6 s after the start:\n%+v\nwant\n%+v", r, want)
	}

	start := recT0.Add(2500 * time.Millisecond)
	kf := spooledKeyframeAtOrBefore(h.rec, "cam-1", start)
	if !kf.Equal(recT0.Add(2 * time.Second)) {
		t.Fatalf("keyframe before 2.5 s at %v", kf)
	}
	if got, err := rv.PlaybackStart(context.Background(), "cam-1", start, time.Minute); err != nil || !got.Equal(kf) {
		t.Fatalf("PlaybackStart = %v, %v; want %v", got, err, kf)
	}
	rep := rectest.Check(t, rectest.Play(t, rv, "cam-1", start, time.Minute))
	// from the keyframe to the current end of the open segment, all of it
	if want := r.Spans[0].End.Sub(kf).Seconds(); math.Abs(rep.VideoSeconds-want) > 0.001 {
		t.Fatalf("playback from 2.5 s lasts %.3fs, want %.3fs: up to the end on disk", rep.VideoSeconds, want)
	}

	ex, err := rv.Export(context.Background(), "cam-1", recT0.Add(time.Second), recT0.Add(5*time.Second))
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	clip := make([]byte, ex.Size)
	if _, err := io.ReadFull(ex.File, clip); err != nil {
		t.Fatal(err)
	}
	ex.File.Close()
	if rep := rectest.Check(t, clip); rep.VideoSeconds < 5-0.001 || rep.VideoSeconds > 5+2.001 {
		t.Fatalf("export of 1–5 s lasts %.3fs", rep.VideoSeconds)
	}

	// the camera records on: the client asks again, from where its clip ended
	c.feedPaced(st, 8040*time.Millisecond)
	testkit.WaitFor(t, 5*time.Second, "the fragment up to 8 s on disk", func() bool {
		r := h.recordings(rv, "cam-1")
		return len(r.Spans) == 1 && r.Spans[0].End.Equal(recT0.Add(8*time.Second))
	})
	rep = rectest.Check(t, rectest.Play(t, rv, "cam-1", recT0.Add(6*time.Second), time.Minute))
	if math.Abs(rep.VideoSeconds-2) > 0.001 {
		t.Fatalf("playback from 6 s lasts %.3fs, want 2", rep.VideoSeconds)
	}
	var buf bytes.Buffer
	if err := rv.Playback(context.Background(), &buf, "cam-1", recT0.Add(9*time.Second), time.Minute); !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("playback past the end on disk: %v, %d bytes", err, buf.Len())
	}

	// once closed and uploaded, the same recording comes from the index
	st.Close()
	testkit.WaitFor(t, 10*time.Second, "the upload", func() bool { s := h.rec.Status(); return s.Uploaded == 1 && s.Waiting == 0 })
	if got := h.recordings(rv, "cam-1"); len(got.Segments) != 1 || got.Segments[0].End.Before(recT0.Add(8*time.Second)) {
		t.Fatalf("recordings after the upload: %+v", got)
	}
	h.stop()
}

// putGate refuses uploads while held, and passes everything else to the
// real store: the segments stay in the spool while the store is readable.
type putGate struct {
	archive.Store
	held atomic.Bool
}

func (g *putGate) Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) error {
	if g.held.Load() {
		return errors.New("test: uploads held")
	}
	return g.Store.Put(ctx, key, r, size, meta)
}

// TestReviewS3Outage: while the S3 server is down, the segments closing in
// the spool are reviewable, joined with the uploaded ones in the timeline;
// once it is back (uploads still held), playback runs from the stored
// segment across into the spooled ones; when they are uploaded, the same
// answers come from the index, without duplicates.
func TestReviewS3Outage(t *testing.T) {
	checkLeaks(t)
	s3, _, stop, restart := rectest.StartS3Store(t)
	dir := t.TempDir()
	store := &putGate{Store: s3}
	h := startLocal(t, dir, Options{Store: store,
		SegmentDuration: 2 * time.Second, UploadRetryMax: time.Second})
	rv := h.review()
	st, c := h.camera("cam-1", true, recT0)
	c.feedUntil(st, 2500*time.Millisecond)
	testkit.WaitFor(t, 10*time.Second, "the first upload", func() bool { return h.rec.Status().Uploaded == 1 })

	stop()
	c.feedUntil(st, 9040*time.Millisecond) // [2,4) [4,6) [6,8) close, [8,9) is written
	testkit.WaitFor(t, 20*time.Second, "three segments waiting, the open one up to 9 s", func() bool {
		s := h.rec.Status()
		r := h.recordings(rv, "cam-1")
		return s.Waiting >= 3 && s.UploadErrors > 0 && len(r.Spans) == 1 && !r.Spans[0].End.Before(recT0.Add(9*time.Second))
	})
	type play struct {
		start, dur time.Duration
		want       float64 // seconds of video; 0: to the end of the recording
	}
	plays := []play{
		{1 * time.Second, 6 * time.Second, 7},         // from the stored segment across three spooled ones
		{1500 * time.Millisecond, time.Minute, 0},     // to the end on disk
		{5 * time.Second, 1500 * time.Millisecond, 3}, // spooled only
	}
	type answers struct {
		rec    review.Recordings
		clips  [][]byte
		export review.Export
	}
	ask := func(when string) answers {
		t.Helper()
		a := answers{rec: h.recordings(rv, "cam-1")}
		if len(a.rec.Spans) != 1 || len(a.rec.Segments) != 5 || !a.rec.Spans[0].Start.Equal(recT0) {
			t.Fatalf("recordings %s: %+v", when, a.rec)
		}
		for i, s := range a.rec.Segments {
			if want := recT0.Add(time.Duration(i) * 2 * time.Second); !s.Start.Equal(want) {
				t.Errorf("recordings %s: segment %d starts at %v, want %v", when, i, s.Start, want)
			}
		}
		for _, p := range plays {
			clip := rectest.Play(t, rv, "cam-1", recT0.Add(p.start), p.dur)
			rep := rectest.Check(t, clip)
			want := p.want
			if want == 0 {
				want = a.rec.Spans[0].End.Sub(recT0).Seconds()
			}
			if math.Abs(rep.VideoSeconds-want) > 0.001 {
				t.Errorf("playback %v +%v %s lasts %.3fs, want %.3fs", p.start, p.dur, when, rep.VideoSeconds, want)
			}
			a.clips = append(a.clips, clip)
		}
		var err error
		a.export, err = rv.Export(context.Background(), "cam-1", recT0.Add(time.Second), recT0.Add(7*time.Second))
		if err != nil {
			t.Fatalf("export %s: %v", when, err)
		}
		a.export.File.Close()
		a.export.File = nil
		return a
	}
	// The server is down: the timeline shows everything, the spooled
	// segments play; the stored one cannot be read until the server returns.
	r := h.recordings(rv, "cam-1")
	if len(r.Spans) != 1 || len(r.Segments) != 5 || !r.Spans[0].Start.Equal(recT0) {
		t.Fatalf("recordings with the server down: %+v", r)
	}
	if got, err := rv.PlaybackStart(context.Background(), "cam-1", recT0.Add(3*time.Second), 4*time.Second); err != nil || !got.Equal(recT0.Add(2*time.Second)) {
		t.Errorf("PlaybackStart with the server down: %v, %v", got, err)
	}
	if rep := rectest.Check(t, rectest.Play(t, rv, "cam-1", recT0.Add(3*time.Second), 4*time.Second)); math.Abs(rep.VideoSeconds-5) > 0.001 {
		t.Errorf("playback of the spooled segments lasts %.3fs, want 5", rep.VideoSeconds)
	}
	if err := rv.Playback(context.Background(), io.Discard, "cam-1", recT0.Add(time.Second), time.Second); err == nil {
		t.Error("playback of the stored segment with the server down did not fail")
	}

	// the last segment closes too: four wait; the server returns, uploads held
	st.Close()
	testkit.WaitFor(t, 10*time.Second, "four segments waiting", func() bool { return h.rec.Status().Waiting == 4 })
	store.held.Store(true)
	restart()
	during := ask("with four segments in the spool")
	if n := len(h.rec.Spooled("cam-1", recT0, recT0.Add(time.Hour))); n != 4 {
		t.Errorf("%d segments spooled, want 4", n)
	}

	store.held.Store(false)
	testkit.WaitFor(t, 30*time.Second, "the uploads after the outage", func() bool {
		s := h.rec.Status()
		return s.Uploaded == 5 && s.Waiting == 0
	})
	if n := len(h.rec.Spooled("cam-1", recT0, recT0.Add(time.Hour))); n != 0 {
		t.Errorf("%d segments still spooled", n)
	}
	after := ask("after the outage")
	if !reflect.DeepEqual(after.rec, during.rec) {
		t.Errorf("recordings from the index:\n%+v\nduring the outage:\n%+v", after.rec, during.rec)
	}
	for i, p := range plays {
		if !bytes.Equal(after.clips[i], during.clips[i]) {
			t.Errorf("playback %v +%v: %d bytes from the index differ from the %d during the outage", p.start, p.dur, len(after.clips[i]), len(during.clips[i]))
		}
	}
	if !reflect.DeepEqual(after.export, during.export) {
		t.Errorf("export from the index %+v, during the outage %+v", after.export, during.export)
	}
	checkRecStored(t, s3, h.ix, []string{"cam-1"}, true, "h264")
	h.stop()
}

// gateWriter blocks its n-th Write until release is closed.
type gateWriter struct {
	buf     bytes.Buffer
	writes  int
	n       int
	reached chan struct{}
	release chan struct{}
}

func (g *gateWriter) Write(p []byte) (int, error) {
	g.writes++
	if g.writes == g.n {
		close(g.reached)
		<-g.release
	}
	return g.buf.Write(p)
}

// TestReviewSpoolUploadedWhileRead: a playback reads spooled segments while
// the store comes back and they are uploaded and removed from the spool: the
// one being read stays until the playback is done with it, one removed
// after it was listed is read from the store, and the clip is whole.
func TestReviewSpoolUploadedWhileRead(t *testing.T) {
	checkLeaks(t)
	h, repair := startBroken(t, Options{
		SegmentDuration: 2 * time.Second, UploadRetryMax: 200 * time.Millisecond})
	rv := h.review()
	st, c := h.camera("cam-1", false, recT0)
	c.feedUntil(st, 6040*time.Millisecond) // [0,2) [2,4) [4,6) wait, [6, …) is open
	testkit.WaitFor(t, 10*time.Second, "three segments waiting", func() bool { return h.rec.Status().Waiting == 3 })
	segs := h.rec.Spooled("cam-1", recT0, recT0.Add(time.Hour))
	if len(segs) != 3 || len(segs[1].Fragments) != 2 {
		t.Fatalf("spooled: %+v", segs)
	}

	// writes: the init section, then one per fragment, two per segment;
	// the 4th is the second segment's first fragment
	g := &gateWriter{n: 4, reached: make(chan struct{}), release: make(chan struct{})}
	done := make(chan error, 1)
	go func() {
		done <- rv.Playback(context.Background(), g, "cam-1", recT0.Add(500*time.Millisecond), 5*time.Second)
	}()
	select {
	case <-g.reached:
	case err := <-done:
		t.Fatalf("playback ended before the gate: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("playback did not reach the second segment")
	}
	repair()
	testkit.WaitFor(t, 10*time.Second, "the uploads", func() bool { return h.rec.Status().Uploaded >= 3 })
	if _, err := os.Stat(h.spoolFile(t, segs[1].Key)); err != nil {
		t.Errorf("the spool file being read was removed: %v", err)
	}
	if _, err := os.Stat(h.spoolFile(t, segs[2].Key)); err == nil {
		t.Error("the spool file not yet read was kept")
	}
	close(g.release)
	if err := <-done; err != nil {
		t.Fatalf("playback: %v", err)
	}
	if rep := rectest.Check(t, g.buf.Bytes()); math.Abs(rep.VideoSeconds-6) > 0.001 {
		t.Errorf("clip lasts %.3fs, want 6", rep.VideoSeconds)
	}
	if _, err := os.Stat(h.spoolFile(t, segs[1].Key)); err == nil {
		t.Error("the spool file read is kept after the playback")
	}
	// the same clip again, from the index and the store
	if got := rectest.Play(t, rv, "cam-1", recT0.Add(500*time.Millisecond), 5*time.Second); !bytes.Equal(got, g.buf.Bytes()) {
		t.Error("the clip from the store differs from the one read from the spool")
	}
	st.Close()
	testkit.WaitFor(t, 10*time.Second, "the last upload", func() bool { s := h.rec.Status(); return s.Waiting == 0 && s.Uploaded == 4 })
	if s := h.rec.Status(); s.SpoolBytes != 0 {
		t.Errorf("status %+v", s)
	}
	h.stop()
}
