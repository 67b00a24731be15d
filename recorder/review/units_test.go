package review

import (
	"context"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
)

// readUnits reads all the units of a range.
func readUnits(t *testing.T, rv *Review, camera string, start, end time.Time) (*Units, []Unit) {
	t.Helper()
	u, err := rv.Units(context.Background(), camera, start, end)
	if err != nil {
		t.Fatalf("units: %v", err)
	}
	defer u.Close()
	var out []Unit
	for {
		un, err := u.Next()
		if err == io.EOF {
			return u, out
		}
		if err != nil {
			t.Fatalf("next unit: %v", err)
		}
		out = append(out, un)
	}
}

func TestUnitsAcrossSegmentsAndGaps(t *testing.T) {
	files := reviewFFmpegSegments(t, reviewFFmpegSpec{Size: "320x180", Seconds: 20, SegEvery: 4})
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	// Two runs of segments with a 10 s gap between them.
	first := addReviewSegments(t, st, ix, "cam-u", reviewT0, 0, files[:3])
	resume := first[len(first)-1].End.Add(10 * time.Second)
	second := addReviewSegments(t, st, ix, "cam-u", resume, 0, files[3:])
	rv := NewReview(st, ix, nil)

	start := reviewT0.Add(2*time.Second + 500*time.Millisecond) // inside a GOP: starts at the keyframe at 2 s
	end := second[len(second)-1].End.Add(-3 * time.Second)
	u, units := readUnits(t, rv, "cam-u", start, end)
	if want := reviewT0.Add(2 * time.Second); u.Start.Sub(want).Abs() > 50*time.Millisecond {
		t.Errorf("Start = %s, want the keyframe at %s", u.Start, want)
	}
	if len(units) == 0 || !units[0].Track.Video() || !units[0].Key {
		t.Fatalf("first unit is not a video keyframe: %+v", units[0])
	}
	var video, audio, keys int
	var prev time.Time
	var jumped bool
	for i, un := range units {
		if !un.DTS.After(prev) && un.Track.Video() && i > 0 && units[i-1].Track.Video() {
			t.Fatalf("unit %d: video DTS %s not after %s", i, un.DTS, prev)
		}
		if !un.Time.Before(end) {
			t.Fatalf("unit %d at %s is not before the end %s", i, un.Time, end)
		}
		if un.Track.Video() {
			if i > 0 && un.DTS.Sub(prev) > 5*time.Second {
				jumped = true
				if !un.Key {
					t.Errorf("the first unit after the gap is not a keyframe")
				}
			}
			prev = un.DTS
			video++
			if un.Key {
				keys++
			}
		} else {
			audio++
		}
	}
	if !jumped {
		t.Error("the units did not go across the gap")
	}
	recorded := first[len(first)-1].End.Sub(u.Start) + end.Sub(resume)
	wantFrames := int(recorded.Seconds() * 25)
	if video < wantFrames-3 || video > wantFrames+3 {
		t.Errorf("%d video units, want about %d (%s recorded at 25 fps)", video, wantFrames, recorded)
	}
	if audio == 0 || keys < 5 {
		t.Errorf("%d audio units and %d keyframes", audio, keys)
	}
	if g := u.Gaps(); len(g) != 1 || g[0].End.Sub(resume).Abs() > 100*time.Millisecond {
		t.Errorf("gaps %+v, want one ending at %s", g, resume)
	}
}

func TestUnitsErrors(t *testing.T) {
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	rv := NewReview(st, ix, nil)
	ctx := context.Background()
	if _, err := rv.Units(ctx, "cam-none", reviewT0, reviewT0.Add(time.Minute)); !errors.Is(err, apierr.ErrNotFound) {
		t.Errorf("nothing recorded: %v, want not found", err)
	}
	if _, err := rv.Units(ctx, "cam-none", reviewT0, reviewT0); !errors.Is(err, apierr.ErrInvalid) {
		t.Errorf("empty range: %v, want invalid", err)
	}
}

func TestUnitsCloseEarly(t *testing.T) {
	files := reviewFFmpegSegments(t, reviewFFmpegSpec{Size: "320x180", Seconds: 20, SegEvery: 4})
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	addReviewSegments(t, st, ix, "cam-c", reviewT0, 0, files)
	rv := NewReview(st, ix, nil)
	u, err := rv.Units(context.Background(), "cam-c", reviewT0, reviewT0.Add(15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range 10 {
		if _, err := u.Next(); err != nil {
			t.Fatal(err)
		}
	}
	u.Close()
	if _, err := u.Next(); err != io.EOF {
		t.Errorf("Next after Close: %v, want EOF", err)
	}
}
