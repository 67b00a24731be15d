package ui

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/recorder/review"
)

// gapReview records with a gap: a playback stops there, an export goes across it.
type gapReview struct{ fakeReview }

var (
	gapStart = fixtureT0.Add(5 * time.Second)
	gapEnd   = fixtureT0.Add(20 * time.Second)
)

func (g gapReview) Open(ctx context.Context, camera string, start time.Time, dur time.Duration) (review.Playback, error) {
	pb, err := g.fakeReview.Open(ctx, camera, start, dur)
	pb.End, pb.Stops, pb.Resume = gapStart, review.StopsAtGap, gapEnd
	return pb, err
}

func (g gapReview) Export(ctx context.Context, camera string, start, end time.Time) (review.Export, error) {
	ex, err := g.fakeReview.Export(ctx, camera, start, end)
	ex.Gaps = []review.Gap{{Start: gapStart, End: gapEnd}, {Start: fixtureT0.Add(25 * time.Second), End: end}}
	ex.Recorded = 10*time.Second + 250*time.Millisecond
	return ex, err
}

// A playback says before its first byte where and why it stops; an export
// names the stretches it does not hold and how much it holds.
func TestGapHeaders(t *testing.T) {
	f := newFixtureReview(t, Options{}, gapReview{})
	for _, m := range []string{"HEAD", "GET"} {
		w := f.do(req{method: m, path: "/api/v1/cameras/police-1/playback?start=2026-11-26T08:00:01Z&duration=60s", who: pAdmin})
		h := w.Header()
		if w.Code != http.StatusOK || h.Get(EndHeader) != "2026-11-26T08:00:05Z" || h.Get(StopsHeader) != "gap" ||
			h.Get(ResumeHeader) != "2026-11-26T08:00:20Z" {
			t.Errorf("%s playback: %d, end %q, stops %q, resume %q", m, w.Code, h.Get(EndHeader), h.Get(StopsHeader), h.Get(ResumeHeader))
		}
	}
	w := f.do(req{method: "GET", path: "/api/v1/cameras/police-1/export?start=2026-11-26T08:00:00Z&end=2026-11-26T08:00:30Z", who: pAdmin})
	h := w.Header()
	if want := "2026-11-26T08:00:05Z/2026-11-26T08:00:20Z, 2026-11-26T08:00:25Z/2026-11-26T08:00:30Z"; w.Code != http.StatusOK || h.Get(GapsHeader) != want {
		t.Errorf("export: %d, gaps %q, want %q", w.Code, h.Get(GapsHeader), want)
	}
	if got := h.Get(RecordedHeader); got != "10.250" {
		t.Errorf("export: recorded %q, want 10.250", got)
	}
	found := false
	for _, e := range mustAudit(t, f) {
		if e.Action == "export" {
			found = strings.HasSuffix(e.Detail, " recorded 10.250s gaps 2")
			if !found {
				t.Errorf("export audited as %q, want what it holds and its gaps", e.Detail)
			}
		}
	}
	if !found {
		t.Error("export not audited with what it holds")
	}
}
