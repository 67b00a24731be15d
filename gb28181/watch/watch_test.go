package watch

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/gb28181/device"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/health"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/sqlitedb"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

const (
	river = "44011300001320000001"
	gate  = "44011300001320000002"
	fresh = "44011300001320000003"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

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
	db      *sqldb.DB
	devices *device.Store
	states  *states
	alerts  published
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	db := testdb.OpenDB(t)
	// the registry's departments table, as far as the devices' foreign key
	// needs it
	if _, err := db.Exec(ctx, `CREATE TABLE departments (id TEXT NOT NULL PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(ctx, `INSERT INTO departments(id) VALUES('flood-control'), ('police')`); err != nil {
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
	return &env{db: db, devices: devs, states: &states{m: map[string]sip.State{}}, alerts: make(published, 16)}
}

// published is a Publisher that keeps what it is given, in order (the
// alerts notifier's queue and webhooks are package alerts' to test).
type published chan alerts.Event

func (p published) Publish(_ context.Context, e alerts.Event) error {
	p <- e
	return nil
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
	case ev := <-e.alerts:
		return ev
	case <-time.After(within):
		t.Fatalf("no alert within %s", within)
		return alerts.Event{}
	}
}

func (e *env) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev := <-e.alerts:
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
	if ev.Event != alerts.DeviceOffline || ev.Department != "flood-control" || ev.Camera != "" || ev.Severity != "" /* the notifier's default, warning */ ||
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

// An SQLite database that sqlitedb.Migrate made (component
// "gb28181_watch", version 1) is adopted: a device announced offline
// before the upgrade gets its device.online after it.
func TestLegacyAnnouncedAdopted(t *testing.T) {
	e := newEnv(t)
	if e.db.Dialect != sqldb.SQLite {
		t.Skip("a legacy database is an SQLite file")
	}
	ctx := context.Background()
	step, err := migrationFiles.ReadFile("migrations/sqlite/00001_device_offline.sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitedb.Migrate(ctx, e.db.DB, "gb28181_watch", []string{string(step)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.Exec(ctx, `INSERT INTO gb28181_device_offline(device, down_since) VALUES(?, ?)`, gate, time.Now().Add(-time.Hour).UnixMilli()); err != nil {
		t.Fatal(err)
	}
	w, _ := e.watcher(t, 50*time.Millisecond)
	e.states.set(w, gate, sip.State{State: sip.StateOnline, Since: time.Now()})
	if ev := e.next(t, 10*time.Second); ev.Event != alerts.DeviceOnline || !strings.Contains(ev.Message, "after 1h0m0s offline") {
		t.Fatalf("%+v", ev)
	}
}
