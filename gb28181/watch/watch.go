// Package watch follows the GB/T 28181 devices an admin registered, for the
// people who run Vigil: a health check per device (GET /api/v1/health,
// "gb28181/<device id>") and the device.offline and device.online alerts.
//
// The SIP server tells every change of a device's state to OnState (its
// OnState hook); OnState only queues it, and Run sends the alerts:
// device.offline once a device has been offline for OfflineAfter without a
// break (the SIP server calls a device offline after three missed keepalives,
// or when it unregisters: a device that reboots and registers again within
// OfflineAfter raises nothing), and device.online when a device announced
// offline registers again — also when Vigil restarted in between (the
// devices announced offline are kept in the database). A device that was
// never online raises nothing: its health check says so.
//
//	w, err := watch.New(ctx, db, watch.Options{Devices: devices, States: sipServer, Alerts: notifier})
//	sipServer.OnState = w.OnState
//	monitor.AddSource(w.Checks)
//	go w.Run(ctx)
package watch

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/gb28181/device"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/health"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Devices is the device table (device.Store).
type Devices interface {
	List(ctx context.Context) ([]device.Device, error)
	Get(ctx context.Context, id string) (device.Device, error)
}

// States is the SIP server: a device's runtime state.
type States interface {
	DeviceState(id string) sip.State
}

// Publisher is the alerts notifier (alerts.Notifier).
type Publisher interface {
	Publish(ctx context.Context, e alerts.Event) error
}

// Options configure a Watcher.
type Options struct {
	// Devices lists the registered devices. Required.
	Devices Devices
	// States gives their runtime state. Required.
	States States
	// Alerts receives device.offline and device.online. Optional: without
	// it Run only waits for its context.
	Alerts Publisher
	// OfflineAfter is how long a device must be offline without a break
	// before device.offline is sent (alerts.offlineAfter). It defaults to
	// 30 seconds.
	OfflineAfter time.Duration
	// Log defaults to discarding.
	Log *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time
}

// Watcher turns device states into health checks and alerts.
type Watcher struct {
	opts Options
	db   *sqldb.DB

	mu      sync.Mutex
	queue   []change
	dropped int
	wake    chan struct{}
}

// maxQueue bounds the changes waiting for Run.
const maxQueue = 10000

type change struct {
	id string
	st sip.State
	at time.Time
}

// migrationFiles are the migrations of the table of devices announced
// offline (migrations/sqlite, migrations/postgres). SQLite file 1 is the
// step sqlitedb.Migrate ran as component "gb28181_watch" (Legacy): such
// databases are adopted.
//
//go:embed migrations
var migrationFiles embed.FS

// New opens the table of devices announced offline in db; it sends nothing
// until Run.
func New(ctx context.Context, db *sqldb.DB, opts Options) (*Watcher, error) {
	if opts.Devices == nil || opts.States == nil {
		return nil, errors.New("watch: Options.Devices and Options.States are required")
	}
	if opts.OfflineAfter <= 0 {
		opts.OfflineAfter = 30 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := db.Migrate(ctx, sqldb.Migrations{Component: "gb28181_watch", FS: migrationFiles, Dir: "migrations", Legacy: "gb28181_watch"}); err != nil {
		return nil, fmt.Errorf("device watch: %w", err)
	}
	return &Watcher{opts: opts, db: db, wake: make(chan struct{}, 1)}, nil
}

// OnState takes a change of a device's state (the sip.Server.OnState
// hook). It does not block: Run sends what follows from it.
func (w *Watcher) OnState(deviceID string, st sip.State) {
	w.mu.Lock()
	if len(w.queue) >= maxQueue {
		// Run is stuck (the database): the oldest change goes.
		w.queue = w.queue[1:]
		w.dropped++
		if w.dropped == 1 || w.dropped%1000 == 0 {
			w.opts.Log.Warn("device watch: state changes dropped, the queue is full", "dropped", w.dropped)
		}
	}
	w.queue = append(w.queue, change{id: deviceID, st: st, at: w.opts.Now()})
	w.mu.Unlock()
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// watched is what Run knows of a device.
type watched struct {
	downSince time.Time // offline since; zero while not offline
	cause     string    // the SIP server's last error of an offline device
	announced bool      // device.offline was sent
}

// Run sends device.offline and device.online until ctx ends.
func (w *Watcher) Run(ctx context.Context) error {
	if w.opts.Alerts == nil {
		<-ctx.Done()
		return nil
	}
	state := map[string]*watched{}
	rows, err := w.announced(ctx)
	if err != nil {
		w.opts.Log.Warn("device watch: the devices announced offline before the restart are unknown", "error", err)
	}
	for id, since := range rows {
		state[id] = &watched{downSince: since, announced: true}
	}
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		w.mu.Lock()
		queue := w.queue
		w.queue = nil
		w.mu.Unlock()
		for _, c := range queue {
			w.apply(ctx, state, c)
		}
		next := w.due(ctx, state)
		timer.Reset(next)
		select {
		case <-ctx.Done():
			return nil
		case <-w.wake:
		case <-timer.C:
		}
	}
}

// apply follows one change of a device's state.
func (w *Watcher) apply(ctx context.Context, state map[string]*watched, c change) {
	ws := state[c.id]
	switch c.st.State {
	case sip.StateOffline:
		if ws == nil {
			ws = &watched{}
			state[c.id] = ws
		}
		if ws.downSince.IsZero() {
			ws.downSince = c.st.Since
			if ws.downSince.IsZero() || ws.downSince.After(c.at) {
				ws.downSince = c.at
			}
		}
		ws.cause = c.st.LastError
	case sip.StateOnline:
		if ws == nil {
			return
		}
		if ws.announced {
			d, err := w.opts.Devices.Get(ctx, c.id)
			if err == nil {
				since := c.st.Since
				if since.IsZero() {
					since = c.at
				}
				w.publish(ctx, alerts.Event{Event: alerts.DeviceOnline, Time: since.UTC(), Department: d.Department,
					Message: fmt.Sprintf("GB/T 28181 device %s (%s) is online again after %s offline, from %s",
						d.ID, d.Name, since.Sub(ws.downSince).Round(time.Second), c.st.Address)})
			}
			w.setAnnounced(ctx, c.id, time.Time{})
		}
		delete(state, c.id)
	default: // never: the device was deleted (forgotten) or not seen yet
		if ws != nil && ws.announced {
			w.setAnnounced(ctx, c.id, time.Time{})
		}
		delete(state, c.id)
	}
}

// due announces the devices offline for OfflineAfter, and returns how long
// until the next one may be due.
func (w *Watcher) due(ctx context.Context, state map[string]*watched) time.Duration {
	now := w.opts.Now()
	next := time.Hour
	for id, ws := range state {
		if ws.announced || ws.downSince.IsZero() {
			continue
		}
		left := w.opts.OfflineAfter - now.Sub(ws.downSince)
		if left > 0 {
			next = min(next, left)
			continue
		}
		d, err := w.opts.Devices.Get(ctx, id)
		if err != nil {
			// deleted meanwhile: nobody to tell
			delete(state, id)
			continue
		}
		msg := fmt.Sprintf("GB/T 28181 device %s (%s) has been offline since %s", d.ID, d.Name, ws.downSince.UTC().Format(time.RFC3339))
		if ws.cause != "" {
			msg += ": " + ws.cause
		}
		w.publish(ctx, alerts.Event{Event: alerts.DeviceOffline, Department: d.Department, Message: msg})
		ws.announced = true
		w.setAnnounced(ctx, id, ws.downSince)
	}
	return max(next, time.Millisecond)
}

func (w *Watcher) publish(ctx context.Context, e alerts.Event) {
	if err := w.opts.Alerts.Publish(ctx, e); err != nil && ctx.Err() == nil {
		w.opts.Log.Error("alert event lost: the queue cannot be written", "event", e.Event, "error", err)
	}
}

// announced returns the devices announced offline, kept across restarts.
func (w *Watcher) announced(ctx context.Context) (map[string]time.Time, error) {
	type row struct {
		id    string
		since time.Time
	}
	rows, err := sqldb.QueryList(ctx, w.db, "device watch: devices announced offline", func(r *sql.Rows, v *row) error {
		var ms int64
		if err := r.Scan(&v.id, &ms); err != nil {
			return err
		}
		v.since = time.UnixMilli(ms)
		return nil
	}, `SELECT device, down_since FROM gb28181_device_offline`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]time.Time, len(rows))
	for _, r := range rows {
		out[r.id] = r.since
	}
	return out, nil
}

// setAnnounced records that device.offline was sent for a device (since
// not zero) or that it is no longer due a device.online (zero). The alert
// has gone to the queue already: the record is written even when ctx ends
// meanwhile (Run stopping), or a device.online would be lost or sent twice
// after the restart.
func (w *Watcher) setAnnounced(ctx context.Context, id string, since time.Time) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	var err error
	if since.IsZero() {
		_, err = w.db.Exec(ctx, `DELETE FROM gb28181_device_offline WHERE device = ?`, id)
	} else {
		_, err = w.db.Exec(ctx, `INSERT INTO gb28181_device_offline(device, down_since) VALUES(?, ?)
			ON CONFLICT(device) DO UPDATE SET down_since = excluded.down_since`, id, since.UnixMilli())
	}
	if err != nil {
		w.opts.Log.Warn("device watch: the offline device cannot be recorded", "device", id, "error", err)
	}
}

// CheckPrefix begins the name of a device's health check.
const CheckPrefix = "gb28181/"

// Checks is a health.Source: a check per registered device, ok while it is
// registered, degraded while it is offline or has never registered, with
// since when and why. Department is the device's, so that a user limited to
// departments sees only their devices.
func (w *Watcher) Checks(ctx context.Context) []health.Check {
	ds, err := w.opts.Devices.List(ctx)
	if err != nil {
		return []health.Check{{Name: "gb28181", Status: health.Failing, Message: "the GB/T 28181 device list cannot be read: " + err.Error()}}
	}
	out := make([]health.Check, 0, len(ds))
	for _, d := range ds {
		out = append(out, deviceCheck(d, w.opts.States.DeviceState(d.ID)))
	}
	return out
}

func deviceCheck(d device.Device, st sip.State) health.Check {
	c := health.Check{Name: CheckPrefix + d.ID, Department: d.Department, Since: st.Since, Status: health.Degraded}
	label := fmt.Sprintf("GB/T 28181 device %s (%s)", d.ID, d.Name)
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch st.State {
	case sip.StateOnline:
		c.Status = health.OK
		c.Message = fmt.Sprintf("%s online since %s, from %s over %s", label, at(st.Since), st.Address, st.Transport)
	case sip.StateOffline:
		c.Message = fmt.Sprintf("%s offline since %s", label, at(st.Since))
	default:
		if c.Since.IsZero() {
			c.Since = d.Created
		}
		c.Message = fmt.Sprintf("%s has never registered (added %s)", label, at(d.Created))
	}
	if st.State != sip.StateOnline && st.LastError != "" {
		c.Message += ": " + st.LastError
	}
	return c
}
