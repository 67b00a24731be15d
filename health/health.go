// Package health says whether Vigil is well, part by part, for the people who
// run it (GET /api/v1/health, contract "Health and alerts"): the database, the
// object store, the spool, every camera and sub-stream that should be online,
// and later GB/T 28181 devices and upper platforms.
//
// A Monitor holds two kinds of checks. A probe is run by the monitor itself,
// at start and then every Interval (the database ping, the object store, the
// spool's fill level), each in its own goroutine so that a store that hangs
// does not delay the others; the monitor remembers since when each probe is in
// its status and tells OnChange about every change (the alerts follow it). A
// source is asked when a report is made (the cameras: their state and since
// when come from the ingest). The parts declare nothing here: the wiring
// registers a probe or a source for each.
//
//	m := health.New(health.Options{})
//	m.AddProbe("database", func(ctx context.Context) (health.Status, string) { ... })
//	m.AddSource(cameraChecks)
//	go m.Run(ctx)
//	rep := m.Report(ctx)
package health

import (
	"context"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// Status is how well a part is.
type Status string

// The statuses, from best to worst.
const (
	OK       Status = "ok"       // working
	Degraded Status = "degraded" // working in part, or at risk (video is still kept)
	Failing  Status = "failing"  // not working
)

func (s Status) rank() int {
	switch s {
	case OK:
		return 0
	case Degraded:
		return 1
	default:
		return 2
	}
}

// Worse returns the worse of two statuses.
func Worse(a, b Status) Status {
	if b.rank() > a.rank() {
		return b
	}
	return a
}

// Check is one line of the report.
type Check struct {
	// Name identifies the check: "database", "storage", "spool",
	// "camera/police-007", "camera/police-007/sub".
	Name   string `json:"name"`
	Status Status `json:"status"`
	// Message says what is wrong in words an operator understands; for a
	// healthy check it says what was seen.
	Message string `json:"message"`
	// Since is when the check entered its current status.
	Since time.Time `json:"since"`
	// Camera and Department name the camera a camera check is about, so
	// that a user limited to departments sees only theirs.
	Camera     string `json:"camera,omitempty"`
	Department string `json:"department,omitempty"`
}

// Report is the whole answer: the worst status of all checks, and the checks.
type Report struct {
	Status Status  `json:"status"`
	Checks []Check `json:"checks"`
}

// Filter returns the report with only the checks keep accepts, its status
// recomputed from them.
func (r Report) Filter(keep func(Check) bool) Report {
	out := Report{Status: OK, Checks: []Check{}}
	for _, c := range r.Checks {
		if keep(c) {
			out.Checks = append(out.Checks, c)
			out.Status = Worse(out.Status, c.Status)
		}
	}
	return out
}

// ProbeFunc checks a part once, within ctx's deadline, and says how it is.
type ProbeFunc func(ctx context.Context) (Status, string)

// Source returns checks made when a report is asked for (they carry their
// own Since).
type Source func(ctx context.Context) []Check

// Options tune a Monitor.
type Options struct {
	// Interval between two runs of a probe. It defaults to 5 seconds.
	Interval time.Duration
	// Timeout bounds one run of a probe; a probe that overruns is degraded,
	// "no answer within …", and is not run again before it returns (a probe
	// stuck past the end of Run is left to return on its own). It defaults
	// to Interval.
	Timeout time.Duration
	// Log receives changes of status. It defaults to discarding.
	Log *slog.Logger
}

// Change is a probe's move from one status to another. Before is the zero
// Check for a probe's first result.
type Change struct {
	Before, After Check
}

// Monitor runs the probes and puts the report together.
type Monitor struct {
	opts Options

	mu       sync.Mutex
	probes   []*probe
	sources  []Source
	watchers []func(Change)
	started  time.Time
	running  bool
}

type probe struct {
	name   string
	run    ProbeFunc
	result Check // zero Status until the first run ends
}

// New returns a Monitor; it runs nothing until Run.
func New(opts Options) *Monitor {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Timeout <= 0 {
		opts.Timeout = opts.Interval
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	return &Monitor{opts: opts, started: time.Now()}
}

// AddProbe registers a probe, before Run.
func (m *Monitor) AddProbe(name string, run ProbeFunc) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.running {
		panic("health: AddProbe after Run")
	}
	m.probes = append(m.probes, &probe{name: name, run: run})
}

// AddSource registers a source of checks (cameras, GB/T 28181 devices and
// upper platforms), at any time.
func (m *Monitor) AddSource(src Source) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sources = append(m.sources, src)
}

// OnChange registers fn to be told of every change of a probe's status, from
// the probe's goroutine (fn must not block for long), before Run.
func (m *Monitor) OnChange(fn func(Change)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.watchers = append(m.watchers, fn)
}

// Run runs every probe at once and then every Interval until ctx ends.
func (m *Monitor) Run(ctx context.Context) error {
	m.mu.Lock()
	m.running = true
	probes := append([]*probe(nil), m.probes...)
	m.mu.Unlock()
	var wg sync.WaitGroup
	for _, p := range probes {
		wg.Go(func() { m.loop(ctx, p) })
	}
	wg.Wait()
	return nil
}

func (m *Monitor) loop(ctx context.Context, p *probe) {
	t := time.NewTimer(0)
	defer t.Stop()
	var stuck <-chan verdict // a run that overran its timeout and has not returned yet
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if stuck != nil {
			// one run at a time: a probe that ignores its context (a client
			// call without one) is not started again until it returns
			select {
			case <-stuck:
				stuck = nil
			case <-ctx.Done():
				return
			}
		}
		stuck = m.runOnce(ctx, p)
		t.Reset(m.opts.Interval)
	}
}

type verdict struct {
	status  Status
	message string
}

// runOnce runs the probe once and records its result. A run that overruns
// Timeout is degraded, "no answer within …"; its channel is returned, to be
// waited for before the next run.
func (m *Monitor) runOnce(ctx context.Context, p *probe) (stuck <-chan verdict) {
	cctx, cancel := context.WithTimeout(ctx, m.opts.Timeout)
	defer cancel()
	done := make(chan verdict, 1)
	go func() {
		st, msg := p.run(cctx)
		done <- verdict{st, msg}
	}()
	var st Status
	var msg string
	select {
	case v := <-done:
		st, msg = v.status, v.message
		if cctx.Err() != nil && st == OK {
			st, msg = Degraded, "no answer within "+m.opts.Timeout.String()
		}
	case <-cctx.Done():
		st, msg, stuck = Degraded, "no answer within "+m.opts.Timeout.String(), done
	}
	if ctx.Err() != nil {
		return nil // stopping: the result says nothing about the part
	}
	now := time.Now()
	m.mu.Lock()
	before := p.result
	after := Check{Name: p.name, Status: st, Message: msg, Since: before.Since}
	if before.Status != st {
		after.Since = now
	}
	p.result = after
	watchers := append([](func(Change))(nil), m.watchers...)
	m.mu.Unlock()
	if before.Status == st {
		return stuck
	}
	lvl := slog.LevelInfo
	if st != OK {
		lvl = slog.LevelWarn
	}
	if before.Status != "" || st != OK {
		m.opts.Log.Log(ctx, lvl, "health changed", "check", p.name, "status", st, "message", msg)
	}
	for _, fn := range watchers {
		fn(Change{Before: before, After: after})
	}
	return stuck
}

// Report returns every probe's last result and every source's checks, sorted
// by name, and the worst status. A probe not run yet is degraded, "not
// checked yet".
func (m *Monitor) Report(ctx context.Context) Report {
	m.mu.Lock()
	checks := make([]Check, 0, len(m.probes))
	for _, p := range m.probes {
		c := p.result
		if c.Status == "" {
			c = Check{Name: p.name, Status: Degraded, Message: "not checked yet", Since: m.started}
		}
		checks = append(checks, c)
	}
	sources := append([]Source(nil), m.sources...)
	m.mu.Unlock()
	for _, src := range sources {
		checks = append(checks, src(ctx)...)
	}
	sort.SliceStable(checks, func(i, j int) bool { return checks[i].Name < checks[j].Name })
	rep := Report{Status: OK, Checks: checks}
	for _, c := range checks {
		rep.Status = Worse(rep.Status, c.Status)
	}
	return rep
}

// Current returns a probe's last result, and whether it has run yet.
func (m *Monitor) Current(name string) (Check, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, p := range m.probes {
		if p.name == name {
			return p.result, p.result.Status != ""
		}
	}
	return Check{}, false
}
