package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// Cluster is the cluster runtime (cluster.Cluster): which node runs each
// camera, the statuses the owners share, and the camera leases the
// dispatcher keeps in step with the registry.
type Cluster interface {
	// Owner tells which node runs camera, and whether it is this one; ok
	// is false while no node does.
	Owner(camera string) (node, advertise string, local, ok bool)
	// SharedStatus is the JSON Status the owner of camera shared.
	SharedStatus(camera string) ([]byte, bool)
	// Put adds the lease of a created camera or tells its owner that it
	// changed; PutAll adds the missing leases of cameras; Delete removes a
	// deleted camera's lease (its owner stops it).
	Put(ctx context.Context, camera string) error
	PutAll(ctx context.Context, cameras []string) error
	Delete(ctx context.Context, camera string) error
}

// ClusterOptions turn a Dispatcher into a cluster node's: it runs only
// the cameras this node holds the lease of.
type ClusterOptions struct {
	Cluster Cluster
	// Lookup reads a camera from the database of record
	// (registry.Registry.Camera): a camera this node acquires, or that
	// changed on another node, is read afresh. Its error is of
	// apierr.ErrNotFound when the camera does not exist.
	Lookup func(ctx context.Context, id string) (ingest.Camera, error)
	// Log defaults to discarding.
	Log *slog.Logger
}

// Stopper is implemented by a Recording that can stop a camera without
// ending its ownership in the index (recorder.Recorder.Stop): the camera
// moved to another node, it was not deleted.
type Stopper interface {
	Stop(id string)
}

// SetCluster makes d a cluster node's dispatcher; call it before Load.
// Load, Apply and Remove then keep the camera leases in step with the
// registry and run nothing themselves (except a camera this node already
// runs); the cluster's Acquired, Lost and Changed start and stop the
// cameras; Status answers for every camera, from the owner's shared status
// for the cameras of other nodes, with the owner's name in Node.
func (d *Dispatcher) SetCluster(o ClusterOptions) {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	d.cl = &o
	d.local = map[string]ingest.Camera{}
}

// clusterTimeout bounds the dispatcher's database calls.
const clusterTimeout = 10 * time.Second

func (d *Dispatcher) clusterLoad(cams []ingest.Camera) {
	ids := make([]string, len(cams))
	for i, c := range cams {
		ids[i] = c.ID
	}
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if err := d.cl.Cluster.PutAll(ctx, ids); err != nil {
		d.cl.Log.Error("cluster: camera leases at start", "err", err)
	}
}

func (d *Dispatcher) clusterApply(c ingest.Camera) {
	d.mu.Lock()
	if _, _, local, _ := d.cl.Cluster.Owner(c.ID); local {
		d.runLocked(c) // at once here; the owner's Changed repeats it
	}
	d.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if err := d.cl.Cluster.Put(ctx, c.ID); err != nil {
		d.cl.Log.Error("cluster: camera change not announced; its node applies it at its next start", "camera", c.ID, "err", err)
	}
}

func (d *Dispatcher) clusterRemove(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	if err := d.cl.Cluster.Delete(ctx, id); err != nil {
		d.cl.Log.Error("cluster: deleted camera's lease", "camera", id, "err", err)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	delete(d.local, id)
	// the recorder ends the camera's ownership in the index, wherever it ran
	if d.rec != nil {
		d.rec.Remove(id)
	}
	if d.pull != nil {
		d.pull.Remove(id)
	}
}

// runLocked starts or updates camera c here. d.mu held.
func (d *Dispatcher) runLocked(c ingest.Camera) {
	d.local[c.ID] = c
	if d.pull != nil {
		d.pull.Set(c)
	}
	if d.rec != nil {
		d.rec.Set(c)
	}
}

// stopLocked stops camera id here: the recorder first. d.mu held.
func (d *Dispatcher) stopLocked(id string) {
	delete(d.local, id)
	if d.rec != nil {
		if s, ok := d.rec.(Stopper); ok {
			s.Stop(id)
		} else {
			d.rec.Remove(id)
		}
	}
	if d.pull != nil {
		d.pull.Remove(id)
	}
}

func (d *Dispatcher) lookup(id string) (ingest.Camera, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
	defer cancel()
	return d.cl.Lookup(ctx, id)
}

// Acquired starts a camera this node now holds the lease of (the cluster
// calls it).
func (d *Dispatcher) Acquired(id string) {
	c, err := d.lookup(id)
	if errors.Is(err, apierr.ErrNotFound) {
		// a lease left by a camera deleted meanwhile
		ctx, cancel := context.WithTimeout(context.Background(), clusterTimeout)
		defer cancel()
		if err := d.cl.Cluster.Delete(ctx, id); err != nil {
			d.cl.Log.Warn("cluster: lease of a deleted camera", "camera", id, "err", err)
		}
		return
	}
	if err != nil {
		d.cl.Log.Error("cluster: camera acquired but not read; trying again", "camera", id, "err", err)
		go d.retryAcquired(id)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.runLocked(c)
}

// retryAcquired reads a camera acquired while the registry could not be
// read, every retryEvery, until it runs here or is not this node's any more.
func (d *Dispatcher) retryAcquired(id string) {
	for {
		time.Sleep(retryEvery)
		d.mu.Lock()
		_, running := d.local[id]
		d.mu.Unlock()
		if _, _, local, _ := d.cl.Cluster.Owner(id); !local || running {
			return
		}
		c, err := d.lookup(id)
		if errors.Is(err, apierr.ErrNotFound) {
			return // deleted: its owner's Changed or the next acquisition removes the lease
		}
		if err != nil {
			continue
		}
		d.mu.Lock()
		if _, _, local, _ := d.cl.Cluster.Owner(id); local {
			d.runLocked(c)
		}
		d.mu.Unlock()
		return
	}
}

// retryEvery is the pause between reads of a camera acquired unread.
var retryEvery = 2 * time.Second

// Lost stops a camera whose lease this node gave up or lost (the cluster
// calls it): its recording has stopped when it returns.
func (d *Dispatcher) Lost(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.stopLocked(id)
}

// Changed applies the change of a camera this node runs, made on any node
// (the cluster calls it).
func (d *Dispatcher) Changed(id string) {
	c, err := d.lookup(id)
	if err != nil && !errors.Is(err, apierr.ErrNotFound) {
		d.cl.Log.Error("cluster: changed camera not read", "camera", id, "err", err)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, _, local, _ := d.cl.Cluster.Owner(id); !local {
		return
	}
	if err != nil { // deleted: its lease went too
		d.stopLocked(id)
		return
	}
	d.runLocked(c)
}

// Statuses are the statuses of the cameras this node runs, as JSON, for
// the cluster to share with the other nodes.
func (d *Dispatcher) Statuses() map[string][]byte {
	d.mu.Lock()
	cams := slices.Collect(maps.Values(d.local))
	d.mu.Unlock()
	out := make(map[string][]byte, len(cams))
	for _, c := range cams {
		if b, err := json.Marshal(d.localStatus(c)); err == nil {
			out[c.ID] = b
		}
	}
	return out
}

func (d *Dispatcher) clusterStatus(cam ingest.Camera) Status {
	node, _, local, ok := d.cl.Cluster.Owner(cam.ID)
	if local {
		st := d.localStatus(cam)
		st.Node = node
		return st
	}
	if ok {
		if b, shared := d.cl.Cluster.SharedStatus(cam.ID); shared {
			var st Status
			if json.Unmarshal(b, &st) == nil {
				st.ID, st.Node = cam.ID, node
				if !cam.Enabled {
					st.State = ingest.StateDisabled
				}
				return st
			}
		}
	}
	st := Status{Status: ingest.Status{ID: cam.ID, StreamStatus: ingest.StreamStatus{State: ingest.StateConnecting}}, Node: node}
	if !cam.Enabled {
		st.State = ingest.StateDisabled
	}
	return st
}
