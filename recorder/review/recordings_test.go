package review

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/archive"
)

func TestRecordings(t *testing.T) {
	ix := openReviewIndex(t)
	ctx := context.Background()
	at := func(s float64) time.Time { return reviewT0.Add(time.Duration(s * float64(time.Second))) }
	rows := [][2]float64{{0, 60}, {60.5, 120}, {121, 180}, {190, 250}, {250, 310}, {400, 460}}
	for _, r := range rows {
		s := archive.Segment{Camera: "cam", Start: at(r[0]), End: at(r[1]), Bytes: 1000, Key: reviewKey("cam", at(r[0])), InitSize: 10}
		if err := ix.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	if err := ix.Add(ctx, archive.Segment{Camera: "other", Start: at(0), End: at(500), Key: "other/x.mp4", InitSize: 10}); err != nil {
		t.Fatal(err)
	}
	rv := NewReview(nil, ix, nil)
	cases := []struct {
		name       string
		start, end float64
		spans      [][2]float64
		segments   int
	}{
		{"everything", -100, 1000, [][2]float64{{0, 180}, {190, 310}, {400, 460}}, 6},
		{"inside one span", 70, 80, [][2]float64{{60.5, 120}}, 1},
		{"across a gap", 150, 200, [][2]float64{{121, 180}, {190, 250}}, 2},
		{"in a gap", 320, 390, nil, 0},
		{"end is exclusive", 460, 500, nil, 0},
		{"before everything", -500, -100, nil, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := rv.Recordings(ctx, "cam", at(tc.start), at(tc.end))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Segments) != tc.segments || len(got.Spans) != len(tc.spans) {
				t.Fatalf("got %+v", got)
			}
			for i, sp := range tc.spans {
				if !got.Spans[i].Start.Equal(at(sp[0])) || !got.Spans[i].End.Equal(at(sp[1])) {
					t.Fatalf("span %d: %v–%v, want %v–%v", i, got.Spans[i].Start, got.Spans[i].End, at(sp[0]), at(sp[1]))
				}
			}
		})
	}
	got, err := rv.Recordings(ctx, "cam", at(0), at(70))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := json.Marshal(got)
	want := `{"spans":[{"start":"2026-11-26T08:00:00Z","end":"2026-11-26T08:02:00Z"}],"segments":[{"start":"2026-11-26T08:00:00Z","end":"2026-11-26T08:01:00Z","bytes":1000},{"start":"2026-11-26T08:01:00.5Z","end":"2026-11-26T08:02:00Z","bytes":1000}]}`
	if string(b) != want {
		t.Fatalf("JSON %s\nwant %s", b, want)
	}
	empty, err := rv.Recordings(ctx, "nobody", at(0), at(70))
	if b, _ := json.Marshal(empty); err != nil || string(b) != `{"spans":[],"segments":[]}` {
		t.Fatalf("unknown camera: %s, %v", b, err)
	}
}

func TestRecordingsBadInput(t *testing.T) {
	rv := NewReview(nil, openReviewIndex(t), nil)
	cases := []struct {
		name       string
		camera     string
		start, end time.Time
		says       string
	}{
		{"no camera", "", reviewT0, reviewT0.Add(time.Hour), "camera is required"},
		{"no start", "cam", time.Time{}, reviewT0, "start is required"},
		{"no end", "cam", reviewT0, time.Time{}, "end is required"},
		{"inverted", "cam", reviewT0, reviewT0.Add(-time.Hour), "is not after start"},
		{"over 31 days", "cam", reviewT0, reviewT0.Add(32 * 24 * time.Hour), "limit of 31 days"},
		{"absurd", "cam", time.Date(1, 1, 2, 0, 0, 0, 0, time.UTC), reviewT0, "not a plausible"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := rv.Recordings(context.Background(), tc.camera, tc.start, tc.end)
			if !errors.Is(err, apierr.ErrInvalid) || !strings.Contains(err.Error(), tc.says) {
				t.Fatalf("error %v, want invalid saying %q", err, tc.says)
			}
		})
	}
}
