package recorder

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"github.com/vigil-vms/vigil/cluster/lease"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// FencedDir is the directory of the spool (SpoolDir/fenced) that keeps the
// segments Options.Fence refused: written by this node while another may
// have owned the camera (a cluster node paused past its lease). They are
// never uploaded nor indexed; the operator may look at them, and removes
// them.
const FencedDir = "fenced"

// fencedError is an upload or index write refused by the fence: the
// segment goes to FencedDir.
type fencedError struct{ err error }

func (e *fencedError) Error() string { return e.err.Error() }
func (e *fencedError) Unwrap() error { return e.err }

// checkFence asks Options.Fence whether the segment of it may be stored.
// A refusal (an error matching lease.ErrFenced) is a *fencedError; any
// other error is an upload failure (the segment waits and is tried again).
func (r *Recorder) checkFence(ctx context.Context, it *spoolItem) error {
	if r.opts.Fence == nil {
		return nil
	}
	camera, start, err := archive.ParseSegmentKey(it.key)
	if err != nil {
		return &uploadError{err}
	}
	var end time.Time
	if it.seg != nil {
		end = it.seg.End
	}
	if err := r.opts.Fence(ctx, camera, start, end); err != nil {
		if errors.Is(err, lease.ErrFenced) {
			return &fencedError{err}
		}
		return err
	}
	return nil
}

// fenceLocked moves the file of a fenced segment to FencedDir, out of the
// queue and the spool's size. s.mu held.
func (s *spool) fenceLocked(it *spoolItem, err error) {
	s.fenced++
	dst := filepath.Join(s.dir, FencedDir, filepath.FromSlash(it.key))
	merr := os.MkdirAll(filepath.Dir(dst), 0o755)
	if merr == nil {
		merr = os.Rename(it.path, dst)
	}
	if merr != nil {
		s.log.Error("recorder: fenced segment cannot be moved aside; removed", "segment", it.key, "err", merr)
		s.removeFileLocked(it)
	} else {
		s.bytes.Add(-it.size)
		removeEmptyDirs(s.dir, filepath.Dir(it.path))
	}
	s.log.Warn("recorder: segment fenced: written while another node may have owned the camera; kept, not stored",
		"segment", it.key, "file", dst, "err", err)
}

// Stop stops recording a camera that now runs on another node of the
// cluster, and forgets it. Unlike Remove, the camera still exists: its
// ownership in the index stays.
func (r *Recorder) Stop(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if cs := r.cams[id]; cs != nil {
		r.stopLocked(cs)
		delete(r.cams, id)
	}
}
