package health

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// A probe's since changes with its status only; every change is told once;
// the report's status is the worst check's.
func TestMonitorProbes(t *testing.T) {
	var status atomic.Value
	status.Store(OK)
	m := New(Options{Interval: 20 * time.Millisecond})
	var storeRuns atomic.Int32
	m.AddProbe("store", func(context.Context) (Status, string) { storeRuns.Add(1); return status.Load().(Status), "msg" })
	m.AddProbe("slow", func(ctx context.Context) (Status, string) { <-ctx.Done(); return OK, "late" })
	// a probe that ignores its context: reported all the same, never run twice at once
	release := make(chan struct{})
	var hungRuns, hungRunning atomic.Int32
	m.AddProbe("hung", func(context.Context) (Status, string) {
		if hungRunning.Add(1) > 1 {
			t.Error("a hung probe was started again before it returned")
		}
		hungRuns.Add(1)
		<-release
		hungRunning.Add(-1)
		return OK, "finally"
	})
	var mu sync.Mutex
	var changes []Change
	m.OnChange(func(c Change) {
		mu.Lock()
		changes = append(changes, c)
		mu.Unlock()
	})
	if rep := m.Report(context.Background()); rep.Status != Degraded || rep.Checks[0].Message != "not checked yet" {
		t.Fatalf("before Run: %+v", rep)
	}
	stop := testkit.Run(t, m.Run)
	defer stop()
	testkit.WaitFor(t, 2*time.Second, "first results", func() bool {
		_, ok1 := m.Current("store")
		_, ok2 := m.Current("slow")
		_, ok3 := m.Current("hung")
		return ok1 && ok2 && ok3
	})
	if hung, _ := m.Current("hung"); hung.Status != Degraded || !strings.Contains(hung.Message, "no answer within") {
		t.Fatalf("a hung probe: %+v", hung)
	}
	first, _ := m.Current("store")
	runs := storeRuns.Load()
	testkit.WaitFor(t, 2*time.Second, "more runs, same status", func() bool { return storeRuns.Load() >= runs+3 })
	if again, _ := m.Current("store"); !again.Since.Equal(first.Since) {
		t.Fatalf("since moved without a change: %v → %v", first.Since, again.Since)
	}
	if slow, _ := m.Current("slow"); slow.Status != Degraded || !strings.Contains(slow.Message, "no answer within") {
		t.Fatalf("a probe that overruns: %+v", slow)
	}
	status.Store(Degraded)
	testkit.WaitFor(t, 2*time.Second, "degraded", func() bool { c, _ := m.Current("store"); return c.Status == Degraded })
	if c, _ := m.Current("store"); !c.Since.After(first.Since) {
		t.Fatalf("since did not move with the status: %+v", c)
	}
	rep := m.Report(context.Background())
	if rep.Status != Degraded || len(rep.Checks) != 3 || rep.Checks[0].Name != "hung" {
		t.Fatalf("report %+v", rep)
	}
	if n := hungRuns.Load(); n != 1 {
		t.Errorf("the hung probe ran %d times", n)
	}
	close(release)
	testkit.WaitFor(t, 2*time.Second, "the hung probe runs again", func() bool { return hungRuns.Load() >= 2 })
	stop()
	mu.Lock()
	defer mu.Unlock()
	var store []Change
	for _, c := range changes {
		if c.After.Name == "store" {
			store = append(store, c)
		}
	}
	if len(store) != 2 || store[0].Before.Status != "" || store[0].After.Status != OK ||
		store[1].Before.Status != OK || store[1].After.Status != Degraded {
		t.Fatalf("changes %+v", store)
	}
}

func TestSpool(t *testing.T) {
	dir := t.TempDir()
	var used int64
	p := Spool(SpoolOptions{Dir: dir, MaxBytes: 1 << 20, Used: func() int64 { return used }})
	for _, tc := range []struct {
		used int64
		want Status
		says string
	}{
		{0, OK, "free on its disk"},
		{950 << 10, Degraded, "does not keep up"},
		{1 << 20, Failing, "full"},
	} {
		used = tc.used
		st, msg := p(context.Background())
		if st != tc.want || !strings.Contains(msg, tc.says) {
			t.Errorf("used %d: %s %q, want %s saying %q", tc.used, st, msg, tc.want, tc.says)
		}
	}
	// a spool that may grow past the free space of its disk is at risk
	huge := Spool(SpoolOptions{Dir: dir, MaxBytes: 1 << 60, Used: func() int64 { return 0 }})
	if st, msg := huge(context.Background()); st != Degraded || !strings.Contains(msg, "less than the spool may still take") {
		t.Errorf("huge spool: %s %q", st, msg)
	}
}

type errStore struct{ err error }

func (s errStore) Check(context.Context) error { return s.err }

func TestStoreAndDatabase(t *testing.T) {
	if st, msg := Store(errStore{errors.New("bad credentials: …")}, "the bucket")(context.Background()); st != Degraded || !strings.HasPrefix(msg, "bad credentials") {
		t.Errorf("failing store: %s %q", st, msg)
	}
	if st, msg := Store(errStore{}, "the bucket")(context.Background()); st != OK || !strings.Contains(msg, "the bucket") {
		t.Errorf("working store: %s %q", st, msg)
	}
	if st, _ := Database(pinger{errors.New("closed")})(context.Background()); st != Failing {
		t.Errorf("database down: %s", st)
	}
}

type pinger struct{ err error }

func (p pinger) PingContext(context.Context) error { return p.err }

type statuses map[string]dispatch.Status

func (s statuses) Status(c ingest.Camera) dispatch.Status { return s[c.ID] }

func TestCameras(t *testing.T) {
	since := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	on := ingest.StreamStatus{State: ingest.StateOnline, Since: since}
	off := ingest.StreamStatus{State: ingest.StateOffline, Since: since, LastError: "rtsp://u:pw@10.0.0.1/x: 404 Not Found"}
	cams := []ingest.Camera{
		{ID: "a", Name: "A", Department: "police", Enabled: true, SubURL: "rtsp://x/sub"},
		{ID: "b", Name: "B", Department: "flood-control", Enabled: true},
		{ID: "c", Name: "C", Department: "police", Enabled: false},
	}
	st := statuses{
		"a": {Status: ingest.Status{StreamStatus: on, Sub: &off}},
		"b": {Status: ingest.Status{StreamStatus: off}},
	}
	src := Cameras(func(context.Context) ([]ingest.Camera, error) { return cams, nil }, st)
	checks := src(context.Background())
	if len(checks) != 3 {
		t.Fatalf("checks %+v (a disabled camera has none)", checks)
	}
	want := map[string]Status{"camera/a": OK, "camera/a/sub": Degraded, "camera/b": Degraded}
	for _, c := range checks {
		if want[c.Name] != c.Status || !c.Since.Equal(since) || c.Camera == "" {
			t.Errorf("check %+v", c)
		}
		if c.Status != OK && (!strings.Contains(c.Message, "404") || strings.Contains(c.Message, "pw")) {
			t.Errorf("message %q: the cause without the password", c.Message)
		}
	}
	rep := Report{Checks: checks}.Filter(func(c Check) bool { return c.Department == "police" })
	if len(rep.Checks) != 2 || rep.Status != Degraded {
		t.Fatalf("filtered %+v", rep)
	}
}

func TestSize(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 10 << 30: "10.0 GiB"} {
		if got := Size(n); got != want {
			t.Errorf("Size(%d) = %s, want %s", n, got, want)
		}
	}
}

// A pushed camera that nothing needs is idle: healthy, whatever its last error.
func TestIdleCamera(t *testing.T) {
	cams := []ingest.Camera{{ID: "gb-1", Name: "Gate", Enabled: true, Source: ingest.SourceGB28181}}
	st := statuses{"gb-1": {Status: ingest.Status{StreamStatus: ingest.StreamStatus{State: ingest.StateIdle, LastError: "no answer"}}}}
	checks := Cameras(func(context.Context) ([]ingest.Camera, error) { return cams, nil }, st)(context.Background())
	if len(checks) != 1 || checks[0].Status != OK || checks[0].Message != "camera gb-1 (Gate) idle (played when needed)" {
		t.Fatalf("checks %+v", checks)
	}
	// a sub-stream pulled on demand, nobody watching: healthy too
	cams = []ingest.Camera{{ID: "c1", Name: "Gate", Enabled: true, SubURL: "rtsp://x/sub"}}
	sub := ingest.StreamStatus{State: ingest.StateIdle}
	st = statuses{"c1": {Status: ingest.Status{StreamStatus: ingest.StreamStatus{State: ingest.StateOnline}, Sub: &sub}}}
	checks = Cameras(func(context.Context) ([]ingest.Camera, error) { return cams, nil }, st)(context.Background())
	if len(checks) != 2 || checks[1].Status != OK || checks[1].Message != "camera c1 (Gate) sub-stream idle (pulled while watched)" {
		t.Fatalf("checks %+v", checks)
	}
}
