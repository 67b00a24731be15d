package availability

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// newTracker opens a fresh database with a recording index and a tracker
// over them with o (o.Index is that index).
func newTracker(t *testing.T, o Options) (*Tracker, *archive.Index) {
	t.Helper()
	ctx := context.Background()
	db := testdb.OpenDB(t)
	ix, err := archive.OpenIndex(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	o.Index = ix
	tr, err := New(ctx, db, o)
	if err != nil {
		t.Fatal(err)
	}
	return tr, ix
}

func TestReport(t *testing.T) {
	ctx := context.Background()
	// b's recording is still in the spool (not yet uploaded): 2 of its 10 minutes;
	// one of a's indexed segments is also still listed in the spool: counted once
	spooled := func(camera string, start, end time.Time) []archive.Segment {
		t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
		switch camera {
		case "b":
			return []archive.Segment{{Camera: "b", Start: t0.Add(8 * time.Minute), End: t0.Add(10 * time.Minute), Key: "b/1"}}
		case "a":
			return []archive.Segment{{Camera: "a", Start: t0, End: t0.Add(3 * time.Minute), Key: "a/1"}}
		}
		return nil
	}
	states := map[string]ingest.State{"a": ingest.StateOnline, "b": ingest.StateOffline, "c": ingest.StateDisabled}
	tr, ix := newTracker(t, Options{
		Interval: 10 * time.Second,
		Spooled:  spooled,
		Statuses: func() []ingest.Status {
			var out []ingest.Status
			for _, id := range []string{"a", "b", "c"} {
				var st ingest.Status
				st.ID = id
				st.State = states[id]
				out = append(out, st)
			}
			return out
		},
	})
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	// 10 minutes observed: a online throughout; b online for the second half
	for i := 0; i < 60; i++ {
		if i == 30 {
			states["b"] = ingest.StateOnline
		}
		if err := tr.Sample(ctx, t0.Add(time.Duration(i)*10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	// a recorded 6 of the 10 minutes, in two segments; one segment lies outside the period
	for _, s := range []archive.Segment{
		{Camera: "a", Start: t0, End: t0.Add(3 * time.Minute), Key: "a/1"},
		{Camera: "a", Start: t0.Add(5 * time.Minute), End: t0.Add(8 * time.Minute), Key: "a/2"},
		{Camera: "a", Start: t0.Add(-time.Hour), End: t0.Add(-59 * time.Minute), Key: "a/0"},
	} {
		if err := ix.Add(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	cams := []ingest.Camera{
		{ID: "a", Name: "A", Department: "police", Record: true},
		{ID: "b", Name: "B", Department: "police", Record: true},
		{ID: "c", Name: "C", Department: "flood-control", Record: true},
		{ID: "d", Name: "never seen", Department: "flood-control"},
	}
	// the period starts well before the first sample: only observed time counts
	rep, err := tr.Report(ctx, cams, t0.Add(-2*time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]CameraAv{}
	for _, c := range rep.Cameras {
		got[c.ID] = c
	}
	check := func(id string, online, recorded float64) {
		t.Helper()
		c := got[id]
		if !same(c.Online, online) || !same(c.Recorded, recorded) {
			t.Errorf("%s: online %s recorded %s, want %.1f%% and %.1f%% (-1: null)", id, show(c.Online), show(c.Recorded), online, recorded)
		}
	}
	check("a", 100, 60)
	check("b", 50, 20)
	check("c", -1, -1) // disabled: not observed, no data
	check("d", -1, -1) // never seen (and not set to record): no data
	if got["a"].ObservedS != 600 {
		t.Errorf("a observed %.0f s, want 600", got["a"].ObservedS)
	}
	// 10 minutes of a 3-hour period
	if got["a"].ObservedPercent != 5.6 || got["c"].ObservedPercent != 0 || !got["c"].NoData() || got["a"].NoData() {
		t.Errorf("observed a %.1f%% c %.1f%%, want 5.6%% and 0%% (no data)", got["a"].ObservedPercent, got["c"].ObservedPercent)
	}
	if len(rep.Departments) != 2 || rep.Departments[1].ID != "police" || !same(rep.Departments[1].Online, 75) ||
		!same(rep.Departments[1].Recorded, 40) || rep.Departments[1].ObservedPercent != 5.6 {
		t.Errorf("departments: %+v", rep.Departments)
	}
	// flood-control: c disabled, d never seen: the department has no data
	if fc := rep.Departments[0]; fc.ID != "flood-control" || fc.Online != nil || fc.Recorded != nil || !fc.NoData() || fc.ObservedPercent != 0 {
		t.Errorf("flood-control: %+v, want no data", fc)
	}
}

// same reports whether p is v, or null for v == -1.
func same(p *float64, v float64) bool {
	if v == -1 {
		return p == nil
	}
	return p != nil && *p == v
}

func show(p *float64) string {
	if p == nil {
		return "null"
	}
	return fmt.Sprintf("%.1f%%", *p)
}

// A week in which Vigil ran for two stretches of five minutes: the rest is
// no data, neither online nor offline. The report says how little was
// observed instead of showing the week as 100 % online.
func TestReportNoData(t *testing.T) {
	ctx := context.Background()
	state := ingest.StateOnline
	tr, _ := newTracker(t, Options{
		Interval: 5 * time.Second,
		Statuses: func() []ingest.Status {
			var st ingest.Status
			st.ID, st.State = "a", state
			return []ingest.Status{st}
		},
	})
	from := time.Date(2026, 11, 23, 0, 0, 0, 0, time.UTC)
	to := from.Add(7 * 24 * time.Hour)
	// Vigil first starts on the last day, runs five minutes with the camera
	// online, stops for an hour (nothing sampled), then runs five minutes more
	// with the camera offline.
	start := to.Add(-3 * time.Hour)
	for i := 0; i < 60; i++ {
		if err := tr.Sample(ctx, start.Add(time.Duration(i)*5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	state = ingest.StateOffline
	for i := 0; i < 60; i++ {
		if err := tr.Sample(ctx, start.Add(65*time.Minute+time.Duration(i)*5*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	cams := []ingest.Camera{
		{ID: "a", Name: "A", Department: "police", Record: true},
		{ID: "b", Name: "added today", Department: "police", Record: true},
	}
	for _, tc := range []struct {
		name           string
		from, to       time.Time
		observedS      float64
		observedPct    float64
		online         float64 // -1: null
		recorded       float64
		deptObservedPc float64
	}{
		{"the week", from, to, 600, 0.1, 50, 0, 0},                                 // 600 s of 604800, 1200 s of 2 cameras' weeks
		{"before Vigil ran", from, start, 0, 0, -1, -1, 0},                         // no data at all
		{"the first run", start, start.Add(5 * time.Minute), 300, 100, 100, 0, 50}, // only a observed
		{"the hour it was down", start.Add(5 * time.Minute), start.Add(65 * time.Minute), 0, 0, -1, -1, 0},
		{"the last day", to.Add(-24 * time.Hour), to, 600, 0.7, 50, 0, 0.3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep, err := tr.Report(ctx, cams, tc.from, tc.to)
			if err != nil {
				t.Fatal(err)
			}
			a, b := rep.Cameras[0], rep.Cameras[1]
			if a.ObservedS != tc.observedS || a.ObservedPercent != tc.observedPct || !same(a.Online, tc.online) || !same(a.Recorded, tc.recorded) {
				t.Errorf("a: observed %.0f s (%.1f%%) online %s recorded %s, want %.0f s (%.1f%%), %.1f%%, %.1f%% (-1: null)",
					a.ObservedS, a.ObservedPercent, show(a.Online), show(a.Recorded), tc.observedS, tc.observedPct, tc.online, tc.recorded)
			}
			if !b.NoData() || b.Online != nil || b.Recorded != nil || b.ObservedPercent != 0 {
				t.Errorf("b, never observed: %+v, want no data", b)
			}
			d := rep.Departments[0]
			if d.ObservedS != tc.observedS || d.ObservedPercent != tc.deptObservedPc || !same(d.Online, tc.online) {
				t.Errorf("department: %+v, want observed %.0f s (%.1f%%), online %.1f%%", d, tc.observedS, tc.deptObservedPc, tc.online)
			}
			if rep.PeriodS != tc.to.Sub(tc.from).Seconds() {
				t.Errorf("period %.0f s, want %.0f", rep.PeriodS, tc.to.Sub(tc.from).Seconds())
			}
		})
	}
}

func TestReportOnly(t *testing.T) {
	from := time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)
	rep := Report{From: from, To: from.Add(time.Hour),
		Departments: []DepartmentAv{{ID: "police", Cameras: 1}, {ID: "flood-control", Cameras: 2}},
		Cameras: []CameraAv{{ID: "p1", Department: "police"}, {ID: "f1", Department: "flood-control"},
			{ID: "f2", Department: "flood-control"}, {ID: "x", Department: ""}}}
	got := rep.Only(func(d string) bool { return d == "flood-control" })
	if !got.From.Equal(rep.From) || !got.To.Equal(rep.To) || len(got.Departments) != 1 || got.Departments[0].ID != "flood-control" ||
		len(got.Cameras) != 2 || got.Cameras[0].ID != "f1" || got.Cameras[1].ID != "f2" {
		t.Fatalf("Only = %+v", got)
	}
	none := rep.Only(func(string) bool { return false })
	if none.Departments == nil || none.Cameras == nil || len(none.Departments)+len(none.Cameras) != 0 {
		t.Fatalf("nothing in scope: %+v (the lists stay [] in JSON)", none)
	}
}

// A camera created under the id of a deleted one counts from its creation:
// neither the deleted camera's minutes nor its recordings are its own.
func TestReportReusedID(t *testing.T) {
	ctx := context.Background()
	tr, ix := newTracker(t, Options{Interval: 10 * time.Second, Statuses: func() []ingest.Status {
		var st ingest.Status
		st.ID, st.State = "a", ingest.StateOnline
		return []ingest.Status{st}
	}})
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	for i := 0; i < 60; i++ { // 10 minutes online: 5 of the old camera, 5 of the new
		if err := tr.Sample(ctx, t0.Add(time.Duration(i)*10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	add := func(from, to int) {
		s := t0.Add(time.Duration(from) * time.Minute)
		if err := ix.Add(ctx, archive.Segment{Camera: "a", Start: s, End: t0.Add(time.Duration(to) * time.Minute),
			Key: archive.SegmentKey("a", s)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ix.Own(ctx, archive.Owner{Camera: "a", UID: "old", Department: "police"}, t0); err != nil {
		t.Fatal(err)
	}
	add(0, 4)
	if err := ix.Disown(ctx, "a", t0.Add(4*time.Minute)); err != nil {
		t.Fatal(err)
	}
	since := t0.Add(5 * time.Minute)
	if _, err := ix.Own(ctx, archive.Owner{Camera: "a", UID: "new", Department: "flood-control", Since: since}, since); err != nil {
		t.Fatal(err)
	}
	add(5, 8)
	rep, err := tr.Report(ctx, []ingest.Camera{{ID: "a", Department: "flood-control", Record: true, UID: "new", Since: since}},
		t0.Add(-time.Hour), t0.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	c := rep.Cameras[0]
	if c.ObservedS != 300 || c.Online == nil || *c.Online != 100 || c.Recorded == nil || *c.Recorded != 60 {
		t.Errorf("new a: observed %.0f s, online %v, recorded %v; want 300 s, 100%%, 60%%", c.ObservedS, c.Online, c.Recorded)
	}
}

// An idle camera (a pushed camera nothing needs) is not observed: its idle
// time is no downtime.
func TestReportIdle(t *testing.T) {
	ctx := context.Background()
	state := ingest.StateOnline
	tr, _ := newTracker(t, Options{
		Interval: 10 * time.Second,
		Statuses: func() []ingest.Status {
			var st ingest.Status
			st.ID, st.State = "gb-1", state
			return []ingest.Status{st}
		},
	})
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	for i := range 60 {
		if i == 30 {
			state = ingest.StateIdle
		}
		if err := tr.Sample(ctx, t0.Add(time.Duration(i)*10*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := tr.Report(ctx, []ingest.Camera{{ID: "gb-1", Source: ingest.SourceGB28181}}, t0, t0.Add(10*time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if c := rep.Cameras[0]; c.ObservedS != 300 || !same(c.Online, 100) {
		t.Errorf("observed %.0f s, online %s; want 300 s, 100%%", c.ObservedS, show(c.Online))
	}
}
