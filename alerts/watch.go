package alerts

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/health"
	"github.com/vigil-vms/vigil/ingest"
)

// CameraStatuses is the dispatcher: a camera's status as the API shows it.
type CameraStatuses interface {
	Status(ingest.Camera) dispatch.Status
}

// CameraWatchOptions configure WatchCameras.
type CameraWatchOptions struct {
	// Cameras lists the registered cameras (registry.Registry.Cameras).
	Cameras func(ctx context.Context) ([]ingest.Camera, error)
	// Statuses gives their status (the dispatcher).
	Statuses CameraStatuses
	// OfflineAfter is how long an enabled camera must be continuously not
	// online (offline, or reconnecting) before camera.offline is sent, so
	// that a camera that blinks is no alert. It defaults to 30 seconds.
	OfflineAfter time.Duration
	// Every is how often the states are sampled. It defaults to 1 second.
	Every time.Duration
}

// WatchCameras sends camera.offline for every enabled camera whose main
// stream has not been online for OfflineAfter, and camera.online when a
// camera announced offline is online again, until ctx ends. A camera that is
// disabled or deleted is forgotten without an event. Without webhooks it
// only waits for ctx.
func (n *Notifier) WatchCameras(ctx context.Context, o CameraWatchOptions) error {
	if len(n.hooks) == 0 {
		<-ctx.Done()
		return nil
	}
	if o.OfflineAfter <= 0 {
		o.OfflineAfter = 30 * time.Second
	}
	if o.Every <= 0 {
		o.Every = time.Second
	}
	type watched struct {
		downSince time.Time // when the camera stopped being online; zero while online
		alerted   bool      // camera.offline was sent
		lastState ingest.State
		lastSince time.Time
	}
	var state map[string]*watched // nil: not watching (another node is)
	t := time.NewTicker(o.Every)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
		}
		if n.opts.RunsHere != nil && !n.opts.RunsHere() {
			state = nil // another node watches; what it announced is in the database
			continue
		}
		if state == nil {
			// cameras announced offline before a restart, or by the node
			// that watched before: their camera.online is due
			state = map[string]*watched{}
			rows, err := n.offlineCameras(ctx)
			if err != nil {
				n.opts.Log.Warn("camera watch: cameras announced offline before the restart are unknown", "error", err)
			}
			for id, since := range rows {
				state[id] = &watched{downSince: since, alerted: true}
			}
		}
		if first {
			continue // the first sample one tick after the start, as before
		}
		cams, err := o.Cameras(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			n.opts.Log.Warn("camera watch: the camera list cannot be read", "error", err)
			continue
		}
		now := time.Now()
		seen := make(map[string]bool, len(cams))
		for _, cam := range cams {
			if !cam.Enabled {
				continue
			}
			seen[cam.ID] = true
			w := state[cam.ID]
			if w == nil {
				w = &watched{}
				state[cam.ID] = w
			}
			st := o.Statuses.Status(cam)
			// The ingest keeps a camera offline, with the same since, while it
			// retries: a since that moved between two offline samples means
			// it was online in between, unseen.
			var offlineSince time.Time
			if w.lastState == ingest.StateOffline {
				offlineSince = w.lastSince
			}
			w.lastState, w.lastSince = st.State, st.Since
			back := func() {
				if w.alerted {
					n.publish(ctx, Event{Event: CameraOnline, Camera: cam.ID, Department: cam.Department,
						Message: fmt.Sprintf("camera %s (%s) is online again after %s offline",
							cam.ID, cam.Name, now.Sub(w.downSince).Round(time.Second))})
					n.setOffline(ctx, cam.ID, time.Time{})
				}
				w.downSince, w.alerted = time.Time{}, false
			}
			if st.State == ingest.StateOnline || st.State == ingest.StateIdle { // idle: a pushed camera nothing needs
				back()
				continue
			}
			if st.State == ingest.StateOffline && !offlineSince.IsZero() && st.Since.After(offlineSince) {
				back()
			}
			// Not online since the ingest's last change of state (a failed
			// first attempt counts from its failure); without a since, from
			// the first sample. Once announced, the outage keeps its start.
			down := st.Since
			if down.IsZero() || down.After(now) {
				down = now
			}
			if w.downSince.IsZero() || (!w.alerted && !st.Since.IsZero()) {
				w.downSince = down
			}
			if !w.alerted && now.Sub(w.downSince) >= o.OfflineAfter {
				w.alerted = true
				msg := fmt.Sprintf("camera %s (%s) has been offline since %s", cam.ID, cam.Name,
					w.downSince.UTC().Format(time.RFC3339))
				if st.LastError != "" {
					msg += ": " + ingest.RedactURL(st.LastError)
				}
				n.publish(ctx, Event{Event: CameraOffline, Camera: cam.ID, Department: cam.Department, Message: msg})
				n.setOffline(ctx, cam.ID, w.downSince)
			}
		}
		for id, w := range state {
			if !seen[id] {
				if w.alerted {
					n.setOffline(ctx, id, time.Time{})
				}
				delete(state, id)
			}
		}
	}
}

// offlineCameras returns the cameras announced offline (camera.offline sent,
// camera.online not yet), kept across restarts.
func (n *Notifier) offlineCameras(ctx context.Context) (map[string]time.Time, error) {
	rows, err := n.db.Query(ctx, `SELECT camera, down_since FROM alert_offline`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var id string
		var ms int64
		if err := rows.Scan(&id, &ms); err != nil {
			return nil, err
		}
		out[id] = time.UnixMilli(ms)
	}
	return out, rows.Err()
}

// setOffline records that camera.offline was sent for a camera (since
// not zero) or that it is no longer due a camera.online (zero).
func (n *Notifier) setOffline(ctx context.Context, camera string, since time.Time) {
	var err error
	if since.IsZero() {
		_, err = n.db.Exec(ctx, `DELETE FROM alert_offline WHERE camera = ?`, camera)
	} else {
		_, err = n.db.Exec(ctx, `INSERT INTO alert_offline(camera, down_since) VALUES(?, ?)
			ON CONFLICT(camera) DO UPDATE SET down_since = excluded.down_since`, camera, since.UnixMilli())
	}
	if err != nil && ctx.Err() == nil {
		n.opts.Log.Warn("camera watch: the offline camera cannot be recorded", "camera", camera, "error", err)
	}
}

func (n *Notifier) publish(ctx context.Context, e Event) {
	if err := n.Publish(ctx, e); err != nil && ctx.Err() == nil {
		n.opts.Log.Error("alert event lost: the queue cannot be written", "event", e.Event, "camera", e.Camera, "error", err)
	}
}

// Health names the health checks that raise events.
const (
	HealthStorage = "storage"
	HealthSpool   = "spool"
)

// FollowHealth turns changes of the health checks into events:
// storage.failing when the object store check leaves ok (or starts out
// failing) and storage.recovered when it returns to ok; spool.high when the
// spool check leaves ok. Pass it to health.Monitor.OnChange. In a cluster
// the message begins with the node's name (Options.Node): every node checks
// the shared store and its own spool.
func (n *Notifier) FollowHealth(ctx context.Context) func(health.Change) {
	return func(c health.Change) {
		wasOK := c.Before.Status == "" || c.Before.Status == health.OK
		isOK := c.After.Status == health.OK
		var event string
		switch c.After.Name {
		case HealthStorage:
			switch {
			case wasOK && !isOK:
				event = StorageFailing
			case !wasOK && isOK:
				event = StorageRecovered
			}
		case HealthSpool:
			if wasOK && !isOK {
				event = SpoolHigh
			}
		}
		if event == "" {
			return
		}
		e := Event{Event: event, Time: c.After.Since.UTC(), Message: c.After.Message}
		if n.opts.Node != "" {
			e.Message = "node " + n.opts.Node + ": " + e.Message
		}
		if c.After.Status == health.Failing && event != StorageRecovered {
			e.Severity = Critical
		}
		n.publish(ctx, e)
	}
}
