package recorder

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/vigil-vms/vigil/recorder/archive"
)

// janitor applies retention every RetentionInterval until ctx ends.
func (r *Recorder) janitor(ctx context.Context) {
	t := time.NewTicker(r.opts.RetentionInterval)
	defer t.Stop()
	for {
		if err := r.Retain(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("recorder: retention", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// retentionBatch is how many old segments one query returns.
const retentionBatch = 500

// Retain runs one retention pass over every camera in the index: it deletes
// the segments older than the camera's retention (its retentionDays, or the
// default) and the oldest ones past MaxBytesPerCamera, except those that
// overlap an incident hold and those pinned by a reader. It returns the
// first error after trying every camera.
//
// In a cluster (RunsHere set) each node knows the settings of the cameras it
// records only: it retains those at every pass, and the node RunsHere
// elects also retains, by the default, the camera ids of the index that no
// camera owns now (deleted cameras, orphans; archive.Index.CurrentSince).
// A camera that exists is left to the node that records it.
func (r *Recorder) Retain(ctx context.Context) error {
	cams, err := r.opts.Index.Cameras(ctx)
	if err != nil {
		return err
	}
	elected := r.opts.RunsHere == nil || r.opts.RunsHere()
	var errs []error
	for _, cam := range cams {
		if r.opts.RunsHere != nil && !r.recordsHere(cam) {
			if !elected {
				continue
			}
			if _, owned, err := r.opts.Index.CurrentSince(ctx, cam); err != nil {
				errs = append(errs, fmt.Errorf("camera %q: %w", cam, err))
				continue
			} else if owned {
				continue // its node retains it
			}
		}
		if err := r.retainCamera(ctx, cam); err != nil {
			errs = append(errs, fmt.Errorf("camera %q: %w", cam, err))
		}
		if ctx.Err() != nil {
			break
		}
	}
	return errors.Join(errs...)
}

// recordsHere tells whether the camera was given to this recorder (Set).
func (r *Recorder) recordsHere(cam string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cams[cam] != nil
}

// retention returns the incarnation of the camera that has the id cam now
// ("" when none, or when the camera has no uid) and its retention days.
func (r *Recorder) retention(cam string) (uid string, days int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	days = r.opts.RetentionDays
	if cs := r.cams[cam]; cs != nil {
		uid = cs.cam.UID
		if cs.cam.RetentionDays > 0 {
			days = cs.cam.RetentionDays
		}
	}
	return uid, days
}

func (r *Recorder) retainCamera(ctx context.Context, cam string) error {
	holdsNow := func() ([][2]time.Time, error) {
		if r.opts.Holds == nil {
			return nil, nil
		}
		h, err := r.opts.Holds(ctx, cam)
		if err != nil {
			return nil, fmt.Errorf("incident holds: %w", err)
		}
		return h, nil
	}
	if _, err := holdsNow(); err != nil {
		return err // delete nothing without knowing the holds
	}
	// The holds are read again before each deletion: a pass may take minutes
	// (one store request per segment), and an incident created meanwhile
	// must hold its recordings at once.
	kept := func(s archive.Segment) (bool, error) {
		if r.pinned(s.Key) {
			return true, nil
		}
		holds, err := holdsNow()
		if err != nil {
			return true, err
		}
		for _, h := range holds {
			if s.Start.Before(h[1]) && h[0].Before(s.End) {
				return true, nil
			}
		}
		return false, nil
	}
	// by age: the segments of the camera that has the id now by its
	// retention days; those of a deleted camera that had the id (and
	// orphans) by the default, as any deleted camera's
	uid, days := r.retention(cam)
	own := r.opts.Now().Add(-time.Duration(days) * 24 * time.Hour)
	other := r.opts.Now().Add(-time.Duration(r.opts.RetentionDays) * 24 * time.Hour)
	if uid == "" { // no incarnation known: every segment of the id by its days
		if err := r.deleteOldest(ctx, cam, r.oldest(cam), own, kept, func() bool { return true }); err != nil {
			return err
		}
	} else {
		if err := r.deleteOldest(ctx, cam, r.oldestOwned(cam, uid, true), own, kept, func() bool { return true }); err != nil {
			return err
		}
		if err := r.deleteOldest(ctx, cam, r.oldestOwned(cam, uid, false), other, kept, func() bool { return true }); err != nil {
			return err
		}
	}
	// by size
	if r.opts.MaxBytesPerCamera <= 0 {
		return nil
	}
	total, err := r.opts.Index.CameraBytes(ctx, cam)
	if err != nil {
		return err
	}
	if total <= r.opts.MaxBytesPerCamera {
		return nil
	}
	return r.deleteOldest(ctx, cam, r.oldest(cam), time.Unix(0, math.MaxInt64), kept,
		func() bool { return total > r.opts.MaxBytesPerCamera },
		func(s archive.Segment) { total -= s.Bytes })
}

// oldestFunc returns up to limit of a camera's segments that end before
// before, oldest first.
type oldestFunc func(ctx context.Context, before time.Time, limit int) ([]archive.Segment, error)

// oldest lists the segments of every incarnation of the camera id.
func (r *Recorder) oldest(cam string) oldestFunc {
	return func(ctx context.Context, before time.Time, limit int) ([]archive.Segment, error) {
		return r.opts.Index.Oldest(ctx, cam, before, limit)
	}
}

// oldestOwned lists the segments of the incarnation uid of the camera id
// (owned), or those of the id's other incarnations and its orphans.
func (r *Recorder) oldestOwned(cam, uid string, owned bool) oldestFunc {
	return func(ctx context.Context, before time.Time, limit int) ([]archive.Segment, error) {
		return r.opts.Index.OldestOwned(ctx, cam, uid, owned, before, limit)
	}
}

// deleteOldest deletes the camera's segments that oldest lists before
// cutoff, oldest first, skipping kept ones, while more() holds. deleted is
// told of each deletion.
func (r *Recorder) deleteOldest(ctx context.Context, cam string, oldest oldestFunc, cutoff time.Time, kept func(archive.Segment) (bool, error),
	more func() bool, deleted ...func(archive.Segment)) error {
	skipped := map[string]bool{}
	for more() {
		segs, err := oldest(ctx, cutoff, retentionBatch+len(skipped))
		if err != nil {
			return err
		}
		progress := false
		for _, s := range segs {
			if skipped[s.Key] {
				continue
			}
			if !more() {
				return nil
			}
			keep, err := kept(s)
			if err != nil {
				return err
			}
			if keep {
				skipped[s.Key] = true
				continue
			}
			if err := r.opts.Store.Delete(ctx, s.Key); err != nil {
				return fmt.Errorf("delete %s: %w", s.Key, err)
			}
			if err := r.opts.Index.Delete(ctx, s.Key); err != nil {
				return err
			}
			r.deleted.Add(1)
			for _, fn := range deleted {
				fn(s)
			}
			progress = true
			r.log.Debug("recorder: retention deleted segment", "camera", cam, "segment", s.Key)
		}
		if !progress {
			return nil
		}
	}
	return nil
}
