package watch

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/gb28181/device"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/health"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/hookrecv"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/registry"
)

const (
	river = "44011300001320000001"
	gate  = "44011300001320000002"
	fresh = "44011300001320000003"
)

// states is the SIP side as the watcher sees it: each device's state, set
// by the test as the SIP server would.
type states struct {
	mu sync.Mutex
	m  map[string]sip.State
}

func (s *states) DeviceState(id string) sip.State {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st, ok := s.m[id]; ok {
		return st
	}
	return sip.State{State: sip.StateNever}
}

// set changes a device's state and tells the watcher, as sip.Server does.
func (s *states) set(w *Watcher, id string, st sip.State) {
	s.mu.Lock()
	s.m[id] = st
	s.mu.Unlock()
	w.OnState(id, st)
}

type env struct {
	db      *sql.DB
	devices *device.Store
	states  *states
	hooks   *hookrecv.Receiver[alerts.Event]
	alerts  *alerts.Notifier
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db := testdb.Open(t, "")
	if _, err := registry.Open(ctx, db); err != nil {
		t.Fatal(err)
	}
	devs, err := device.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id, dep := range map[string]string{river: "flood-control", gate: "police", fresh: "police"} {
		if _, err := devs.Create(ctx, device.Input{ID: id, Name: "NVR " + dep, Department: dep}); err != nil {
			t.Fatal(err)
		}
	}
	hooks := hookrecv.New[alerts.Event](t, func(*http.Request, []byte) bool { return true })
	n, err := alerts.New(ctx, &sqldb.DB{DB: db, Dialect: sqldb.SQLite}, alerts.Options{Webhooks: []alerts.Webhook{{URL: hooks.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, n.Run)
	return &env{db: db, devices: devs, states: &states{m: map[string]sip.State{}}, hooks: hooks, alerts: n}
}

func (e *env) watcher(t *testing.T, offlineAfter time.Duration) (*Watcher, func()) {
	t.Helper()
	w, err := New(context.Background(), e.db, Options{Devices: e.devices, States: e.states, Alerts: e.alerts,
		OfflineAfter: offlineAfter, Log: testkit.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	return w, testkit.Run(t, w.Run)
}

func (e *env) next(t *testing.T, within time.Duration) alerts.Event {
	t.Helper()
	select {
	case ev := <-e.hooks.Events:
		return ev
	case <-time.After(within):
		t.Fatalf("no alert within %s", within)
		return alerts.Event{}
	}
}

func (e *env) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-e.hooks.Events:
		t.Fatalf("unexpected alert %+v", ev)
	case <-time.After(d):
	}
}

func TestDeviceOfflineOnline(t *testing.T) {
	e := newEnv(t)
	const after = 300 * time.Millisecond
	w, _ := e.watcher(t, after)
	t0 := time.Now()
	e.states.set(w, river, sip.State{State: sip.StateOnline, Since: t0, Address: "10.0.0.7:5060", Transport: "udp"})

	// A reboot: unregistered and back within OfflineAfter raises nothing.
	e.states.set(w, gate, sip.State{State: sip.StateOnline, Since: t0})
	e.states.set(w, gate, sip.State{State: sip.StateOffline, Since: time.Now(), LastError: "unregistered"})
	e.states.set(w, gate, sip.State{State: sip.StateOnline, Since: time.Now()})

	down := time.Now()
	e.states.set(w, river, sip.State{State: sip.StateOffline, Since: down, LastError: "3 keepalives missed"})
	ev := e.next(t, 10*time.Second)
	if d := time.Since(down); d < after {
		t.Errorf("device.offline %s after the device went offline, before OfflineAfter", d)
	}
	if ev.Event != alerts.DeviceOffline || ev.Department != "flood-control" || ev.Camera != "" || ev.Severity != alerts.Warning ||
		!strings.Contains(ev.Message, river) || !strings.Contains(ev.Message, "NVR flood-control") ||
		!strings.Contains(ev.Message, down.UTC().Format(time.RFC3339)) || !strings.Contains(ev.Message, "3 keepalives missed") {
		t.Fatalf("offline alert %+v", ev)
	}
	e.none(t, 2*after) // once only

	e.states.set(w, river, sip.State{State: sip.StateOnline, Since: time.Now(), Address: "10.0.0.8:5060"})
	ev = e.next(t, 10*time.Second)
	if ev.Event != alerts.DeviceOnline || ev.Department != "flood-control" || !strings.Contains(ev.Message, "online again after") ||
		!strings.Contains(ev.Message, "10.0.0.8:5060") {
		t.Fatalf("online alert %+v", ev)
	}
	e.none(t, 2*after)
}

// A device announced offline before a restart gets its device.online after.
func TestDeviceOnlineAfterRestart(t *testing.T) {
	e := newEnv(t)
	w, stop := e.watcher(t, 50*time.Millisecond)
	e.states.set(w, gate, sip.State{State: sip.StateOffline, Since: time.Now(), LastError: "3 keepalives missed"})
	if ev := e.next(t, 10*time.Second); ev.Event != alerts.DeviceOffline {
		t.Fatalf("%+v", ev)
	}
	stop()
	w, _ = e.watcher(t, 50*time.Millisecond)
	// After a restart the SIP server knows no device: it registers anew.
	e.states.set(w, gate, sip.State{State: sip.StateOnline, Since: time.Now()})
	if ev := e.next(t, 10*time.Second); ev.Event != alerts.DeviceOnline || ev.Department != "police" {
		t.Fatalf("%+v", ev)
	}
	// A device deleted while announced is forgotten without an event.
	e.states.set(w, river, sip.State{State: sip.StateOffline, Since: time.Now()})
	if ev := e.next(t, 10*time.Second); ev.Event != alerts.DeviceOffline {
		t.Fatalf("%+v", ev)
	}
	e.states.set(w, river, sip.State{State: sip.StateNever})
	e.states.set(w, river, sip.State{State: sip.StateOnline, Since: time.Now()})
	e.none(t, 300*time.Millisecond)
}

func TestDeviceChecks(t *testing.T) {
	e := newEnv(t)
	w, _ := e.watcher(t, time.Minute)
	on := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	e.states.set(w, river, sip.State{State: sip.StateOnline, Since: on, Address: "10.0.0.7:5060", Transport: "tcp"})
	e.states.set(w, gate, sip.State{State: sip.StateOffline, Since: on, LastError: "3 keepalives missed"})
	e.states.m[fresh] = sip.State{State: sip.StateNever, Since: on, LastError: "wrong password (digest response does not match)"}

	m := health.New(health.Options{})
	m.AddSource(w.Checks)
	rep := m.Report(context.Background())
	got := map[string]health.Check{}
	for _, c := range rep.Checks {
		got[c.Name] = c
	}
	if rep.Status != health.Degraded || len(got) != 3 {
		t.Fatalf("report %+v", rep)
	}
	for _, tc := range []struct {
		id, dep string
		status  health.Status
		want    []string
	}{
		{river, "flood-control", health.OK, []string{"online since 2026-11-29T08:00:00Z", "10.0.0.7:5060", "tcp"}},
		{gate, "police", health.Degraded, []string{"offline since 2026-11-29T08:00:00Z: 3 keepalives missed"}},
		{fresh, "police", health.Degraded, []string{"has never registered", "wrong password"}},
	} {
		c := got[CheckPrefix+tc.id]
		if c.Status != tc.status || c.Department != tc.dep || !c.Since.Equal(on) || !strings.Contains(c.Message, tc.id) {
			t.Errorf("%s: %+v", tc.id, c)
		}
		for _, w := range tc.want {
			if !strings.Contains(c.Message, w) {
				t.Errorf("%s: %q lacks %q", tc.id, c.Message, w)
			}
		}
	}
}
