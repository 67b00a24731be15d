package recorder

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vigil-vms/vigil/internal/diskfree"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// spool tracks the segment files on local disk: the ones being written and
// the closed ones waiting for upload, oldest first. It keeps, for the review
// side, each file's fragment list as far as it is written (see Spooled), and
// the readers' pins: a file that a reader pinned is not removed after its
// upload, nor dropped when the spool is full, until the last pin goes.
type spool struct {
	dir      string
	maxBytes int64
	log      *slog.Logger
	retryMax time.Duration

	bytes atomic.Int64

	// diskSpace measures the spool's file system (free and total bytes);
	// reserve is the free space to keep on it. Tests replace them.
	diskSpace func(dir string) (free, total uint64, err error)
	reserve   func(total uint64) uint64
	diskFree  atomic.Int64 // free bytes at the last measure; -1 unknown
	diskErrAt atomic.Int64 // last logged failure to measure, Unix nanoseconds

	mu         sync.Mutex
	open       map[string]*spoolItem // segments being written, by key
	waiting    []*spoolItem          // by start time
	held       map[string]*spoolItem // uploaded, their removal deferred while pinned
	pins       map[string]int
	dropped    int64
	rescans    int64 // closed segments scanned at upload: their writer's table was incomplete
	uploaded   int64
	fenced     int64 // segments moved to FencedDir
	uploadErrs int64
	lastErr    string
	lastErrAt  time.Time
	failSince  time.Time // first failed upload since the last success; zero while uploads work
	backoff    time.Duration
	retryAt    time.Time
	draining   bool
	lastFullAt time.Time
	changed    chan struct{} // closed and replaced at every change: wakes every uploader
}

// spoolItem is one segment file in the spool: being written, or closed and
// waiting for upload.
type spoolItem struct {
	key   string
	path  string
	size  int64
	start time.Time
	busy  bool             // an uploader has it
	seg   *archive.Segment // the index row: the writer's table, or a scan of the file (recovered)
	// view is what the review side may read of the file: the fragments
	// completely written so far (for a closed file, all of them). Its
	// Fragments only grow, by append, under spool.mu. nil when unknown.
	view *archive.Segment
}

func newSpool(dir string, maxBytes int64, retryMax time.Duration, log *slog.Logger) *spool {
	s := &spool{dir: dir, maxBytes: maxBytes, retryMax: retryMax, log: log,
		open: map[string]*spoolItem{}, held: map[string]*spoolItem{}, pins: map[string]int{},
		changed: make(chan struct{}), diskSpace: diskfree.Space, reserve: diskfree.Reserve}
	s.diskFree.Store(-1)
	return s
}

// wake tells the waiting uploaders that the queue changed.
func (s *spool) wake() {
	s.mu.Lock()
	s.wakeLocked()
	s.mu.Unlock()
}

func (s *spool) wakeLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// opened registers a segment file being written, whose init section of
// initSize bytes is written.
func (s *spool) opened(key, path string, initSize int64) {
	camera, start, _ := archive.ParseSegmentKey(key)
	s.mu.Lock()
	s.open[key] = &spoolItem{key: key, path: path, start: start, view: &archive.Segment{
		Camera: camera, Start: start, End: start, Bytes: initSize, Key: key, InitSize: initSize}}
	s.mu.Unlock()
}

// appended records a fragment completely written to an open segment file;
// end is the end of its last video sample, from the segment's start (zero
// when it holds no video, and then f.Offset < 0).
func (s *spool) appended(key string, f archive.Fragment, end time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	it := s.open[key]
	if it == nil || it.view == nil {
		return
	}
	v := it.view
	if f.Offset < 0 {
		f.Offset = v.End.Sub(v.Start) // no video: it starts where the video stopped
	}
	v.Fragments = append(v.Fragments, f)
	v.Bytes = f.Pos + f.Size
	if e := v.Start.Add(end); e.After(v.End) {
		v.End = e
	}
}

func (s *spool) grow(n int64) { s.bytes.Add(n) }

// closed queues a finished segment file for upload.
func (s *spool) closed(key, path string, size int64) {
	s.mu.Lock()
	it := s.open[key]
	delete(s.open, key)
	if it == nil {
		_, start, _ := archive.ParseSegmentKey(key)
		it = &spoolItem{key: key, path: path, start: start}
	}
	it.size = size
	if v := it.view; v != nil && v.Bytes == size && len(v.Fragments) > 0 {
		// written whole: the writer's fragment table is the index row, the
		// one a scan of the file gives (see TestWriterRowsEqualReindex)
		seg := *v
		seg.Fragments = v.Fragments[:len(v.Fragments):len(v.Fragments)]
		it.seg = &seg
	}
	s.insertLocked(it)
	s.wakeLocked()
	s.mu.Unlock()
}

// discard forgets an open segment file that holds no complete fragment (its
// writes failed) and removes it: there is nothing in it to keep.
func (s *spool) discard(key, path string, size int64) {
	s.mu.Lock()
	delete(s.open, key)
	s.mu.Unlock()
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		s.log.Warn("recorder: remove empty spool file", "segment", key, "err", err)
	}
	s.bytes.Add(-size)
}

// Spooled returns copies of the views of the camera's segment files (being
// written or waiting for upload) that overlap [start, end) and hold at least
// one fragment, oldest first.
func (s *spool) spooled(camera string, start, end time.Time) []archive.Segment {
	prefix := camera + "/"
	var out []archive.Segment
	add := func(it *spoolItem) {
		v := it.view
		if v == nil || len(v.Fragments) == 0 || len(it.key) <= len(prefix) || it.key[:len(prefix)] != prefix {
			return
		}
		if !v.Start.Before(end) || !v.End.After(start) {
			return
		}
		c := *v
		c.Fragments = v.Fragments[:len(v.Fragments):len(v.Fragments)]
		out = append(out, c)
	}
	s.mu.Lock()
	for _, it := range s.waiting {
		add(it)
	}
	for _, it := range s.open {
		add(it)
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, j int) bool { return out[i].Start.Before(out[j].Start) })
	return out
}

// pin keeps the file of key (and the stored segment, see Recorder.Pin) until
// the returned function is called.
func (s *spool) pin(key string) (unpin func()) {
	s.mu.Lock()
	s.pins[key]++
	s.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if s.pins[key]--; s.pins[key] > 0 {
				return
			}
			delete(s.pins, key)
			if it := s.held[key]; it != nil {
				delete(s.held, key)
				s.removeFileLocked(it)
			}
		})
	}
}

func (s *spool) pinned(key string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.pins[key] > 0
}

func (s *spool) insertLocked(it *spoolItem) {
	i := sort.Search(len(s.waiting), func(i int) bool { return s.waiting[i].start.After(it.start) })
	s.waiting = append(s.waiting, nil)
	copy(s.waiting[i+1:], s.waiting[i:])
	s.waiting[i] = it
}

// enforce drops the oldest waiting segments while the spool exceeds its
// limit or its disk has less free space than the reserve (diskfree.Reserve:
// the larger of 1 GiB and 5 %), so that a disk filled by anything (other
// files, exports, the spool itself) loses the oldest video, not the newest.
func (s *spool) enforce() {
	if !s.overLimit() && s.diskShort() <= 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for {
		why := "spool over its limit"
		if !s.overLimit() {
			short := s.diskShort()
			if short <= 0 {
				return
			}
			why = "spool disk low on free space"
		}
		i := 0
		for i < len(s.waiting) && (s.waiting[i].busy || s.pins[s.waiting[i].key] > 0) {
			i++
		}
		if i == len(s.waiting) {
			if time.Since(s.lastFullAt) > time.Minute {
				s.lastFullAt = time.Now()
				s.log.Warn("recorder: "+why+" with nothing left to drop",
					"bytes", s.bytes.Load(), "limit", s.maxBytes, "diskFree", s.diskFree.Load())
			}
			return
		}
		it := s.waiting[i]
		s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
		s.removeFileLocked(it)
		s.dropped++
		s.log.Warn("recorder: "+why+", oldest waiting segment dropped",
			"segment", it.key, "bytes", it.size, "limit", s.maxBytes, "diskFree", s.diskFree.Load(), "dropped", s.dropped)
	}
}

func (s *spool) overLimit() bool { return s.maxBytes > 0 && s.bytes.Load() > s.maxBytes }

// diskShort measures the spool's disk and returns how many bytes it lacks
// to keep the reserve free (0 or less: enough; also when it cannot be
// measured, which is logged at most once a minute).
func (s *spool) diskShort() int64 {
	free, total, err := s.diskSpace(s.dir)
	if err != nil {
		s.diskFree.Store(-1)
		if last := s.diskErrAt.Load(); time.Since(time.Unix(0, last)) > time.Minute && s.diskErrAt.CompareAndSwap(last, time.Now().UnixNano()) {
			s.log.Warn("recorder: cannot measure the spool's free disk space; only the spool limit applies", "err", err)
		}
		return 0
	}
	s.diskFree.Store(int64(min(free, 1<<62)))
	need := s.reserve(total)
	if free >= need {
		return 0
	}
	return int64(min(need-free, 1<<62))
}

func (s *spool) removeFileLocked(it *spoolItem) {
	if err := os.Remove(it.path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("recorder: remove spool file", "segment", it.key, "err", err)
	}
	s.bytes.Add(-it.size)
	removeEmptyDirs(s.dir, filepath.Dir(it.path))
}

// removeEmptyDirs removes dir and its parents up to root while they are empty.
func removeEmptyDirs(root, dir string) {
	for dir != root && len(dir) > len(root) {
		if os.Remove(dir) != nil {
			return
		}
		dir = filepath.Dir(dir)
	}
}

// next waits for a segment to upload. It returns nil when ctx ends, or when
// draining and nothing is left.
func (s *spool) next(ctx context.Context) *spoolItem {
	for {
		s.mu.Lock()
		changed := s.changed
		wait := time.Hour
		if d := time.Until(s.retryAt); d > 0 {
			wait = d
		} else {
			for _, it := range s.waiting {
				if !it.busy {
					it.busy = true
					s.mu.Unlock()
					return it
				}
			}
			if s.draining {
				s.mu.Unlock()
				return nil
			}
		}
		s.mu.Unlock()
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-changed:
		case <-t.C:
		}
		t.Stop()
	}
}

// uploadError is an upload that failed because of the segment itself: retrying cannot help.
type uploadError struct{ err error }

func (e *uploadError) Error() string { return e.err.Error() }
func (e *uploadError) Unwrap() error { return e.err }

// done reports the result of an upload.
func (s *spool) done(it *spoolItem, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var bad *uploadError
	var fenced *fencedError
	switch {
	case errors.As(err, &fenced):
		for i, w := range s.waiting {
			if w == it {
				s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
				break
			}
		}
		s.fenceLocked(it, err)
	case err == nil || errors.As(err, &bad):
		for i, w := range s.waiting {
			if w == it {
				s.waiting = append(s.waiting[:i], s.waiting[i+1:]...)
				break
			}
		}
		if err == nil && s.pins[it.key] > 0 {
			s.held[it.key] = it // a reader has it: removed at the last unpin
		} else {
			s.removeFileLocked(it)
		}
		if err == nil {
			s.uploaded++
			s.backoff, s.retryAt, s.lastErr, s.failSince = 0, time.Time{}, "", time.Time{}
		} else {
			s.dropped++
			s.log.Error("recorder: segment unusable, dropped", "segment", it.key, "err", err)
		}
	default:
		it.busy = false
		s.uploadErrs++
		msg := err.Error()
		var sum summarizer
		if errors.As(err, &sum) {
			msg = sum.Summary()
		}
		if s.lastErr != msg {
			s.log.Error("recorder: upload failed, segments wait in the spool", "segment", it.key, "err", err)
		}
		s.lastErr, s.lastErrAt = msg, time.Now()
		if s.failSince.IsZero() {
			s.failSince = s.lastErrAt
		}
		if s.backoff == 0 {
			s.backoff = 500 * time.Millisecond
		} else {
			s.backoff = min(2*s.backoff, s.retryMax)
		}
		d := s.backoff/2 + rand.N(s.backoff/2+1)
		s.retryAt = time.Now().Add(d)
	}
	s.wakeLocked()
}

// drain makes next return nil once nothing is left to upload.
func (s *spool) drain() {
	s.mu.Lock()
	s.draining = true
	s.retryAt = time.Time{} // a last attempt for everything
	s.wakeLocked()
	s.mu.Unlock()
}

// recover finalizes the files left in the spool directory by an earlier run
// (closed, or cut off by a crash): each is truncated after its last complete
// fragment and queued for upload.
func (s *spool) recover() (int, error) {
	var n int
	err := filepath.WalkDir(s.dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p == filepath.Join(s.dir, FencedDir) {
			return filepath.SkipDir // kept for the operator, never uploaded
		}
		if !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return nil // hidden files: others' state (the cluster's), never segments
		}
		rel, err := filepath.Rel(s.dir, p)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if !archive.IsSegmentKey(key) {
			s.log.Warn("recorder: unknown file in the spool directory left alone", "path", p)
			return nil
		}
		it, err := finalizeSpoolFile(key, p)
		if err != nil {
			s.log.Error("recorder: spool file cannot be recovered, removed", "segment", key, "err", err)
			if rmErr := os.Remove(p); rmErr != nil {
				s.log.Warn("recorder: remove spool file", "segment", key, "err", rmErr)
			}
			s.mu.Lock()
			s.dropped++
			s.mu.Unlock()
			return nil
		}
		if it == nil {
			os.Remove(p) // only an init section: nothing recorded
			removeEmptyDirs(s.dir, filepath.Dir(p))
			return nil
		}
		s.bytes.Add(it.size)
		s.mu.Lock()
		s.insertLocked(it)
		s.mu.Unlock()
		n++
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return n, fmt.Errorf("recover spool %s: %w", s.dir, err)
	}
	s.wake()
	return n, nil
}

// finalizeSpoolFile scans a spool file, truncates it after its last complete
// fragment, and returns its queue item; nil when it holds no fragment.
func finalizeSpoolFile(key, p string) (*spoolItem, error) {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc, err := archive.ScanSegment(f)
	if err != nil {
		return nil, err
	}
	if len(sc.Fragments) == 0 {
		return nil, nil
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() != sc.Valid {
		if err := f.Truncate(sc.Valid); err != nil {
			return nil, fmt.Errorf("truncate: %w", err)
		}
		if err := f.Sync(); err != nil {
			return nil, fmt.Errorf("sync: %w", err)
		}
	}
	seg, err := archive.SegmentRow(key, sc)
	if err != nil {
		return nil, err
	}
	view := seg
	return &spoolItem{key: key, path: p, size: sc.Valid, start: seg.Start, seg: &seg, view: &view}, nil
}

// file returns the path of the spool file of key, which is there while the
// segment is written or waits for upload (or is held by a pin).
func (s *spool) file(key string) (string, error) {
	if !archive.IsSegmentKey(key) {
		return "", fmt.Errorf("%q is not a segment key", key)
	}
	return filepath.Join(s.dir, filepath.FromSlash(key)), nil
}

// read opens length bytes at off of the spool file of key; ok is false when
// the file is gone (uploaded and removed).
func (s *spool) read(key string, off, length int64) (rc io.ReadCloser, ok bool, err error) {
	p, err := s.file(key)
	if err != nil {
		return nil, false, err
	}
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	return &sectionFile{SectionReader: io.NewSectionReader(f, off, length), f: f}, true, nil
}

// sectionFile reads a section of a file and closes the file.
type sectionFile struct {
	*io.SectionReader
	f *os.File
}

func (s *sectionFile) Close() error { return s.f.Close() }

// summarizer is an error of the store that has a short sentence for people
// (archive.S3Error): the same failure repeated reads the same, so it is
// logged once and shown as Status.LastUploadError.
type summarizer interface {
	error
	Summary() string
}

// status fills the spool's part of Status.
func (s *spool) status(st *Status) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st.SpoolBytes = s.bytes.Load()
	st.SpoolDiskFree = s.diskFree.Load()
	st.Waiting = len(s.waiting)
	st.Dropped = s.dropped
	st.Uploaded = s.uploaded
	st.Fenced = s.fenced
	st.UploadErrors = s.uploadErrs
	st.LastUploadError = s.lastErr
	st.LastUploadErrorAt = s.lastErrAt
	st.UploadFailingSince = s.failSince
	for _, it := range s.waiting {
		if it != nil && (st.OldestWaiting.IsZero() || it.start.Before(st.OldestWaiting)) {
			st.OldestWaiting = it.start
		}
	}
}
