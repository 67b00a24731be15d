package alerts

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/health"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// fakeStates is the ingest as the watch sees it: a state and since when,
// which changes with the state only.
type fakeStates struct {
	mu    sync.Mutex
	state map[string]ingest.State
	since map[string]time.Time
}

func (f *fakeStates) set(id string, s ingest.State) {
	f.mu.Lock()
	if f.state[id] != s {
		f.since[id] = time.Now()
	}
	f.state[id] = s
	f.mu.Unlock()
}

func (f *fakeStates) Status(c ingest.Camera) dispatch.Status {
	f.mu.Lock()
	defer f.mu.Unlock()
	var st dispatch.Status
	st.ID, st.State, st.Since = c.ID, f.state[c.ID], f.since[c.ID]
	if st.State != ingest.StateOnline {
		st.LastError = "connection refused"
	}
	return st
}

// watchCameras runs n.WatchCameras over cams and states, sampling every
// 50 ms, until stop is called or the test ends.
func watchCameras(t *testing.T, n *Notifier, cams []ingest.Camera, states *fakeStates, offlineAfter time.Duration) (stop func()) {
	t.Helper()
	return testkit.Run(t, func(ctx context.Context) error {
		return n.WatchCameras(ctx, CameraWatchOptions{
			Cameras:      func(context.Context) ([]ingest.Camera, error) { return cams, nil },
			Statuses:     states,
			OfflineAfter: offlineAfter,
			Every:        50 * time.Millisecond,
		})
	})
}

// expectNone fails the test when rcv receives an event within d.
func expectNone(t *testing.T, rcv *receiver, d time.Duration, what string) {
	t.Helper()
	select {
	case e := <-rcv.Events:
		t.Fatalf("%s: %+v", what, e)
	case <-time.After(d):
	}
}

// A blink shorter than OfflineAfter sends nothing; a longer outage sends
// camera.offline once, and camera.online when the camera returns.
func TestWatchCameras(t *testing.T) {
	rcv := newReceiver(t, "w")
	db, _ := openDB(t)
	n, _ := start(t, db, Options{Webhooks: []Webhook{{URL: rcv.URL, Secret: "w"}}})
	cams := []ingest.Camera{
		{ID: "c1", Name: "Gate", Department: "police", Enabled: true},
		{ID: "c2", Name: "Off", Department: "police", Enabled: false},
	}
	states := &fakeStates{state: map[string]ingest.State{"c1": ingest.StateOnline, "c2": ingest.StateDisabled},
		since: map[string]time.Time{}}
	defer watchCameras(t, n, cams, states, 600*time.Millisecond)()

	// a blink: offline, then reconnecting, then online, within OfflineAfter
	states.set("c1", ingest.StateOffline)
	time.Sleep(200 * time.Millisecond)
	states.set("c1", ingest.StateConnecting)
	time.Sleep(200 * time.Millisecond)
	states.set("c1", ingest.StateOnline)
	expectNone(t, rcv, 800*time.Millisecond, "a blink sent")

	// an outage, switching between offline and connecting as the ingest retries
	down := time.Now()
	states.set("c1", ingest.StateOffline)
	time.Sleep(300 * time.Millisecond)
	states.set("c1", ingest.StateConnecting)
	e := rcv.Next(t, 3*time.Second)
	if e.Event != CameraOffline || e.Camera != "c1" || e.Department != "police" || e.Severity != Warning {
		t.Fatalf("got %+v", e)
	}
	if took := time.Since(down); took < 600*time.Millisecond {
		t.Fatalf("camera.offline after %s, before OfflineAfter", took)
	}
	states.set("c1", ingest.StateOffline)
	time.Sleep(300 * time.Millisecond)
	// online for a moment between two samples, then offline again: the
	// outage ended (camera.online) and a new one begins
	states.set("c1", ingest.StateOnline)
	states.set("c1", ingest.StateOffline)
	if e := rcv.Next(t, 3*time.Second); e.Event != CameraOnline || e.Camera != "c1" {
		t.Fatalf("got %+v", e)
	}
	if e := rcv.Next(t, 3*time.Second); e.Event != CameraOffline || e.Camera != "c1" {
		t.Fatalf("got %+v", e)
	}
	states.set("c1", ingest.StateOnline)
	if e := rcv.Next(t, 3*time.Second); e.Event != CameraOnline || e.Camera != "c1" {
		t.Fatalf("got %+v", e)
	}
	expectNone(t, rcv, 300*time.Millisecond, "unexpected")
}

func TestFollowHealth(t *testing.T) {
	rcv := newReceiver(t, "h")
	db, _ := openDB(t)
	n, _ := start(t, db, Options{Webhooks: []Webhook{{URL: rcv.URL, Secret: "h"}}})
	follow := n.FollowHealth(context.Background())
	at := time.Now()
	check := func(name string, s health.Status, msg string) health.Check {
		return health.Check{Name: name, Status: s, Message: msg, Since: at}
	}
	steps := []struct {
		change health.Change
		want   string // "" = no event
	}{
		{health.Change{After: check("storage", health.OK, "fine")}, ""},
		{health.Change{Before: check("storage", health.OK, ""), After: check("storage", health.Degraded, "bad credentials")}, StorageFailing},
		{health.Change{Before: check("storage", health.Degraded, ""), After: check("storage", health.Failing, "worse")}, ""},
		{health.Change{Before: check("storage", health.Failing, ""), After: check("storage", health.OK, "fine")}, StorageRecovered},
		{health.Change{After: check("storage", health.Degraded, "wrong secret at start")}, StorageFailing},
		{health.Change{Before: check("spool", health.OK, ""), After: check("spool", health.Degraded, "95 %")}, SpoolHigh},
		{health.Change{Before: check("database", health.OK, ""), After: check("database", health.Failing, "x")}, ""},
	}
	for i, s := range steps {
		follow(s.change)
		if s.want == "" {
			continue
		}
		e := rcv.Next(t, 3*time.Second)
		if e.Event != s.want || e.Message != s.change.After.Message {
			t.Fatalf("step %d: got %+v, want %s", i, e, s.want)
		}
	}
	expectNone(t, rcv, 200*time.Millisecond, "unexpected")

	// a cluster node says which node its store and spool events are about
	n2, _ := start(t, db, Options{Webhooks: []Webhook{{URL: rcv.URL, Secret: "h"}}, Node: "node-b", RunsHere: func() bool { return true }})
	n2.FollowHealth(context.Background())(health.Change{Before: check("spool", health.OK, ""), After: check("spool", health.Degraded, "95 %")})
	if e := rcv.Next(t, 3*time.Second); e.Event != SpoolHigh || e.Message != "node node-b: 95 %" {
		t.Fatalf("spool event of a cluster node: %+v", e)
	}
}

// A camera announced offline before a restart gets its camera.online after
// it, and no second camera.offline while it stays offline.
func TestWatchCamerasAcrossRestart(t *testing.T) {
	rcv := newReceiver(t, "r")
	db, _ := openDB(t)
	hooks := []Webhook{{URL: rcv.URL, Secret: "r"}}
	cams := []ingest.Camera{{ID: "c1", Name: "Gate", Department: "police", Enabled: true}}
	states := &fakeStates{state: map[string]ingest.State{}, since: map[string]time.Time{}}
	states.set("c1", ingest.StateOffline)
	watch := func(n *Notifier) (stop func()) { return watchCameras(t, n, cams, states, 300*time.Millisecond) }
	n, stopN := start(t, db, Options{Webhooks: hooks})
	stopW := watch(n)
	if e := rcv.Next(t, 3*time.Second); e.Event != CameraOffline {
		t.Fatalf("got %+v", e)
	}
	stopW()
	// delivered (and not only received: a stop in between sends it again)
	testkit.WaitFor(t, 3*time.Second, "nothing pending", func() bool { return n.Stats().Pending == 0 })
	stopN()

	// restarted while the camera is still offline (the ingest starts over)
	states.set("c1", ingest.StateConnecting)
	states.set("c1", ingest.StateOffline)
	n, _ = start(t, db, Options{Webhooks: hooks})
	stopW = watch(n)
	defer stopW()
	expectNone(t, rcv, 700*time.Millisecond, "after the restart")
	states.set("c1", ingest.StateOnline)
	if e := rcv.Next(t, 3*time.Second); e.Event != CameraOnline || e.Camera != "c1" {
		t.Fatalf("got %+v", e)
	}
}

// A camera that connects and goes offline again between two samples (the
// watch never saw it online) counts its outage from going offline, not from
// its first connection attempt.
func TestWatchCamerasUnseenOnlineAtStart(t *testing.T) {
	rcv := newReceiver(t, "u")
	db, _ := openDB(t)
	n, _ := start(t, db, Options{Webhooks: []Webhook{{URL: rcv.URL, Secret: "u"}}})
	cams := []ingest.Camera{{ID: "c1", Name: "Gate", Department: "police", Enabled: true}}
	states := &fakeStates{state: map[string]ingest.State{}, since: map[string]time.Time{}}
	states.set("c1", ingest.StateConnecting)
	defer watchCameras(t, n, cams, states, 500*time.Millisecond)()
	time.Sleep(350 * time.Millisecond) // connecting, for most of OfflineAfter...
	states.set("c1", ingest.StateOnline)
	states.set("c1", ingest.StateOffline) // ...then online for an instant
	offAt := time.Now()
	e := rcv.Next(t, 3*time.Second)
	if took := time.Since(offAt); e.Event != CameraOffline || took < 450*time.Millisecond {
		t.Fatalf("%s after %s, want camera.offline OfflineAfter after going offline", e.Event, took)
	}
}

// An idle camera (a pushed camera nothing needs) is not offline.
func TestWatchIdleCamera(t *testing.T) {
	rcv := newReceiver(t, "i")
	db, _ := openDB(t)
	n, _ := start(t, db, Options{Webhooks: []Webhook{{URL: rcv.URL, Secret: "i"}}})
	cams := []ingest.Camera{{ID: "gb-1", Name: "Gate", Enabled: true, Source: ingest.SourceGB28181}}
	states := &fakeStates{state: map[string]ingest.State{"gb-1": ingest.StateIdle}, since: map[string]time.Time{}}
	defer watchCameras(t, n, cams, states, 200*time.Millisecond)()
	expectNone(t, rcv, 800*time.Millisecond, "an idle camera alerted")
	states.set("gb-1", ingest.StateOffline)
	if e := rcv.Next(t, 3*time.Second); e.Event != CameraOffline || e.Camera != "gb-1" {
		t.Fatalf("got %+v", e)
	}
	states.set("gb-1", ingest.StateIdle)
	if e := rcv.Next(t, 3*time.Second); e.Event != CameraOnline || e.Camera != "gb-1" {
		t.Fatalf("got %+v", e)
	}
}
