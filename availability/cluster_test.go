package availability

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

// Run samples only while RunsHere says this node samples for the cluster.
func TestRunsHere(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenDB(t)
	var here atomic.Bool
	st := ingest.Status{ID: "a"}
	st.State = ingest.StateOnline
	tr, err := New(ctx, db, Options{Interval: 20 * time.Millisecond, RunsHere: here.Load,
		Statuses: func() []ingest.Status { return []ingest.Status{st} }})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, tr.Run)
	observed := func() int64 {
		var ms int64
		if err := db.QueryRow(ctx, `SELECT COALESCE(SUM(observed_ms), 0) FROM uptime`).Scan(&ms); err != nil {
			t.Fatal(err)
		}
		return ms
	}
	time.Sleep(200 * time.Millisecond)
	if ms := observed(); ms != 0 {
		t.Fatalf("sampled %d ms while another node samples", ms)
	}
	here.Store(true)
	testkit.WaitFor(t, 5*time.Second, "samples", func() bool { return observed() >= 60 })
}

// In a cluster a node's start leaves the offline periods open (another node
// may be sampling them); the sampler ends a period no sample has seen for
// three intervals where it was last seen, and keeps one seen lately.
func TestClusterStalePeriods(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenDB(t)
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	st := ingest.Status{ID: "a"}
	st.State, st.Since = ingest.StateOffline, t0
	statuses := func() []ingest.Status { return []ingest.Status{st} }
	runs := func() bool { return true }
	tr, err := New(ctx, db, Options{Interval: 5 * time.Second, Statuses: statuses, RunsHere: runs})
	if err != nil {
		t.Fatal(err)
	}
	sample := sampler(t, tr, t0)
	sample(0)
	sample(5 * time.Second)
	// another node starts: the period stays open
	tr2, err := New(ctx, db, Options{Interval: 5 * time.Second, Statuses: statuses, RunsHere: runs})
	if err != nil {
		t.Fatal(err)
	}
	evs, err := tr2.Events(ctx, "a", t0, t0.Add(time.Hour))
	if err != nil || len(evs) != 1 || evs[0].End != nil {
		t.Fatalf("after another node's start: %+v, %v", evs, err)
	}
	// it takes over sampling within three intervals: the same period goes on
	sample2 := sampler(t, tr2, t0)
	sample2(15 * time.Second)
	evs, _ = tr2.Events(ctx, "a", t0, t0.Add(time.Hour))
	if len(evs) != 1 || evs[0].End != nil || !evs[0].Start.Equal(t0) {
		t.Fatalf("after a prompt take-over: %+v", evs)
	}
	// no sample for a minute (no node sampled): the period ended where it
	// was last seen, and a new one starts
	sample2(75 * time.Second)
	evs, _ = tr2.Events(ctx, "a", t0, t0.Add(time.Hour))
	if len(evs) != 2 || evs[0].End == nil || !evs[0].End.Equal(t0.Add(15*time.Second)) || evs[1].End != nil {
		t.Fatalf("after a gap: %+v", evs)
	}
}
