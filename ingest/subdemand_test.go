package ingest

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
)

// With SubLinger, a camera's sub-stream is pulled only while something
// needs it and SubLinger after; the main stream is pulled all the time.
// Checked against camsim's count of RTSP sessions, the camera's own view.
func TestSubStreamOnDemand(t *testing.T) {
	defer goleak.VerifyNone(t)
	sim := simcam.Start(t, camsim.Options{Count: 1})
	defer sim.Close()
	o := fastOptions(t)
	o.SubLinger = 500 * time.Millisecond
	cam := Camera{ID: "cam1", MainURL: sim.URL(1, false), SubURL: sim.URL(1, true), Transport: "tcp", Enabled: true}
	m, stop := startFleet(t, o, cam)
	defer stop()

	// at start the sub-stream is checked once (its tracks published), then idle
	testkit.WaitFor(t, 10*time.Second, "main online, sub checked and idle", func() bool {
		st, _ := m.Status("cam1")
		return st.State == StateOnline && st.Sub != nil && st.Sub.State == StateIdle &&
			m.Stream("cam1", Sub).Media() != nil && sim.Sessions() == 1
	})
	time.Sleep(300 * time.Millisecond)
	if st, _ := m.Status("cam1"); st.Sub.State != StateIdle || st.Sub.LastError != "" || sim.Sessions() != 1 {
		t.Fatalf("before any viewer: sub %+v, camera sessions %d (want idle, 1)", st.Sub, sim.Sessions())
	}

	// a viewer: the sub-stream is pulled, and its units flow
	sub := m.Stream("cam1", Sub).Subscribe(SubscribeOptions{Kind: Viewer, QueueLen: 256})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for range 10 {
		if _, _, err := sub.Next(ctx); err != nil {
			t.Fatalf("sub-stream units: %v", err)
		}
	}
	if st, _ := m.Status("cam1"); st.Sub.State != StateOnline || sim.Sessions() != 2 {
		t.Fatalf("while watched: sub %+v, camera sessions %d (want online, 2)", st.Sub, sim.Sessions())
	}

	// the viewer leaves: SubLinger later the sub-stream's session ends
	sub.Close()
	left := time.Now()
	testkit.WaitFor(t, 10*time.Second, "sub-stream idle again", func() bool {
		st, _ := m.Status("cam1")
		return st.Sub.State == StateIdle && sim.Sessions() == 1
	})
	if d := time.Since(left); d < o.SubLinger {
		t.Fatalf("the sub-stream stopped %v after its last viewer, before SubLinger (%v)", d, o.SubLinger)
	}
	if st, _ := m.Status("cam1"); st.State != StateOnline {
		t.Fatalf("main stream %s after the sub-stream idled", st.State)
	}

	// a viewer within the linger keeps it: no new session
	w := m.Stream("cam1", Sub).Want()
	testkit.WaitFor(t, 10*time.Second, "sub-stream online", func() bool { st, _ := m.Status("cam1"); return st.Sub.State == StateOnline })
	w()
	time.Sleep(o.SubLinger / 2)
	sub = m.Stream("cam1", Sub).Subscribe(SubscribeOptions{Kind: Viewer, QueueLen: 256})
	defer sub.Close()
	if _, _, err := sub.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if st, _ := m.Status("cam1"); st.Sub.State != StateOnline || st.Sub.Reconnects != 0 {
		t.Fatalf("a viewer within the linger: sub %+v (want online, no reconnect)", st.Sub)
	}
}

// A sub-stream pulled on demand is checked before anyone watches it: a
// wrong URL shows offline with its error and is retried with backoff, no
// viewer needed; once the camera serves it, it is checked and idles.
func TestSubStreamOnDemandFailing(t *testing.T) {
	defer goleak.VerifyNone(t)
	sim := simcam.Start(t, camsim.Options{Count: 1})
	defer sim.Close()
	o := fastOptions(t)
	o.SubLinger = 300 * time.Millisecond
	cam := Camera{ID: "cam1", MainURL: sim.URL(1, false), SubURL: sim.URL(1, true) + "-missing", Transport: "tcp", Enabled: true}
	m, stop := startFleet(t, o, cam)
	defer stop()

	testkit.WaitFor(t, 10*time.Second, "sub-stream offline with its error", func() bool {
		st, _ := m.Status("cam1")
		return st.Sub.State == StateOffline && st.Sub.LastError != ""
	})
	st, _ := m.Status("cam1")
	r0 := st.Sub.Reconnects
	testkit.WaitFor(t, 10*time.Second, "retries", func() bool { st, _ := m.Status("cam1"); return st.Sub.Reconnects > r0 })
	if st, _ := m.Status("cam1"); st.Sub.State != StateOffline {
		t.Fatalf("failing sub-stream without a viewer: %+v, want offline", st.Sub)
	}

	// the admin fixes the URL: checked (online), then idle
	cam.SubURL = sim.URL(1, true)
	m.Set(cam)
	testkit.WaitFor(t, 10*time.Second, "sub-stream idle after a good session", func() bool {
		st, _ := m.Status("cam1")
		return st.Sub.State == StateIdle && st.Sub.LastError == "" && m.Stream("cam1", Sub).Media() != nil && sim.Sessions() == 1
	})
}

// A viewer who comes while the sub-stream is being checked (a wall open
// when the server starts) keeps it for SubLinger after leaving, as any
// viewer does: the check's "end once online" is for a check nobody needed.
func TestSubStreamCheckWithViewer(t *testing.T) {
	defer goleak.VerifyNone(t)
	sim := simcam.Start(t, camsim.Options{Count: 1})
	defer sim.Close()
	o := fastOptions(t)
	o.SubLinger = 1500 * time.Millisecond
	cam := Camera{ID: "cam1", MainURL: sim.URL(1, false), SubURL: sim.URL(1, true), Transport: "tcp", Enabled: true}
	m := NewFleet(o)
	m.Set(cam)
	release := m.Stream("cam1", Sub).Want() // before Run: the check starts demanded
	stop := runManager(t, m)
	defer stop()
	testkit.WaitFor(t, 10*time.Second, "sub-stream online", func() bool { st, _ := m.Status("cam1"); return st.Sub.State == StateOnline })
	release()
	left := time.Now()
	time.Sleep(o.SubLinger / 2)
	if st, _ := m.Status("cam1"); st.Sub.State != StateOnline {
		t.Fatalf("sub-stream %s %v after its viewer left, within SubLinger (%v)", st.Sub.State, time.Since(left), o.SubLinger)
	}
	testkit.WaitFor(t, 10*time.Second, "sub-stream idle", func() bool { st, _ := m.Status("cam1"); return st.Sub.State == StateIdle })
	if d := time.Since(left); d < o.SubLinger {
		t.Fatalf("idle %v after the viewer left, before SubLinger", d)
	}
}
