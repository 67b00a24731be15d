package review

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

// checkPlaybackCases plays the cases over segments recorded from reviewT0 and
// checks each clip's start keyframe and length.
func checkPlaybackCases(t *testing.T, rv *Review, camera string, segs []archive.Segment) {
	recEnd := segs[len(segs)-1].End
	cases := []struct {
		name  string
		start time.Duration // from reviewT0
		dur   time.Duration
	}{
		{"middle of a segment, across a boundary", 5500 * time.Millisecond, 5 * time.Second},
		{"at a keyframe", 6 * time.Second, 2 * time.Second},
		{"between keyframes, in a fragment without one", 7500 * time.Millisecond, 1500 * time.Millisecond},
		{"across three segments", 3 * time.Second, 10 * time.Second},
		{"before the recording begins", -3 * time.Second, 5 * time.Second},
		{"past the end of the recording", 15 * time.Second, time.Hour},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			start := reviewT0.Add(tc.start)
			clip := rectest.Play(t, rv, camera, start, tc.dur)
			rep := rectest.Check(t, clip)
			kf := rectest.KeyframeAtOrBefore(segs, start)
			end := start.Add(tc.dur)
			if end.After(recEnd) {
				end = recEnd
			}
			want := end.Sub(kf).Seconds()
			// The clip starts at the keyframe at or before start and ends
			// with the fragment that reaches start+dur: at most one GOP more.
			if rep.VideoSeconds < want-0.05 || rep.VideoSeconds > want+2.05 {
				t.Fatalf("clip lasts %.2fs; from the keyframe at %s to %s is %.2fs (+ up to one 2 s GOP)",
					rep.VideoSeconds, kf.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), want)
			}
		})
	}
}

func TestPlaybackLocal(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t) }) // after the database closes
	files := reviewFFmpegSegments(t, reviewFFmpegSpec{Size: "320x180", Seconds: 20, SegEvery: 4})
	if len(files) != 5 {
		t.Fatalf("ffmpeg made %d segments, want 5", len(files))
	}
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	segs := addReviewSegments(t, st, ix, "police-007", reviewT0, 0, files)
	var pins sync.Map
	rv := NewReview(st, ix, func(key string) func() {
		n, _ := pins.LoadOrStore(key, new(int))
		*n.(*int)++
		return func() { *n.(*int)-- }
	})
	checkPlaybackCases(t, rv, "police-007", segs)
	pinned := 0
	pins.Range(func(k, v any) bool {
		pinned++
		if *v.(*int) != 0 {
			t.Errorf("segment %s left pinned %d times", k, *v.(*int))
		}
		return true
	})
	if pinned == 0 {
		t.Error("playback pinned no segment")
	}
}

func TestPlaybackStopsAtGap(t *testing.T) {
	files := reviewFFmpegSegments(t, reviewFFmpegSpec{Size: "320x180", Seconds: 20, SegEvery: 4})
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	a := addReviewSegments(t, st, ix, "cam", reviewT0, 200*time.Millisecond, files[:2]) // small pauses: continuous
	b := addReviewSegments(t, st, ix, "cam", a[1].End.Add(3*time.Second), 0, files[2:])
	rv := NewReview(st, ix, nil)

	rep := rectest.Check(t, rectest.Play(t, rv, "cam", reviewT0.Add(time.Second), time.Minute))
	if want := a[1].End.Sub(reviewT0).Seconds(); rep.VideoSeconds < want-0.3 || rep.VideoSeconds > want+0.05 {
		t.Fatalf("clip lasts %.2fs, want the %.2fs before the gap", rep.VideoSeconds, want)
	}
	rep = rectest.Check(t, rectest.Play(t, rv, "cam", b[0].Start.Add(time.Second), 3*time.Second))
	if rep.VideoSeconds < 3 || rep.VideoSeconds > 5 {
		t.Fatalf("clip after the gap lasts %.2fs", rep.VideoSeconds)
	}
	var buf bytes.Buffer
	err := rv.Playback(context.Background(), &buf, "cam", a[1].End.Add(time.Second), time.Second)
	if !errors.Is(err, apierr.ErrNotFound) || buf.Len() != 0 {
		t.Fatalf("playback inside the gap: %v, %d bytes", err, buf.Len())
	}
}

func TestPlaybackStopsAtResolutionChange(t *testing.T) {
	big := reviewFFmpegSegments(t, reviewFFmpegSpec{Size: "320x180", Seconds: 8, SegEvery: 4})
	small := reviewFFmpegSegments(t, reviewFFmpegSpec{Size: "160x90", Seconds: 8, SegEvery: 4})
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	a := addReviewSegments(t, st, ix, "cam", reviewT0, 0, big)
	addReviewSegments(t, st, ix, "cam", a[len(a)-1].End, 0, small)
	rv := NewReview(st, ix, nil)
	rep := rectest.Check(t, rectest.Play(t, rv, "cam", reviewT0.Add(2*time.Second), time.Minute))
	if want := a[len(a)-1].End.Sub(rectest.KeyframeAtOrBefore(a, reviewT0.Add(2*time.Second))).Seconds(); rep.VideoSeconds < want-0.05 || rep.VideoSeconds > want+0.05 {
		t.Fatalf("clip lasts %.2fs, want the %.2fs before the resolution change", rep.VideoSeconds, want)
	}
}

// TestPlaybackReadsOnlyWhatItNeeds plays 3 s from the middle of a 60 s
// segment and counts the bytes read from the store.
func TestPlaybackReadsOnlyWhatItNeeds(t *testing.T) {
	file := syntheticReviewSegment(t, time.Minute, 400, 0)
	local := newReviewLocalStore(t)
	ix := openReviewIndex(t)
	seg := addReviewSegments(t, local, ix, "cam", reviewT0, 0, [][]byte{file})[0]
	if len(seg.Fragments) != 30 {
		t.Fatalf("synthetic segment has %d fragments, want 30", len(seg.Fragments))
	}
	for _, pos := range []time.Duration{31 * time.Second, 57 * time.Second} {
		st := &reviewCountingStore{Store: local}
		rv := NewReview(st, ix, nil)
		rep := rectest.CheckSynthetic(t, rectest.Play(t, rv, "cam", reviewT0.Add(pos), 3*time.Second))
		// From the keyframe at or before pos to pos+3s: two 2 s fragments.
		k := int(pos / (2 * time.Second))
		want := seg.InitSize + seg.Fragments[k].Size + seg.Fragments[k+1].Size
		if got := st.bytes.Load(); got != want {
			t.Errorf("at %s: read %d bytes (%v), want init + 2 fragments = %d", pos, got, st.log, want)
		}
		if st.gets.Load() != 2 {
			t.Errorf("at %s: %d reads (%v), want 2: the init and one run of fragments", pos, st.gets.Load(), st.log)
		}
		if math.Abs(rep.VideoSeconds-4) > 1e-6 {
			t.Errorf("at %s: clip lasts %.2fs, want 4", pos, rep.VideoSeconds)
		}
	}
}

// gatedStore blocks reading after the first fragment until the clip's first
// bytes have been written: a playback that read everything before writing
// would never finish.
type gatedStore struct {
	archive.Store
	after int64
	open  chan struct{}
}

func (g *gatedStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := g.Store.Get(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	return &gatedBody{rc: rc, left: g.after, open: g.open, ctx: ctx}, nil
}

type gatedBody struct {
	rc   io.ReadCloser
	left int64
	open chan struct{}
	ctx  context.Context
}

func (b *gatedBody) Read(p []byte) (int, error) {
	if b.left <= 0 {
		select {
		case <-b.open:
		case <-b.ctx.Done():
			return 0, b.ctx.Err()
		}
		return b.rc.Read(p)
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *gatedBody) Close() error { return b.rc.Close() }

type firstWriteSignal struct {
	bytes.Buffer
	once sync.Once
	open chan struct{}
}

func (w *firstWriteSignal) Write(p []byte) (int, error) {
	w.once.Do(func() { close(w.open) })
	return w.Buffer.Write(p)
}

func TestPlaybackStreamsBeforeReadingEverything(t *testing.T) {
	file := syntheticReviewSegment(t, time.Minute, 400, 0)
	local := newReviewLocalStore(t)
	ix := openReviewIndex(t)
	seg := addReviewSegments(t, local, ix, "cam", reviewT0, 0, [][]byte{file})[0]
	open := make(chan struct{})
	st := &gatedStore{Store: local, after: seg.InitSize + seg.Fragments[0].Size, open: open}
	rv := NewReview(st, ix, nil)
	w := &firstWriteSignal{open: open}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rv.Playback(ctx, w, "cam", reviewT0, time.Minute); err != nil {
		t.Fatalf("playback did not write its first fragment before reading the rest: %v", err)
	}
	if rep := rectest.CheckSynthetic(t, w.Bytes()); rep.Parts != 30 {
		t.Fatalf("clip has %d fragments, want 30", rep.Parts)
	}
}

func TestPlaybackContinuesAcrossRestartedTimestamps(t *testing.T) {
	// Segments whose decode times restart, jump ahead or overlap must still
	// form one continuous timeline.
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	files := [][]byte{
		syntheticReviewSegment(t, 10*time.Second, 50, 0),
		syntheticReviewSegment(t, 10*time.Second, 50, 90000*3600*20), // 20 h ahead
		syntheticReviewSegment(t, 10*time.Second, 50, 12345),
	}
	addReviewSegments(t, st, ix, "cam", reviewT0, 0, files)
	rv := NewReview(st, ix, nil)
	var buf bytes.Buffer
	if err := rv.Playback(context.Background(), &buf, "cam", reviewT0.Add(5*time.Second), time.Minute); err != nil {
		t.Fatal(err)
	}
	rep := rectest.CheckSynthetic(t, buf.Bytes())
	if math.Abs(rep.VideoSeconds-26) > 1e-6 {
		t.Fatalf("clip lasts %.2fs, want 26", rep.VideoSeconds)
	}
}

type reviewErrorCase struct {
	name   string
	camera string
	start  time.Time
	dur    time.Duration
	kind   error
	says   string
}

func reviewErrorCases() []reviewErrorCase {
	return []reviewErrorCase{
		{"no camera", "", reviewT0, time.Second, apierr.ErrInvalid, "camera is required"},
		{"no start", "cam", time.Time{}, time.Second, apierr.ErrInvalid, "start is required"},
		{"start in year 9999", "cam", time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC), time.Second, apierr.ErrInvalid, "not a plausible"},
		{"start in 1900", "cam", time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC), time.Second, apierr.ErrInvalid, "not a plausible"},
		{"zero duration", "cam", reviewT0, 0, apierr.ErrInvalid, "must be positive"},
		{"negative duration", "cam", reviewT0, -time.Minute, apierr.ErrInvalid, "must be positive"},
		{"duration over 24 h", "cam", reviewT0, 25 * time.Hour, apierr.ErrInvalid, "limit of 24 hours"},
		{"unknown camera", "nobody", reviewT0, time.Minute, apierr.ErrNotFound, "nothing was recorded between 2026-11-26T08:00:00Z and 2026-11-26T08:01:00Z"},
		{"nothing recorded then", "cam", reviewT0.Add(time.Hour), time.Minute, apierr.ErrNotFound, "nothing was recorded between"},
		{"just before the recording", "cam", reviewT0.Add(-time.Minute), time.Minute, apierr.ErrNotFound, "nothing was recorded between"},
	}
}

// reviewOfTenSeconds is a Review of 10 s of camera "cam" from reviewT0.
func reviewOfTenSeconds(t *testing.T) *Review {
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	addReviewSegments(t, st, ix, "cam", reviewT0, 0, [][]byte{syntheticReviewSegment(t, 10*time.Second, 50, 0)})
	return NewReview(st, ix, nil)
}

func TestPlaybackBadInput(t *testing.T) {
	rv := reviewOfTenSeconds(t)
	for _, tc := range reviewErrorCases() {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := rv.Playback(context.Background(), &buf, tc.camera, tc.start, tc.dur)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("error %v, want kind %v", err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %q does not say %q", err, tc.says)
			}
			if buf.Len() != 0 {
				t.Fatalf("wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

func TestPlaybackCorruptIndexIsAnError(t *testing.T) {
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	seg := addReviewSegments(t, st, ix, "cam", reviewT0, 0, [][]byte{syntheticReviewSegment(t, 10*time.Second, 50, 0)})[0]
	bad := seg
	bad.Fragments = append([]archive.Fragment(nil), seg.Fragments...)
	bad.Fragments[0].Pos++ // no longer points at a moof
	if err := ix.Add(context.Background(), bad); err != nil {
		t.Fatal(err)
	}
	rv := NewReview(st, ix, nil)
	var buf bytes.Buffer
	err := rv.Playback(context.Background(), &buf, "cam", reviewT0, time.Second)
	if err == nil || !strings.Contains(err.Error(), "moof") || buf.Len() != 0 {
		t.Fatalf("playback of a corrupt row: %v, %d bytes", err, buf.Len())
	}
	if err := st.Delete(context.Background(), seg.Key); err != nil {
		t.Fatal(err)
	}
	if err := ix.Add(context.Background(), seg); err != nil {
		t.Fatal(err)
	}
	err = rv.Playback(context.Background(), &buf, "cam", reviewT0, time.Second)
	if !errors.Is(err, apierr.ErrNotFound) || !strings.Contains(err.Error(), "no longer in the store") {
		t.Fatalf("playback of a deleted segment: %v", err)
	}
}
