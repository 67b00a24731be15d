package recorder

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// errWriteBackoff: the spool failed a moment ago; no new segment yet.
var errWriteBackoff = errors.New("spool writes failing: waiting before the next segment")

// Tuning of the segment writer.
const (
	writeRetry    = 5 * time.Second  // after a failed spool write, wait this long before a new segment
	failLogEvery  = time.Minute      // while spool writes fail, log at most this often
	maxFragment   = time.Second      // a fragment spans at most about this
	syncEvery     = time.Second      // fsync the spool files written to this often (one syncer for all)
	idleClose     = 5 * time.Second  // close the open segment after this long without a unit
	maxPTSJump    = 10 * time.Second // a larger jump in the camera clock starts a new segment
	recorderQueue = 4096             // bound of the units buffered for the recorder (~2 min of 25 fps video with audio); the ring grows to it only while units wait
)

// camWriter records one camera's main stream into spool files.
type camWriter struct {
	r         *Recorder
	camera    string
	log       *slog.Logger
	recording *atomic.Bool
	trouble   *writeTrouble // nil: not shown in any status

	// the open segment
	seg     *fragmenter
	media   *ingest.Media
	key     string
	path    string
	f       *os.File
	size    int64
	sync    *syncFile // the open file, as the syncer knows it
	lastPTS time.Duration
	// target is the length at which the open segment ends (at the next keyframe)
	target time.Duration
	// line places the segments of the session on the wall clock, so that
	// one that follows another without a break begins where it ended
	line  timeline
	frags int // complete fragments in the open segment file

	// spool write failures (a full disk): logged once, then summed
	failing    bool
	failedAt   time.Time // last failure; no new segment for writeRetry after it
	failures   int       // since the last log line
	failLogged time.Time
}

// run records until ctx ends. Without a stream to record (the camera has
// none yet, or its stream was closed), it waits for the source to add or
// remove a stream and looks again.
func (w *camWriter) run(ctx context.Context) {
	defer w.closeSegment("recording stopped")
	var closed *ingest.Stream
	for ctx.Err() == nil {
		changed := w.r.src.StreamsChanged()
		st := w.r.src.Stream(w.camera, ingest.Main)
		if st == nil || st == closed {
			select {
			case <-ctx.Done():
				return
			case <-changed:
			}
			continue
		}
		sub := st.Subscribe(ingest.SubscribeOptions{Kind: ingest.Recorder, QueueLen: recorderQueue})
		err := w.consume(ctx, sub)
		sub.Close()
		w.closeSegment("stream closed")
		if errors.Is(err, ingest.ErrStreamClosed) {
			closed = st // the source replaces or removes it: wait for that
		}
	}
}

// consume reads units until the stream closes or ctx ends. A segment left
// idle for idleClose is closed, so that it reaches the store.
func (w *camWriter) consume(ctx context.Context, sub *ingest.Subscription) error {
	for {
		idleCtx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(idleClose, cancel)
		var err error
		for {
			var u *ingest.Unit
			var gap bool
			u, gap, err = sub.Next(idleCtx)
			if err != nil {
				break
			}
			timer.Reset(idleClose)
			w.unit(u, gap)
		}
		timer.Stop()
		cancel()
		if ctx.Err() != nil || !errors.Is(err, context.Canceled) {
			return err
		}
		w.closeSegment("no media for " + idleClose.String())
	}
}

// unit handles one unit of the stream.
func (w *camWriter) unit(u *ingest.Unit, gap bool) {
	if u.Track == nil || u.Media == nil {
		return
	}
	isKey := u.Track.Video && u.Keyframe
	if w.seg != nil {
		switch {
		case gap:
			w.closeSegment("units lost (recorder too slow)")
		case u.Media != w.media:
			w.closeSegment("tracks changed")
		case u.Track.Video && (u.PTS-w.lastPTS > maxPTSJump || u.PTS < w.lastPTS-time.Second):
			w.closeSegment("camera clock jumped")
		case isKey && u.PTS-w.seg.startPTS >= w.target-50*time.Millisecond:
			w.rollSegment(u)
			return
		case isKey && !w.seg.sameParams(u):
			w.closeSegment("parameter sets changed")
		}
	}
	if w.seg == nil {
		if !isKey {
			w.lost() // wait for a keyframe
			return
		}
		if err := w.openSegment(u, false); err != nil {
			w.openFailed(err)
			w.lost()
			return
		}
	}
	if u.Track.Video {
		w.lastPTS = u.PTS
	}
	w.r.received.Add(int64(u.Size()))
	frag, _, err := w.seg.add(u, maxFragment)
	if err != nil {
		w.log.Error("recorder: bad unit, segment closed", "segment", w.key, "err", err)
		w.closeSegment("bad unit")
		return
	}
	if frag != nil {
		w.writeFragment(frag)
	}
}

// rollSegment closes the segment at keyframe k and opens the next one with it.
func (w *camWriter) rollSegment(k *ingest.Unit) {
	frag, carry, err := w.seg.finish(k.PTS)
	if err != nil {
		w.log.Error("recorder: finish segment", "segment", w.key, "err", err)
	} else if frag != nil {
		w.writeFragment(frag)
	}
	w.closeFile()
	if err := w.openSegment(k, true); err != nil {
		w.openFailed(err)
		return
	}
	w.lastPTS = k.PTS
	w.r.received.Add(int64(k.Size()))
	if _, _, err := w.seg.add(k, maxFragment); err != nil {
		w.closeSegment("bad unit")
		return
	}
	for _, a := range carry {
		if _, _, err := w.seg.add(a, maxFragment); err != nil {
			w.closeSegment("bad unit")
			return
		}
	}
}

// openSegment starts a spool file with keyframe k. follows tells that the
// previous segment ended at k without a break (a roll), so that the new one
// continues its timeline.
func (w *camWriter) openSegment(k *ingest.Unit, follows bool) error {
	if !follows {
		w.line.reset()
	}
	if w.failing && time.Since(w.failedAt) < writeRetry {
		w.line.reset()
		return errWriteBackoff
	}
	fr, err := newFragmenter(k)
	if err != nil {
		return err
	}
	fr.bufs, fr.gate = &w.r.fragBufs, w.r.disk
	init, err := fr.initBytes()
	if err != nil {
		return err
	}
	exact, _ := w.line.place(k.PTS, k.Time)
	start := keyTime(exact)
	var f *os.File
	var key, p string
	for range 100 {
		key = archive.SegmentKey(w.camera, start)
		p = filepath.Join(w.r.opts.SpoolDir, filepath.FromSlash(key))
		w.r.disk.enter()
		err = os.MkdirAll(filepath.Dir(p), 0o750)
		if err == nil {
			f, err = w.r.createFile(p)
		}
		w.r.disk.leave()
		if errors.Is(err, fs.ErrNotExist) {
			// an uploader removed the directory, emptied by the upload of
			// this camera's previous segment, between the mkdir and the
			// create (removeEmptyDirs): make it again
			continue
		}
		if err != nil && !errors.Is(err, os.ErrExist) {
			w.writeFailed(err)
			return fmt.Errorf("spool: %w", err)
		}
		if !errors.Is(err, os.ErrExist) {
			break
		}
		start = start.Add(time.Millisecond) // same start as another segment: next millisecond
	}
	if err != nil {
		w.writeFailed(err)
		return fmt.Errorf("spool: %w", err)
	}
	w.seg, w.media, w.key, w.path, w.f, w.size, w.frags = fr, k.Media, key, p, f, 0, 0
	w.target = segmentTarget(w.r.opts.SegmentDuration, w.r.opts.StaggerSegments, w.camera, start)
	w.sync = w.r.syncer.add(f, key)
	w.recording.Store(true)
	w.r.disk.enter()
	ok := w.write(init)
	w.r.disk.leave()
	if !ok {
		w.closeFile()
		return errWriteBackoff // write logged it
	}
	w.r.spool.opened(key, p, int64(len(init)))
	w.log.Debug("recorder: segment opened", "segment", key)
	return nil
}

// writeFragment appends a fragment that the fragmenter just flushed and
// shows it to the review side (Recorder.Spooled) once it is written whole.
//
// The fragmenter marshalled it holding a slot of the disk gate (see
// fragmenter.flush): the write is done in that slot, and the buffer and the
// slot are released together, so that writers waiting for the disk hold
// their units (shared with the hub) but no marshalled copy of them.
func (w *camWriter) writeFragment(frag []byte) {
	pos := w.size
	ok := w.write(frag)
	w.seg.release()
	if !ok {
		w.closeFile()
		return
	}
	w.frags++
	w.writeWorks()
	f := archive.Fragment{Pos: pos, Size: int64(len(frag)), Keyframe: w.seg.lastKeyframe}
	var end time.Duration
	if w.seg.lastVideo {
		f.Offset, end = w.seg.lastStart, w.seg.lastEnd
	} else {
		f.Offset = -1 // a fragment without video starts where the video stopped
	}
	w.r.spool.appended(w.key, f, end)
}

// write appends to the spool file, which the syncer syncs within
// syncEvery; the caller holds a slot of the disk gate. It reports whether b
// was written whole; when not, the caller closes the file (after leaving
// the gate: closeFile takes a slot).
func (w *camWriter) write(b []byte) bool {
	if w.f == nil {
		return false
	}
	n, err := w.f.Write(b)
	w.size += int64(n)
	w.r.spool.grow(int64(n))
	if err != nil {
		w.writeFailed(err)
		return false
	}
	w.sync.dirty.Store(true)
	w.r.spool.enforce()
	return true
}

// closeSegment writes the last fragment and hands the file to the uploaders.
func (w *camWriter) closeSegment(why string) {
	if w.seg == nil {
		return
	}
	frag, _, err := w.seg.finish(-1)
	if err != nil {
		w.log.Error("recorder: finish segment", "segment", w.key, "err", err)
	} else if frag != nil {
		w.writeFragment(frag)
	}
	w.log.Debug("recorder: segment closed", "segment", w.key, "reason", why)
	w.closeFile()
}

// closeFile syncs and closes the spool file and queues it for upload.
func (w *camWriter) closeFile() {
	if w.seg != nil {
		w.seg.release() // a fragment not written: its slot of the disk gate
	}
	if w.f != nil {
		w.r.syncer.remove(w.sync)
		w.sync = nil
		w.r.disk.enter()
		serr := w.f.Sync()
		cerr := w.f.Close()
		w.r.disk.leave()
		if serr != nil {
			w.log.Warn("recorder: spool sync", "segment", w.key, "err", serr)
		}
		if cerr != nil {
			w.log.Warn("recorder: spool close", "segment", w.key, "err", cerr)
		}
		if w.frags == 0 {
			// nothing complete in it (its writes failed): nothing to upload
			w.r.spool.discard(w.key, w.path, w.size)
		} else {
			w.r.spool.closed(w.key, w.path, w.size)
		}
	}
	w.seg, w.media, w.f = nil, nil, nil
	w.recording.Store(false)
}

// segmentTarget is the length of a segment that starts at start. Without
// staggering it is the segment duration. With it, each camera cuts its
// segments on its own grid of wall-clock boundaries, shifted by a hash of its
// id: cameras that start together (a restart of Vigil, a switch coming back)
// do not all close and upload a segment at the same moment, every
// SegmentDuration, for ever after. The first segment after a start is then
// between half and one and a half segment durations long; the next ones keep
// to the grid.
func segmentTarget(d time.Duration, stagger bool, camera string, start time.Time) time.Duration {
	if !stagger || d <= 0 {
		return d
	}
	h := fnv.New64a()
	h.Write([]byte(camera))
	offset := time.Duration(h.Sum64() % uint64(d))
	phase := (time.Duration(start.UnixNano()%int64(d)) - offset + 2*d) % d
	rest := d - phase
	if rest < d/2 {
		rest += d
	}
	return rest
}

// writeFailed notes a failed spool write (typically a full disk). What is
// already in the spool stays; the writer stops opening segments for
// writeRetry, and logs the first failure and then a sum at most every
// failLogEvery, instead of two lines at every keyframe of every camera.
func (w *camWriter) writeFailed(err error) {
	w.trouble.fail(err)
	w.r.spool.enforce() // a disk filled at once: make room for the retry
	now := time.Now()
	w.failedAt = now
	w.failures++
	if !w.failing {
		w.failing = true
		w.failLogged = now
		w.failures = 0
		w.log.Error("recorder: cannot write to the spool; recording paused, retried every "+writeRetry.String(),
			"segment", w.key, "spool", w.r.opts.SpoolDir, "err", err)
		return
	}
	if now.Sub(w.failLogged) >= failLogEvery {
		w.log.Error("recorder: spool writes still failing", "failures", w.failures, "since", w.failLogged, "err", err)
		w.failLogged, w.failures = now, 0
	}
}

// writeWorks notes a complete fragment written after failures.
func (w *camWriter) writeWorks() {
	if w.failing {
		w.trouble.works()
		w.failing = false
		w.log.Info("recorder: spool writes work again; recording resumed", "segment", w.key,
			"paused", time.Since(w.failLogged).Round(time.Second))
	}
}

// lost counts a unit not recorded because spool writes fail.
func (w *camWriter) lost() {
	if w.failing {
		w.trouble.lose()
	}
}

// openFailed logs why a segment could not be opened, unless a spool write
// failure already said it.
func (w *camWriter) openFailed(err error) {
	if errors.Is(err, errWriteBackoff) || w.failing {
		return
	}
	w.log.Error("recorder: cannot open segment", "err", err)
}
