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
		downSince time.Time // zero while online
		alerted   bool      // camera.offline was sent
	}
	state := map[string]*watched{}
	t := time.NewTicker(o.Every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
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
			online := func() {
				n.publish(ctx, Event{Event: CameraOnline, Camera: cam.ID, Department: cam.Department,
					Message: fmt.Sprintf("camera %s (%s) is online again after %s offline",
						cam.ID, cam.Name, now.Sub(w.downSince).Round(time.Second))})
			}
			if st.State == ingest.StateOnline {
				if w.alerted {
					online()
				}
				*w = watched{}
				continue
			}
			// The ingest says since when the camera is not online (it stays
			// offline while it retries), so a short online spell between two
			// samples is not missed; without it, count from the first sample.
			down := st.Since
			if down.IsZero() || down.After(now) {
				down = now
			}
			if w.alerted && !st.Since.IsZero() && down.After(w.downSince) {
				// it was online in between, unseen: close that outage
				online()
				*w = watched{}
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
			}
		}
		for id := range state {
			if !seen[id] {
				delete(state, id)
			}
		}
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
// spool check leaves ok. Pass it to health.Monitor.OnChange.
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
		if c.After.Status == health.Failing && event != StorageRecovered {
			e.Severity = Critical
		}
		n.publish(ctx, e)
	}
}
