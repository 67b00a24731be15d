package availability

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// Offline periods start when the camera's state changed and end when it came
// back; a period open when Vigil stops ends at the last sample that saw it;
// Events returns the periods overlapping the range asked for.
func TestEvents(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenDB(t)
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	var st ingest.Status
	st.ID = "a"
	st.State = ingest.StateOnline
	tr, err := New(ctx, db, Options{Interval: 5 * time.Second, Statuses: func() []ingest.Status { return []ingest.Status{st} }})
	if err != nil {
		t.Fatal(err)
	}
	sample := sampler(t, tr, t0)
	sample(0)
	// offline at 7 s, seen at 10 s and 15 s, online again at 17 s, seen at 20 s
	st.State, st.Since, st.LastError = ingest.StateOffline, t0.Add(7*time.Second), "connection refused"
	sample(10 * time.Second)
	sample(15 * time.Second)
	st.State, st.Since, st.LastError = ingest.StateOnline, t0.Add(17*time.Second), ""
	sample(20 * time.Second)
	// offline again at 30 s and still offline
	st.State, st.Since, st.LastError = ingest.StateOffline, t0.Add(30*time.Second), "RTSP 404"
	sample(30 * time.Second)
	sample(35 * time.Second)

	evs, err := tr.Events(ctx, "a", t0, t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 2 {
		t.Fatalf("events: %+v", evs)
	}
	if e := evs[0]; e.Type != EventOffline || !e.Start.Equal(t0.Add(7*time.Second)) || e.End == nil ||
		!e.End.Equal(t0.Add(17*time.Second)) || e.Message != "connection refused" {
		t.Fatalf("first period: %+v", e)
	}
	if e := evs[1]; !e.Start.Equal(t0.Add(30*time.Second)) || e.End != nil || e.Message != "RTSP 404" {
		t.Fatalf("open period: %+v", e)
	}
	// a range that ends before the second period, and one after everything
	if evs, _ := tr.Events(ctx, "a", t0, t0.Add(20*time.Second)); len(evs) != 1 {
		t.Fatalf("events to 20 s: %+v", evs)
	}
	if evs, _ := tr.Events(ctx, "a", t0.Add(-time.Hour), t0.Add(5*time.Second)); len(evs) != 0 {
		t.Fatalf("events before: %+v", evs)
	}
	if evs, _ := tr.Events(ctx, "b", t0, t0.Add(time.Minute)); len(evs) != 0 {
		t.Fatalf("events of another camera: %+v", evs)
	}

	// Vigil restarts: the open period ends at the last sample that saw it
	if _, err := New(ctx, db, Options{Statuses: func() []ingest.Status { return nil }}); err != nil {
		t.Fatal(err)
	}
	evs, _ = tr.Events(ctx, "a", t0, t0.Add(time.Hour))
	if len(evs) != 2 || evs[1].End == nil || !evs[1].End.Equal(t0.Add(35*time.Second)) {
		t.Fatalf("after restart: %+v", evs)
	}
}

// A camera removed while offline ends its period, also the last one.
func TestEventsRemoved(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenDB(t)
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	sts := []ingest.Status{{ID: "a", StreamStatus: ingest.StreamStatus{State: ingest.StateOffline}}}
	tr, err := New(ctx, db, Options{Interval: 5 * time.Second, Statuses: func() []ingest.Status { return sts }})
	if err != nil {
		t.Fatal(err)
	}
	tr.Sample(ctx, t0)
	sts = []ingest.Status{{ID: "b", StreamStatus: ingest.StreamStatus{State: ingest.StateOnline}}}
	tr.Sample(ctx, t0.Add(5*time.Second))
	evs, err := tr.Events(ctx, "a", t0, t0.Add(time.Minute))
	if err != nil || len(evs) != 1 || evs[0].End == nil || !evs[0].End.Equal(t0.Add(5*time.Second)) || !evs[0].Start.Equal(t0) {
		t.Fatalf("removed camera: %+v %v", evs, err)
	}
	// the last camera removed while offline
	sts = []ingest.Status{{ID: "b", StreamStatus: ingest.StreamStatus{State: ingest.StateOffline}}}
	tr.Sample(ctx, t0.Add(10*time.Second))
	sts = nil
	tr.Sample(ctx, t0.Add(15*time.Second))
	evs, err = tr.Events(ctx, "b", t0, t0.Add(time.Minute))
	if err != nil || len(evs) != 1 || evs[0].End == nil || !evs[0].End.Equal(t0.Add(15*time.Second)) {
		t.Fatalf("last camera removed: %+v %v", evs, err)
	}
}

// A camera created under a deleted camera's id does not show the deleted
// one's offline periods (nor their messages).
func TestEventsReusedID(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	var st ingest.Status
	st.ID, st.State = "a", ingest.StateOnline
	tr, ix := newTracker(t, Options{Interval: 5 * time.Second, Statuses: func() []ingest.Status { return []ingest.Status{st} }})
	sample := sampler(t, tr, t0)
	if _, err := ix.Own(ctx, archive.Owner{Camera: "a", UID: "old", Department: "police", Since: t0}, t0); err != nil {
		t.Fatal(err)
	}
	sample(0)
	st.State, st.Since, st.LastError = ingest.StateOffline, t0.Add(7*time.Second), "police camera 10.1.2.3 refused"
	sample(10 * time.Second)
	st.State, st.Since, st.LastError = ingest.StateOnline, t0.Add(17*time.Second), ""
	sample(20 * time.Second)
	if err := ix.Disown(ctx, "a", t0.Add(25*time.Second)); err != nil {
		t.Fatal(err)
	}
	since := t0.Add(30 * time.Second)
	if _, err := ix.Own(ctx, archive.Owner{Camera: "a", UID: "new", Department: "flood-control", Since: since}, since); err != nil {
		t.Fatal(err)
	}
	sample(35 * time.Second)
	st.State, st.Since, st.LastError = ingest.StateOffline, t0.Add(40*time.Second), "RTSP 404"
	sample(45 * time.Second)
	evs, err := tr.Events(ctx, "a", t0, t0.Add(time.Minute))
	if err != nil || len(evs) != 1 || evs[0].Message != "RTSP 404" {
		t.Fatalf("events of the new a: %+v %v", evs, err)
	}
	if evs, err := tr.Events(ctx, "a", t0, t0.Add(20*time.Second)); err != nil || len(evs) != 0 {
		t.Fatalf("events of the new a before it existed: %+v %v", evs, err)
	}
}

// sampler returns a function that samples tr at t0 plus a duration.
func sampler(t *testing.T, tr *Tracker, t0 time.Time) func(time.Duration) {
	return func(at time.Duration) {
		t.Helper()
		if err := tr.Sample(context.Background(), t0.Add(at)); err != nil {
			t.Fatal(err)
		}
	}
}
