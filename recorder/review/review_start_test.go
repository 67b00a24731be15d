package review

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

// TestPlaybackStart checks that PlaybackStart names the keyframe fragment
// where Playback begins, from the index alone, and that Playback's clip
// indeed runs from there.
func TestPlaybackStart(t *testing.T) {
	files := reviewFFmpegSegments(t, reviewFFmpegSpec{Size: "320x180", Seconds: 20, SegEvery: 4})
	local, ix := newReviewLocalStore(t), openReviewIndex(t)
	a := addReviewSegments(t, local, ix, "cam", reviewT0, 0, files[:3])
	b := addReviewSegments(t, local, ix, "cam", a[2].End.Add(3*time.Second), 0, files[3:]) // after a gap
	segs := append(append([]archive.Segment(nil), a...), b...)
	recEnd := b[len(b)-1].End
	cases := []struct {
		name  string
		start time.Time
		dur   time.Duration
		want  time.Time // zero: the keyframe at or before start, from the index rows
	}{
		{"at the first frame", reviewT0, time.Second, reviewT0},
		{"middle of a segment", reviewT0.Add(5500 * time.Millisecond), 5 * time.Second, time.Time{}},
		{"at a keyframe", a[1].Start.Add(a[1].Fragments[2].Offset), 2 * time.Second, a[1].Start.Add(a[1].Fragments[2].Offset)},
		{"in a fragment without a keyframe", a[1].Start.Add(a[1].Fragments[3].Offset + 100*time.Millisecond), 1500 * time.Millisecond, time.Time{}},
		{"before the recording begins", reviewT0.Add(-3 * time.Second), 5 * time.Second, reviewT0},
		{"in the gap", a[2].End.Add(time.Second), time.Minute, b[0].Start},
		{"after the gap", b[0].Start.Add(3 * time.Second), time.Second, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want.IsZero() {
				tc.want = rectest.KeyframeAtOrBefore(segs, tc.start)
				if tc.want.After(tc.start) {
					t.Fatalf("bad case: no keyframe at or before %s", tc.start)
				}
			}
			st := &reviewCountingStore{Store: local}
			rv := NewReview(st, ix, nil)
			got, err := rv.PlaybackStart(context.Background(), "cam", tc.start, tc.dur)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tc.want) {
				t.Fatalf("PlaybackStart(%s) = %s, want %s", tc.start.Format(time.RFC3339Nano),
					got.Format(time.RFC3339Nano), tc.want.Format(time.RFC3339Nano))
			}
			if n := st.gets.Load(); n != 0 {
				t.Fatalf("PlaybackStart read the store %d times (%v): it must use the index only", n, st.log)
			}
			// The clip begins there: its length is from got to the end
			// asked for (or the end of the run), plus at most one GOP.
			rep := rectest.Check(t, rectest.Play(t, rv, "cam", tc.start, tc.dur))
			end := tc.start.Add(tc.dur)
			if got.Before(a[2].End) && end.After(a[2].End) {
				end = a[2].End
			}
			if end.After(recEnd) {
				end = recEnd
			}
			want := end.Sub(got).Seconds()
			if rep.VideoSeconds < want-0.05 || rep.VideoSeconds > want+2.05 {
				t.Fatalf("clip lasts %.2fs; from %s to %s is %.2fs (+ up to one GOP)", rep.VideoSeconds,
					got.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), want)
			}
		})
	}
}

func TestPlaybackStartBadInput(t *testing.T) {
	rv := reviewOfTenSeconds(t)
	for _, tc := range reviewErrorCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rv.PlaybackStart(context.Background(), tc.camera, tc.start, tc.dur)
			if !errors.Is(err, tc.kind) {
				t.Fatalf("PlaybackStart = %s, %v, want an error of kind %v", got, err, tc.kind)
			}
			if !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %q does not say %q", err, tc.says)
			}
			if !got.IsZero() {
				t.Fatalf("PlaybackStart failed but returned %s", got)
			}
		})
	}
	_, err := rv.PlaybackStart(context.Background(), "cam", reviewT0.Add(time.Hour), time.Minute)
	if !errors.Is(err, apierr.ErrNotFound) {
		t.Fatalf("PlaybackStart after the recording: %v, want not found", err)
	}
}

// TestOpenWalksOnce checks that Open's Playback writes what Playback writes,
// and continues the walk over the index that found its first frame instead
// of walking it again: a row removed from the index after Open is still
// played.
func TestOpenWalksOnce(t *testing.T) {
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	segs := addReviewSegments(t, st, ix, "cam", reviewT0, 0, [][]byte{
		syntheticReviewSegment(t, 4*time.Second, 50, 0), syntheticReviewSegment(t, 4*time.Second, 50, 0)})
	rv := NewReview(st, ix, nil)
	ctx := context.Background()
	start := reviewT0.Add(1500 * time.Millisecond)
	want := rectest.Play(t, rv, "cam", start, 5*time.Second)
	wantStart, err := rv.PlaybackStart(ctx, "cam", start, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	pb, err := rv.Open(ctx, "cam", start, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if !pb.Start.Equal(wantStart) {
		t.Fatalf("Open starts at %s, PlaybackStart says %s", pb.Start, wantStart)
	}
	if err := ix.Delete(ctx, segs[0].Key); err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if n, err := pb.WriteTo(&got); err != nil || n != int64(got.Len()) {
		t.Fatalf("WriteTo: %d bytes, %v", n, err)
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("Open's clip has %d bytes, Playback's %d", got.Len(), len(want))
	}
}
