// Package dispatch is the one owner of camera changes. Whoever changes the set
// of cameras — start-up loading the registry, the HTTP API after an admin's
// edit or a CSV import, a GB/T 28181 device's catalog (SyncChannels: its
// channels become cameras) — asks the Dispatcher, and the Dispatcher makes
// every part that runs cameras follow: the ingest pulls (or stops pulling) the camera, the recorder
// records (or stops). It is also where a camera's status is put together from
// those parts. With a cluster, this is the place that decides which node runs
// a camera.
//
// A camera is an incarnation (ingest.Camera.UID, given by the registry at
// creation): the recorder, told of it by Apply and of its end by Remove,
// records in the index which camera had the id when, so that a camera
// created later under a deleted camera's id does not inherit its recordings
// (see package recorder/archive).
//
// It depends only on ingest (for the Camera and Status types), on
// gb28181/manscdp (a catalog's items) and on small interfaces it declares
// itself; the wiring passes in the ingest fleet, the recorder and (for
// catalogs) the registry.
//
//	d := dispatch.New(fleet, rec)
//	d.Load(cams)            // at start, every registered camera
//	d.Apply(cam)            // after a create or an edit
//	d.Remove(id)            // after a delete
//	st := d.Status(cam)     // for GET .../status
//	d.SetGB(dispatch.GBOptions{Store: reg})
//	d.SyncChannels(ctx, device, department, items) // a device's catalog
package dispatch

import (
	"sync"
	"time"

	"github.com/vigil-vms/vigil/ingest"
)

// Pulling is the part that pulls cameras' streams (ingest.Fleet).
type Pulling interface {
	Set(ingest.Camera)
	Remove(id string)
	Status(id string) (ingest.Status, bool)
}

// Recording is the part that records cameras (recorder.Recorder).
type Recording interface {
	Set(ingest.Camera)
	Remove(id string)
	Recording(id string) bool
}

// RecordingTrouble is implemented by a Recording that can say why a
// camera's recording is in trouble (recorder.Recorder does): problem ("" when
// all is well), since when, and how many of the camera's units were not
// recorded because the recorder could not write them.
type RecordingTrouble interface {
	RecordingTrouble(id string) (problem string, since time.Time, lost int64)
}

// Status is a camera's status as the API shows it (CONTRACT.md, Cameras →
// status): the ingest's view of its streams, and whether it is being recorded.
type Status struct {
	ingest.Status
	// Recording is true while the recorder records the camera.
	Recording bool `json:"recording"`
	// RecordingError says why recording is in trouble: the spool cannot be
	// written (Recording is then false), or the camera is recorded to the
	// spool but uploads to the object store fail. "" when all is well.
	// LastError repeats it while the stream itself has no error.
	RecordingError string `json:"recordingError,omitempty"`
	// RecordingErrorSince is when that trouble began.
	RecordingErrorSince time.Time `json:"recordingErrorSince,omitzero"`
	// RecordingDropped counts the units the recorder could not write (a
	// full spool disk) since start; Dropped includes them.
	RecordingDropped int64 `json:"recordingDropped,omitempty"`
	// Node is the cluster node that runs the camera ("" on a single node,
	// or while no node does).
	Node string `json:"node,omitempty"`
}

// Dispatcher applies camera changes to the parts that run cameras. Changes are
// applied one at a time, so the ingest and the recorder always end with the
// same version of a camera that two concurrent edits race on.
type Dispatcher struct {
	pull Pulling
	rec  Recording

	mu sync.Mutex // serializes changes

	gb     GBOptions  // SetGB
	syncMu sync.Mutex // serializes GB/T 28181 catalog syncs

	cl    *ClusterOptions          // SetCluster; nil on a single node
	local map[string]ingest.Camera // cluster: the cameras running on this node
}

// New returns a Dispatcher over the ingest and the recorder. Either may be nil
// (a server without recording, tests).
func New(pull Pulling, rec Recording) *Dispatcher {
	return &Dispatcher{pull: pull, rec: rec}
}

// Load applies every registered camera, at start (before or after the parts
// run: each part starts what it holds when it runs).
func (d *Dispatcher) Load(cams []ingest.Camera) {
	if d.cl != nil {
		d.clusterLoad(cams)
		return
	}
	for _, c := range cams {
		d.Apply(c)
	}
}

// Apply makes a created or changed camera take effect: the ingest pulls it
// while it is enabled (a changed URL reconnects), the recorder records it
// while it is enabled and set to record.
func (d *Dispatcher) Apply(c ingest.Camera) {
	if d.cl != nil {
		d.clusterApply(c)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.pull != nil {
		d.pull.Set(c)
	}
	if d.rec != nil {
		d.rec.Set(c)
	}
}

// Remove stops a deleted camera everywhere: the recorder closes its segment
// first, then the ingest stops pulling and closes its streams.
func (d *Dispatcher) Remove(id string) {
	if d.cl != nil {
		d.clusterRemove(id)
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.rec != nil {
		d.rec.Remove(id)
	}
	if d.pull != nil {
		d.pull.Remove(id)
	}
}

// Status returns a registered camera's status. A camera the ingest does not
// hold yet is connecting (or disabled).
func (d *Dispatcher) Status(cam ingest.Camera) Status {
	if d.cl != nil {
		return d.clusterStatus(cam)
	}
	return d.localStatus(cam)
}

// localStatus is the status of a camera as the parts of this node see it.
func (d *Dispatcher) localStatus(cam ingest.Camera) Status {
	var st Status
	ok := false
	if d.pull != nil {
		st.Status, ok = d.pull.Status(cam.ID)
	}
	if !ok {
		st.Status = ingest.Status{StreamStatus: ingest.StreamStatus{State: ingest.StateConnecting}}
		if !cam.Enabled {
			st.State = ingest.StateDisabled
		}
	}
	st.ID = cam.ID
	if d.rec != nil {
		st.Recording = d.rec.Recording(cam.ID)
		if rt, ok := d.rec.(RecordingTrouble); ok {
			st.RecordingError, st.RecordingErrorSince, st.RecordingDropped = rt.RecordingTrouble(cam.ID)
			if st.LastError == "" {
				st.LastError = st.RecordingError
			}
			st.Dropped += uint64(max(st.RecordingDropped, 0))
		}
	}
	return st
}
