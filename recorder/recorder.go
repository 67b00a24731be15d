// Package recorder is the write side of recording: it records the cameras'
// main streams as self-contained fMP4 segments, written to a local spool as
// they are produced, uploaded to an object store (a local directory or S3),
// indexed in SQLite, and deleted by a retention janitor. What it leaves
// behind (segment types, key layout, stores, index) is package
// recorder/archive; reading it back (recordings, playback, export) is
// package recorder/review, which does not import this one.
//
// Segments. One writer goroutine per recorded camera subscribes to the main
// stream. A segment starts on a keyframe and ends at the first keyframe after
// SegmentDuration, on a gap (the subscriber lost units), on new tracks, on
// new parameter sets, on a jump of the camera clock, after 5 s without media,
// and when recording stops. Its file is an init section (ftyp+moov: H.264 or
// H.265, plus AAC, Opus, or G.711 converted to 16-bit LPCM) followed by
// moof+mdat fragments of at most about 1 s, a new one at every keyframe.
// Decode times come from the units' PTS (the camera clock), from 0 at the
// segment's first keyframe; the wall-clock anchor is that keyframe's Time,
// to the millisecond, and is the key: <camera>/YYYY/MM/DD/HH-MM-SS.mmm.mp4
// (UTC). The index row of a segment written whole is the writer's own
// fragment table (what it wrote, where, with which times): the file is not
// read back to index it. Crash recovery and Reindex parse the file
// (archive.ScanSegment), and give the same row (TestWriterRowsEqualReindex).
//
// Spool. The file lives at SpoolDir/<key> while written; each fragment is
// appended as it is completed; one syncer fsyncs every spool file written
// to, once a second (and each writer at close).
// A closed segment waits in an upload queue (oldest first) for one of the
// Uploaders: the store takes the file (the local store links it into place,
// copying only across file systems; S3 reads it once, as the request body),
// then its row, then removal from the spool, so that a crash between the put
// and the row leaves the spool file to the next start's recovery. The rows
// are written by one indexer, all those of the segments stored meanwhile in
// one transaction (Index.Add): at a shutdown, the segments that every camera
// closes at once are indexed in a few transactions, not one each. Failures are retried with capped exponential backoff and
// jitter, and shown (Status.UploadFailingSince, RecordingTrouble); past
// SpoolMaxBytes, or when the spool's disk has less than max(1 GiB, 5 %) free,
// the oldest waiting segments are dropped and counted (Status.Dropped). A
// camera whose spool file cannot be written is not recorded until writes
// work again, and RecordingTrouble says why and counts its lost units. At start Run finalizes every file left in the
// spool: it keeps the fragments up to the first incomplete one, truncates the
// rest, and queues the segment, so a kill -9 loses the fragment in progress
// (at most about 1 s).
//
// Review of the spool. The writer records each fragment it appends (time,
// position, size, keyframe), so Recorder.Spooled shows the segments still
// on local disk — the one being written, up to its last complete fragment,
// and those waiting for upload — with the rows their upload will index, and
// Recorder.ReadSpooled reads them. review.Review (with its Spool set to the
// Recorder) joins them with the index: the last minute, and hours of a
// storage outage, can be reviewed. A reader pins a
// spooled segment (Recorder.Pin); an upload meanwhile stores and indexes it
// but leaves its file until the last unpin.
//
// Retention. Every RetentionInterval the janitor deletes the segments older
// than the camera's retention days (or RetentionDays) and the oldest past
// MaxBytesPerCamera, never one that overlaps a hold (Options.Holds) or that a
// reader pinned (Recorder.Pin); the object first, then the row.
package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/fmp4read"
)

// Options configure a Recorder.
type Options struct {
	// Store receives the segments. Required.
	Store archive.Store
	// Index is the segment index. Required.
	Index *archive.Index
	// SegmentDuration is the length of a segment; a segment is cut at the
	// first keyframe after it. It defaults to 60 seconds.
	SegmentDuration time.Duration
	// SpoolDir holds the segments being written and those waiting for
	// upload. Required.
	SpoolDir string
	// SpoolMaxBytes bounds the spool: past it the oldest waiting segments
	// are dropped. It defaults to 10 GiB.
	SpoolMaxBytes int64
	// RetentionDays applies to cameras whose retentionDays is 0. It defaults to 30.
	RetentionDays int
	// MaxBytesPerCamera trims a camera's oldest segments past this size.
	// It defaults to 0: no limit.
	MaxBytesPerCamera int64
	// Holds returns the time ranges of a camera that incidents hold: the
	// janitor never deletes a segment overlapping one. It defaults to nil: none.
	Holds func(ctx context.Context, camera string) ([][2]time.Time, error)
	// Uploaders is the number of concurrent uploads. It defaults to 4.
	Uploaders int
	// UploadRetryMax caps the backoff between upload attempts while the
	// store fails. It defaults to 15 seconds.
	UploadRetryMax time.Duration
	// RetentionInterval is the period of the retention janitor. It defaults to 1 minute.
	RetentionInterval time.Duration
	// StaggerSegments spreads the cameras' segment boundaries over the
	// segment duration by a hash of the camera id (see segmentTarget), so that
	// cameras started together do not close and upload at the same moment.
	// The first segment after a start is then 0.5 to 1.5 durations long. It
	// defaults to false: every segment is SegmentDuration long.
	StaggerSegments bool
	// ShutdownGrace bounds the uploads at the end of Run. It defaults to 10 seconds.
	ShutdownGrace time.Duration
	// Log receives the recorder's logs. It defaults to slog.Default().
	Log *slog.Logger
	// Now returns the current time, for the janitor. It defaults to time.Now.
	Now func() time.Time
	// RunsHere, when set, tells at each retention pass whether this node
	// applies retention for the cluster to the cameras of the index it does
	// not record (see Retain); nil: always (a single node).
	RunsHere func() bool
	// Fence, when set (a cluster node), is asked before each segment upload
	// whether the segment of camera from start to end may be stored
	// (cluster.Cluster.Fence). An error matching lease.ErrFenced refuses it:
	// the segment is moved to SpoolDir/fenced (FencedDir), never uploaded;
	// any other error fails the upload, which is tried again. An index write
	// refused by the index's fence (archive.Index.SetFence) does the same,
	// and deletes the object just stored. nil: no check.
	Fence func(ctx context.Context, camera string, start, end time.Time) error
}

// Source gives the recorder a camera's stream; ingest.Fleet implements it.
type Source interface {
	// Stream returns the camera's stream of that kind, nil when there is none.
	Stream(cameraID string, kind ingest.StreamKind) *ingest.Stream
	// StreamsChanged returns a channel closed the next time a stream is added
	// or removed: a writer without a stream waits on it instead of polling.
	StreamsChanged() <-chan struct{}
}

// Status is the recorder's state, for the status API and metrics.
type Status struct {
	Recording         int       // cameras writing a segment now
	SpoolBytes        int64     // bytes in the spool (open and waiting segments)
	SpoolDiskFree     int64     // free bytes on the spool's disk at the last write; -1 unknown
	Waiting           int       // closed segments waiting for upload
	Uploaded          int64     // segments uploaded since start
	Dropped           int64     // segments lost: spool full or unreadable
	UploadErrors      int64     // failed upload attempts
	LastUploadError   string    // why the store fails now; "" after a successful upload
	LastUploadErrorAt time.Time // when LastUploadError happened
	// UploadFailingSince is the first failed upload since the last
	// successful one; zero while uploads work.
	UploadFailingSince time.Time
	// SpoolWriteFailing counts the cameras whose spool files cannot be
	// written now (a full or failing disk): they are not being recorded.
	SpoolWriteFailing int
	// UnitsLost counts the units of all cameras not recorded because the
	// spool could not be written, since start.
	UnitsLost     int64
	Deleted       int64     // segments deleted by retention
	Fenced        int64     // segments refused by Options.Fence, kept in SpoolDir/fenced
	OldestWaiting time.Time // start of the oldest closed segment not yet stored; zero when none waits
	ReceivedBytes int64     // payload bytes of the units recorded since start
	StoredBytes   int64     // bytes of the segments uploaded since start
}

// Recorder records cameras. Create it with New, run it with Run.
type Recorder struct {
	opts  Options
	src   Source
	log   *slog.Logger
	spool *spool

	mu       sync.Mutex
	cams     map[string]*camState
	runCtx   context.Context // set while Run runs writers
	writers  sync.WaitGroup
	deleted  atomic.Int64
	received atomic.Int64
	stored   atomic.Int64
	fragBufs bufPool // the fragments' buffers, shared by the writers
	syncer   *syncer
	indexer  *indexer
	disk     diskGate // bounds the writers' file system calls in progress

	// createFile creates a spool file that must not exist yet; tests replace
	// it to make writes fail as on a full disk.
	createFile func(path string) (*os.File, error)
	// afterPut, when set by a test, runs between a segment's Put and its
	// Index.Add; an error fails the upload there (a crash between the two).
	afterPut func(ctx context.Context, key string) error
}

func createSpoolFile(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
}

type camState struct {
	cam       ingest.Camera
	cancel    context.CancelFunc // nil when no writer runs
	recording *atomic.Bool
	trouble   *writeTrouble // the camera's spool write failures, kept across writers
}

// writeTrouble is what a camera's writer tells the status about its spool
// writes: why they fail since when ("" while they work), and how many units
// were not recorded because of it. Its methods accept a nil receiver.
type writeTrouble struct {
	mu    sync.Mutex
	err   string
	since time.Time
	lost  atomic.Int64
}

func (t *writeTrouble) fail(err error) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.err == "" {
		t.since = time.Now()
	}
	// the cause without the file's path: "write: no space left on device"
	t.err = err.Error()
	var pe *fs.PathError
	if errors.As(err, &pe) {
		t.err = pe.Op + ": " + pe.Err.Error()
	}
}

func (t *writeTrouble) works() {
	if t == nil {
		return
	}
	t.mu.Lock()
	t.err, t.since = "", time.Time{}
	t.mu.Unlock()
}

func (t *writeTrouble) lose() {
	if t != nil {
		t.lost.Add(1)
	}
}

func (t *writeTrouble) get() (err string, since time.Time, lost int64) {
	if t == nil {
		return "", time.Time{}, 0
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err, t.since, t.lost.Load()
}

// New validates the options and allocates a recorder; it starts nothing.
func New(opts Options, src Source) (*Recorder, error) {
	if opts.Store == nil {
		return nil, errors.New("recorder: no store")
	}
	if opts.Index == nil {
		return nil, errors.New("recorder: no index")
	}
	if src == nil {
		return nil, errors.New("recorder: no source")
	}
	if opts.SpoolDir == "" {
		return nil, errors.New("recorder: no spool directory")
	}
	if opts.SegmentDuration == 0 {
		opts.SegmentDuration = 60 * time.Second
	}
	if opts.SegmentDuration < time.Second {
		return nil, fmt.Errorf("recorder: segment duration %v is shorter than 1s", opts.SegmentDuration)
	}
	if opts.SpoolMaxBytes == 0 {
		opts.SpoolMaxBytes = 10 << 30
	}
	if opts.RetentionDays == 0 {
		opts.RetentionDays = 30
	}
	if opts.RetentionDays < 0 || opts.MaxBytesPerCamera < 0 || opts.SpoolMaxBytes < 0 {
		return nil, errors.New("recorder: negative retention, size limit or spool limit")
	}
	if opts.Uploaders <= 0 {
		opts.Uploaders = 4
	}
	if opts.UploadRetryMax <= 0 {
		opts.UploadRetryMax = 15 * time.Second
	}
	if opts.RetentionInterval <= 0 {
		opts.RetentionInterval = time.Minute
	}
	if opts.ShutdownGrace <= 0 {
		opts.ShutdownGrace = 10 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if err := os.MkdirAll(opts.SpoolDir, 0o750); err != nil {
		return nil, fmt.Errorf("recorder: spool: %w", err)
	}
	disk := make(diskGate, diskSlots)
	r := &Recorder{
		opts:       opts,
		src:        src,
		log:        opts.Log,
		spool:      newSpool(opts.SpoolDir, opts.SpoolMaxBytes, opts.UploadRetryMax, opts.Log),
		cams:       map[string]*camState{},
		syncer:     newSyncer(opts.Log, disk, opts.SpoolDir),
		disk:       disk,
		createFile: createSpoolFile,
	}
	r.indexer = newIndexer(r)
	return r, nil
}

// Run recovers the spool left by an earlier run, then records the cameras,
// uploads, and applies retention until ctx ends. It then closes the open
// segments and uploads what it can within ShutdownGrace, and returns.
func (r *Recorder) Run(ctx context.Context) error {
	n, err := r.spool.recover()
	if err != nil {
		return err
	}
	if n > 0 {
		r.log.Info("recorder: segments recovered from the spool", "segments", n)
	}

	upCtx, upCancel := context.WithCancel(context.WithoutCancel(ctx))
	defer upCancel()
	var wg, indexing sync.WaitGroup
	indexStop := make(chan struct{})
	indexing.Go(func() { r.indexer.run(upCtx, indexStop) })
	for range r.opts.Uploaders {
		wg.Go(func() { r.uploader(upCtx) })
	}
	wg.Go(func() { r.janitor(ctx) })
	syncCtx, syncStop := context.WithCancel(context.Background())
	var syncing sync.WaitGroup
	syncing.Go(func() { r.syncer.run(syncCtx) })

	r.mu.Lock()
	r.runCtx = ctx
	for id, cs := range r.cams {
		r.startLocked(id, cs)
	}
	r.mu.Unlock()

	<-ctx.Done()
	stopAt := time.Now()
	storedBefore, txsBefore := r.indexer.indexed.Load(), r.indexer.txs.Load()

	r.mu.Lock()
	r.runCtx = nil
	for _, cs := range r.cams {
		if cs.cancel != nil {
			cs.cancel()
			cs.cancel = nil
		}
	}
	r.mu.Unlock()
	r.writers.Wait() // every open segment is closed (synced) and queued
	syncStop()
	syncing.Wait()
	closedIn := time.Since(stopAt)

	r.spool.drain()
	grace := time.AfterFunc(r.opts.ShutdownGrace, upCancel)
	wg.Wait()
	close(indexStop) // the rows of the last segments stored, in one transaction
	indexing.Wait()
	grace.Stop()
	var st Status
	r.spool.status(&st)
	r.log.Info("recorder: stopped", "closing", closedIn.Round(time.Millisecond),
		"took", time.Since(stopAt).Round(time.Millisecond),
		"indexed", r.indexer.indexed.Load()-storedBefore,
		"index_transactions", r.indexer.txs.Load()-txsBefore)
	if st.Waiting > 0 {
		r.log.Warn("recorder: stopped with segments waiting in the spool; they are uploaded at the next start",
			"segments", st.Waiting)
	}
	return nil
}

// Set starts or stops recording a camera's main stream according to
// c.Record && c.Enabled, and updates its retention. It first tells the index
// that c's incarnation (c.UID) owns the camera's id, in c.Department (see
// archive.Index.Own), so that what it records is its own.
func (r *Recorder) Set(c ingest.Camera) {
	r.own(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := r.cams[c.ID]
	if cs == nil {
		cs = &camState{recording: &atomic.Bool{}, trouble: &writeTrouble{}}
		r.cams[c.ID] = cs
	}
	cs.cam = c
	if !(c.Record && c.Enabled) {
		r.stopLocked(cs)
		return
	}
	if r.runCtx != nil {
		r.startLocked(c.ID, cs)
	}
}

// Remove stops recording a camera and forgets it; its recordings stay, its
// incarnation's (see archive.Index.Disown): a camera created later under
// the same id does not see them.
func (r *Recorder) Remove(id string) {
	r.mu.Lock()
	if cs := r.cams[id]; cs != nil {
		r.stopLocked(cs)
		delete(r.cams, id)
	}
	r.mu.Unlock()
	if err := r.opts.Index.Disown(context.Background(), id, r.opts.Now()); err != nil {
		r.log.Error("recorder: index: camera deleted", "camera", id, "err", err)
	}
}

// own tells the index that c's incarnation owns its id. A failure is logged:
// the camera is recorded all the same, and its segments are attributed when
// Own succeeds again (at the next change or start).
func (r *Recorder) own(c ingest.Camera) {
	o := archive.Owner{Camera: c.ID, UID: c.UID, Department: c.Department, Since: c.Since}
	orphans, err := r.opts.Index.Own(context.Background(), o, r.opts.Now())
	if err != nil {
		r.log.Error("recorder: index: camera owner", "camera", c.ID, "err", err)
	}
	if orphans > 0 {
		r.log.Warn("recorder: older recordings under this camera's id belong to no camera and are not shown "+
			"(a deleted camera's, or a lost database's: then run vigil reindex --adopt-orphans)",
			"camera", c.ID, "segments", orphans)
	}
}

func (r *Recorder) startLocked(id string, cs *camState) {
	if cs.cancel != nil || !(cs.cam.Record && cs.cam.Enabled) {
		return
	}
	ctx, cancel := context.WithCancel(r.runCtx)
	cs.cancel = cancel
	cs.recording = &atomic.Bool{} // a stopping writer keeps its own flag
	cs.trouble.works()            // a new writer tries afresh
	w := &camWriter{r: r, camera: id, log: r.log.With("camera", id), recording: cs.recording, trouble: cs.trouble}
	r.writers.Go(func() { w.run(ctx) })
}

func (r *Recorder) stopLocked(cs *camState) {
	if cs.cancel != nil {
		cs.cancel()
		cs.cancel = nil
	}
}

// Recording tells whether a segment of the camera is being written now.
func (r *Recorder) Recording(id string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	cs := r.cams[id]
	return cs != nil && cs.cancel != nil && cs.recording.Load()
}

// RecordingTrouble says why the camera's recording is in trouble, since
// when, and how many of its units were not recorded since start (as
// dispatch.Status shows them). problem is "" when all is well; otherwise it
// is either that its spool files cannot be written (it is not being
// recorded: Recording is false) or, for a camera being recorded, that
// uploads to the store fail and its video waits in the spool.
func (r *Recorder) RecordingTrouble(id string) (problem string, since time.Time, lost int64) {
	r.mu.Lock()
	cs := r.cams[id]
	var recording bool
	var t *writeTrouble
	if cs != nil {
		recording = cs.cancel != nil && cs.recording.Load()
		t = cs.trouble
	}
	r.mu.Unlock()
	werr, wsince, lost := t.get()
	if werr != "" && !recording {
		return "not recording: the spool cannot be written since " +
			wsince.UTC().Format(time.RFC3339) + ": " + werr, wsince, lost
	}
	if !recording {
		return "", time.Time{}, lost
	}
	r.spool.mu.Lock()
	uerr, usince := r.spool.lastErr, r.spool.failSince
	r.spool.mu.Unlock()
	if uerr != "" {
		return "recording to the spool; uploads to the object store failing since " +
			usince.UTC().Format(time.RFC3339) + ": " + uerr, usince, lost
	}
	return "", time.Time{}, lost
}

// Status returns the recorder's figures.
func (r *Recorder) Status() Status {
	var st Status
	r.spool.status(&st)
	r.mu.Lock()
	for _, cs := range r.cams {
		if cs.cancel != nil && cs.recording.Load() {
			st.Recording++
		}
		if werr, _, lost := cs.trouble.get(); werr != "" || lost > 0 {
			st.UnitsLost += lost
			if werr != "" && cs.cancel != nil && !cs.recording.Load() {
				st.SpoolWriteFailing++
			}
		}
	}
	r.mu.Unlock()
	st.Deleted = r.deleted.Load()
	st.ReceivedBytes = r.received.Load()
	st.StoredBytes = r.stored.Load()
	return st
}

// Pin keeps a segment while it is read: the janitor does not delete it from
// the store, and its spool file, if any, is neither removed after its upload
// nor dropped when the spool is full. Call unpin when done (more than once
// is harmless); a spool file uploaded meanwhile is removed then.
func (r *Recorder) Pin(key string) (unpin func()) { return r.spool.pin(key) }

func (r *Recorder) pinned(key string) bool { return r.spool.pinned(key) }

// Spooled returns the camera's segments that are still on local disk and
// overlap [start, end), oldest first: the one being written, with the
// fragments completely written so far (End is where they end), and the
// closed ones waiting for upload. Key is the key the segment will have in
// the store; a segment that the index holds already may still be listed
// until its spool file is removed. Segments without a complete fragment are
// left out. The file stays readable only while the segment is pinned (Pin):
// a reader pins it, then reads it, and reads the store instead if the file
// went in between (uploaded).
func (r *Recorder) Spooled(camera string, start, end time.Time) []archive.Segment {
	return r.spool.spooled(camera, start, end)
}

// ReadSpooled reads length bytes at off of the spool file of a segment that
// Spooled listed; ok is false when the file went (uploaded and removed
// before the reader pinned it): the reader reads the store instead.
func (r *Recorder) ReadSpooled(key string, off, length int64) (rc io.ReadCloser, ok bool, err error) {
	return r.spool.read(key, off, length)
}

// uploader uploads waiting segments until ctx ends or the spool drained.
func (r *Recorder) uploader(ctx context.Context) {
	for {
		it := r.spool.next(ctx)
		if it == nil {
			return
		}
		if err := r.upload(ctx, it); err != nil {
			r.spool.done(it, err)
			continue
		}
		r.indexer.add(it) // its row, and the removal of its spool file
	}
}

// upload stores one spool file; the indexer then writes its row.
func (r *Recorder) upload(ctx context.Context, it *spoolItem) error {
	if it.seg == nil {
		// recovered, or a write failed after part of a fragment: scan it
		r.spool.mu.Lock()
		r.spool.rescans++
		r.spool.mu.Unlock()
		fi, err := finalizeSpoolFile(it.key, it.path)
		if err != nil {
			return spoolFileError(err)
		}
		if fi == nil {
			return &uploadError{errors.New("segment holds no fragment")}
		}
		if fi.size != it.size {
			r.spool.bytes.Add(fi.size - it.size)
			it.size = fi.size
		}
		it.seg = fi.seg
	}
	if err := r.checkFence(ctx, it); err != nil {
		return err
	}
	if err := r.put(ctx, it); err != nil {
		return err
	}
	if r.afterPut != nil {
		if err := r.afterPut(ctx, it.key); err != nil {
			return err
		}
	}
	return nil
}

// put stores the spool file of it. A store that takes a file by its path
// (archive.FileStore: the local store, which links it into place) gets the
// path; any other reads the file once, as a stream.
func (r *Recorder) put(ctx context.Context, it *spoolItem) error {
	// a server that stops answering must not hold an uploader forever:
	// a minute plus one second per MB (8 Mbit/s at least)
	pctx, cancel := context.WithTimeout(ctx, time.Minute+time.Duration(it.size>>20)*time.Second)
	defer cancel()
	if fs, ok := r.opts.Store.(archive.FileStore); ok {
		if err := fs.PutFile(pctx, it.key, it.path, it.size, it.seg.Meta()); err != nil {
			if errors.Is(err, archive.ErrSourceFile) {
				return spoolFileError(err)
			}
			return fmt.Errorf("upload %s: %w", it.key, err)
		}
		return nil
	}
	f, err := os.Open(it.path)
	if err != nil {
		return spoolFileError(err)
	}
	defer f.Close()
	if err := r.opts.Store.Put(pctx, it.key, f, it.size, it.seg.Meta()); err != nil {
		return fmt.Errorf("upload %s: %w", it.key, err)
	}
	return nil
}

// spoolFileError classifies a failure to read a spool file. A file that is
// gone or does not parse cannot be uploaded: an *uploadError, the segment is
// dropped. An error of the file system (out of file descriptors, a disk
// that fails a read) may pass: the segment waits for the next attempt, as
// when the store fails.
func spoolFileError(err error) error {
	var pe *fs.PathError
	var re *fmp4read.ReadError
	if (errors.As(err, &pe) || errors.As(err, &re)) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool file: %w", err)
	}
	return &uploadError{err}
}
