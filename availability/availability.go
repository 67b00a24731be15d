// Package availability measures how much of the time each camera was online
// and recorded, for the availability report.
//
// A sampler looks at every camera's state at a fixed interval and adds the
// interval to per-minute buckets in the database: observed time (Vigil was
// running and the camera was registered and enabled) and online time. The
// report divides online time by observed time, so a camera added an hour ago
// is not blamed for the days before it existed, and a period when Vigil itself
// was down counts for nobody. Recorded time comes from the recordings index.
package availability

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/recorder/archive"
)

//go:embed migrations
var migrationFiles embed.FS

// migrations are the tracker's tables. Legacy "availability": the steps
// sqlitedb.Migrate ran before goose are the SQLite files 00001 and 00002.
var migrations = sqldb.Migrations{Component: "availability", FS: migrationFiles, Dir: "migrations", Legacy: "availability"}

// Options configure a Tracker.
type Options struct {
	// Statuses returns every camera's current status.
	Statuses func() []ingest.Status
	// Index gives recorded time.
	Index *archive.Index
	// Spooled, when set, adds the recordings still on local disk (the open
	// segment, segments waiting for upload) to the recorded time.
	Spooled func(camera string, start, end time.Time) []archive.Segment
	// Interval between samples. It defaults to 5 seconds.
	Interval time.Duration
	Log      *slog.Logger
	// RunsHere, when set, tells at each sample whether this node samples
	// for the cluster: the samples add time to shared per-minute buckets,
	// so exactly one node of a cluster may take them (the cluster runtime
	// passes Cluster.Once). nil: always (a single node).
	RunsHere func() bool
}

// Tracker samples camera states and answers availability reports.
type Tracker struct {
	db   *sqldb.DB
	opts Options
}

// New migrates the tracker's table and returns it; nothing runs until Run.
func New(ctx context.Context, db *sqldb.DB, opts Options) (*Tracker, error) {
	if opts.Interval <= 0 {
		opts.Interval = 5 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if err := db.Migrate(ctx, migrations); err != nil {
		return nil, err
	}
	if opts.RunsHere == nil {
		// a single node: nothing sampled while it was down
		if err := closeOpenPeriods(ctx, db); err != nil {
			return nil, err
		}
	}
	return &Tracker{db: db, opts: opts}, nil
}

// Run samples until ctx ends.
func (t *Tracker) Run(ctx context.Context) error {
	tick := time.NewTicker(t.opts.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case now := <-tick.C:
			if t.opts.RunsHere != nil && !t.opts.RunsHere() {
				continue // another node samples
			}
			if err := t.Sample(context.WithoutCancel(ctx), now); err != nil {
				t.opts.Log.Warn("availability sample failed", "err", err)
			}
		}
	}
}

// Sample adds one interval of observation at now.
func (t *Tracker) Sample(ctx context.Context, now time.Time) error {
	sts := t.opts.Statuses()
	if len(sts) == 0 {
		// no camera left: none is offline any more
		if _, err := t.db.Exec(ctx, `UPDATE offline SET end_ms = ? WHERE end_ms IS NULL`, now.UnixMilli()); err != nil {
			return fmt.Errorf("availability: %w", err)
		}
		return nil
	}
	minute := now.Unix() / 60 * 60
	step := t.opts.Interval.Milliseconds()
	tx, err := t.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("availability: %w", err)
	}
	defer tx.Rollback()
	if t.opts.RunsHere != nil {
		// In a cluster the sampler moves between nodes, and a node starting
		// does not know whether another samples: a period that no sample
		// has seen for three intervals was left open by a sampler that
		// stopped, and ends where it was last seen (as closeOpenPeriods
		// ends them at a single node's start).
		if _, err := tx.Exec(ctx, `UPDATE offline SET end_ms = seen_ms WHERE end_ms IS NULL AND seen_ms < ?`,
			now.Add(-3*t.opts.Interval).UnixMilli()); err != nil {
			return fmt.Errorf("availability: %w", err)
		}
	}
	for _, st := range sts {
		if st.State == "disabled" || st.State == ingest.StateIdle {
			continue // idle: a pushed camera nothing needs, not played, so not observed
		}
		online := int64(0)
		if st.State == "online" {
			online = step
		}
		if _, err := tx.Exec(ctx, `INSERT INTO uptime(camera, minute, observed_ms, online_ms) VALUES(?, ?, ?, ?)
			ON CONFLICT(camera, minute) DO UPDATE SET observed_ms = uptime.observed_ms + excluded.observed_ms,
				online_ms = uptime.online_ms + excluded.online_ms`, st.ID, minute, step, online); err != nil {
			return fmt.Errorf("availability: %w", err)
		}
	}
	if err := t.sampleOffline(ctx, tx, sts, now); err != nil {
		return fmt.Errorf("availability: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("availability: %w", err)
	}
	return nil
}

// Report is the availability of every camera and department over a period.
//
// Online and recorded percentages are 0-100 of the time the camera was
// observed in the period; ObservedPercent says how much of the period that
// was. A stretch before Vigil ran, while it was down, or while the camera was
// not registered or was disabled, is no data: it counts neither as online nor
// as offline, and a camera never observed in the period has null percentages
// (no data), not 100 % and not 0 %.
type Report struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
	// PeriodS is the length of the period in seconds.
	PeriodS     float64        `json:"periodSeconds"`
	Departments []DepartmentAv `json:"departments"`
	Cameras     []CameraAv     `json:"cameras"`
}

// DepartmentAv is a department's availability: its cameras' time added up.
type DepartmentAv struct {
	ID      string `json:"id"`
	Cameras int    `json:"cameras"`
	// ObservedS is the observed time of all its cameras added up.
	ObservedS float64 `json:"observedSeconds"`
	// ObservedPercent is ObservedS of the period times the number of cameras.
	ObservedPercent float64 `json:"observedPercent"`
	// Online is null when none of the department's cameras was observed.
	Online *float64 `json:"online"`
	// Recorded is null when none of the department's cameras is set to record,
	// or none of those was observed.
	Recorded *float64 `json:"recorded"`
}

// NoData reports whether none of the department's cameras was observed in the period.
func (d DepartmentAv) NoData() bool { return d.ObservedS <= 0 }

// CameraAv is one camera's availability.
type CameraAv struct {
	ID              string  `json:"id"`
	Name            string  `json:"name"`
	Department      string  `json:"department"`
	ObservedS       float64 `json:"observedSeconds"`
	ObservedPercent float64 `json:"observedPercent"`
	// Online is null when the camera was not observed in the period.
	Online *float64 `json:"online"`
	// Record says whether the camera is set to record.
	Record bool `json:"record"`
	// Recorded is null for a camera that is not set to record, or that was
	// not observed in the period.
	Recorded *float64 `json:"recorded"`
}

// NoData reports whether the camera was not observed in the period.
func (c CameraAv) NoData() bool { return c.ObservedS <= 0 }

// Only returns the part of the report about the departments for which
// inScope is true: their rows and their cameras' rows (what a user limited to
// some departments may see).
func (r Report) Only(inScope func(department string) bool) Report {
	out := Report{From: r.From, To: r.To, PeriodS: r.PeriodS, Departments: []DepartmentAv{}, Cameras: []CameraAv{}}
	for _, d := range r.Departments {
		if d.ID != "" && inScope(d.ID) {
			out.Departments = append(out.Departments, d)
		}
	}
	for _, c := range r.Cameras {
		if c.Department != "" && inScope(c.Department) {
			out.Cameras = append(out.Cameras, c)
		}
	}
	return out
}

// Report computes the availability of cams over [from, to).
func (t *Tracker) Report(ctx context.Context, cams []ingest.Camera, from, to time.Time) (Report, error) {
	period := to.Sub(from).Seconds()
	rep := Report{From: from.UTC(), To: to.UTC(), PeriodS: period, Departments: []DepartmentAv{}, Cameras: []CameraAv{}}
	type acc struct{ observed, online, recordObserved, recorded float64 }
	depts := map[string]*acc{}
	deptCams := map[string]int{}
	for _, c := range cams {
		var observedMS, onlineMS sql.NullInt64
		var first, last sql.NullInt64
		// a camera counts from its creation: the minutes (and recordings)
		// of a deleted camera that had its id are not its own
		from := from
		if c.Since.After(from) {
			from = c.Since.Truncate(time.Minute)
		}
		err := t.db.QueryRow(ctx, `SELECT SUM(observed_ms), SUM(online_ms), MIN(minute), MAX(minute) FROM uptime
			WHERE camera = ? AND minute >= ? AND minute < ?`,
			c.ID, from.Unix()/60*60, to.Unix()).Scan(&observedMS, &onlineMS, &first, &last)
		if err != nil {
			return rep, fmt.Errorf("availability of %s: %w", c.ID, err)
		}
		ca := CameraAv{ID: c.ID, Name: c.Name, Department: c.Department, Record: c.Record}
		observed := float64(observedMS.Int64) / 1000
		var recorded float64
		if first.Valid {
			// recorded time inside the observed stretch of the period
			start := time.Unix(first.Int64, 0)
			if start.Before(from) {
				start = from
			}
			end := time.Unix(last.Int64+60, 0)
			if end.After(to) {
				end = to
			}
			segs, err := t.opts.Index.Segments(ctx, c.ID, start, end, false)
			if err != nil {
				return rep, err
			}
			if t.opts.Spooled != nil {
				indexed := map[string]bool{}
				for _, s := range segs {
					indexed[s.Key] = true
				}
				for _, s := range t.opts.Spooled(c.ID, start, end) {
					if !indexed[s.Key] { // uploaded but its spool file not yet removed: counted once
						segs = append(segs, s)
					}
				}
			}
			for _, s := range segs {
				a, b := s.Start, s.End
				if a.Before(start) {
					a = start
				}
				if b.After(end) {
					b = end
				}
				if b.After(a) {
					recorded += b.Sub(a).Seconds()
				}
			}
		}
		if observed > period {
			// the first and last minute's buckets reach outside the period
			observed = period
		}
		if recorded > observed {
			recorded = observed
		}
		online := min(float64(onlineMS.Int64)/1000, observed)
		ca.ObservedS = observed
		ca.ObservedPercent = share(observed, period)
		if observed > 0 {
			ca.Online = pct(online, observed)
			if c.Record {
				ca.Recorded = pct(recorded, observed)
			}
		}
		rep.Cameras = append(rep.Cameras, ca)
		d := depts[c.Department]
		if d == nil {
			d = &acc{}
			depts[c.Department] = d
		}
		d.observed += observed
		d.online += online
		if c.Record {
			d.recordObserved += observed
			d.recorded += recorded
		}
		deptCams[c.Department]++
	}
	for id, d := range depts {
		da := DepartmentAv{ID: id, Cameras: deptCams[id], ObservedS: d.observed,
			ObservedPercent: share(d.observed, period*float64(deptCams[id]))}
		if d.observed > 0 {
			da.Online = pct(d.online, d.observed)
		}
		if d.recordObserved > 0 {
			da.Recorded = pct(d.recorded, d.recordObserved)
		}
		rep.Departments = append(rep.Departments, da)
	}
	sort.Slice(rep.Departments, func(i, j int) bool { return rep.Departments[i].ID < rep.Departments[j].ID })
	sort.Slice(rep.Cameras, func(i, j int) bool { return rep.Cameras[i].ID < rep.Cameras[j].ID })
	return rep, nil
}

// pct is part of whole in percent, rounded to one decimal.
func pct(part, whole float64) *float64 {
	p := share(part, whole)
	return &p
}

// share is part of whole in percent (0-100), rounded to one decimal.
func share(part, whole float64) float64 {
	if whole <= 0 || part <= 0 {
		return 0
	}
	return math.Round(min(part/whole*100, 100)*10) / 10
}
