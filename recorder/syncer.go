package recorder

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// syncer fsyncs the open spool files of all the camera writers, one file
// after another from one goroutine, every syncEvery: a file written to since
// its last sync is synced within syncEvery, so that a power cut loses at most
// the fragment in progress (about 1 s) and the second before it, as when
// each writer synced its own file. One goroutine instead of one per camera
// keeps the fsyncs off the writers' path (a writer does not wait for the
// disk while its queue fills) and bounds the OS threads blocked in fsync to
// one, where 200 writers syncing at once held up to one thread each.
//
// When several files are due, one syncfs(2) of the spool's file system
// syncs them all (Linux): one journal commit and one system call a round
// instead of one per camera (200 fsyncs a second at 200 cameras). The
// kernel then writes the pages back from its flusher threads, so part of
// the writeback's CPU no longer counts to Vigil's own. Where syncfs is
// missing, or fails (its error names no file), each file is fsynced.
type syncer struct {
	log    *slog.Logger
	disk   diskGate
	dir    string // the spool directory: its file system is synced
	mu     sync.Mutex
	files  map[*syncFile]struct{}
	synced atomic.Int64 // files synced, for tests
	fsyncs atomic.Int64 // syncfs calls that synced them, for tests
}

// syncFile is an open spool file known to the syncer.
type syncFile struct {
	key   string
	dirty atomic.Bool // written to since its last sync

	mu     sync.Mutex // held while syncing; closed under it
	f      *os.File
	closed bool
}

func newSyncer(log *slog.Logger, disk diskGate, dir string) *syncer {
	return &syncer{log: log, disk: disk, dir: dir, files: map[*syncFile]struct{}{}}
}

// add registers an open spool file.
func (s *syncer) add(f *os.File, key string) *syncFile {
	sf := &syncFile{key: key, f: f}
	s.mu.Lock()
	s.files[sf] = struct{}{}
	s.mu.Unlock()
	return sf
}

// remove forgets a spool file before its writer syncs and closes it: once
// it returns, the syncer does not touch the file.
func (s *syncer) remove(sf *syncFile) {
	if sf == nil {
		return
	}
	s.mu.Lock()
	delete(s.files, sf)
	s.mu.Unlock()
	sf.mu.Lock()
	sf.closed = true
	sf.mu.Unlock()
}

// run syncs the files written to every syncEvery until ctx ends.
func (s *syncer) run(ctx context.Context) {
	t := time.NewTicker(syncEvery)
	defer t.Stop()
	var fs *os.File // the spool directory, for syncfs
	if d, err := os.Open(s.dir); err == nil {
		fs = d
		defer d.Close()
	}
	var files []*syncFile
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.mu.Lock()
		for sf := range s.files {
			if sf.dirty.Load() {
				files = append(files, sf)
			}
		}
		s.mu.Unlock()
		if len(files) < 2 || !s.syncAll(fs, files) {
			for _, sf := range files {
				s.sync(sf)
			}
		}
		clear(files)
		files = files[:0]
	}
}

// syncAll syncs files with one syncfs of the spool's file system. It
// returns false, the files still dirty, when that cannot be done.
func (s *syncer) syncAll(fs *os.File, files []*syncFile) bool {
	if fs == nil {
		return false
	}
	// written to after this are synced next round
	for _, sf := range files {
		sf.dirty.Store(false)
	}
	s.disk.enter()
	err := syncfs(fs)
	s.disk.leave()
	if err != nil {
		for _, sf := range files {
			sf.dirty.Store(true)
		}
		if !errors.Is(err, errors.ErrUnsupported) {
			s.log.Warn("recorder: spool sync of the file system failed; syncing each file", "dir", s.dir, "err", err)
		}
		return false
	}
	s.fsyncs.Add(1)
	s.synced.Add(int64(len(files)))
	return true
}

func (s *syncer) sync(sf *syncFile) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if sf.closed || !sf.dirty.Swap(false) {
		return
	}
	s.disk.enter()
	err := sf.f.Sync()
	s.disk.leave()
	if err != nil {
		s.log.Warn("recorder: spool sync", "segment", sf.key, "err", err)
	}
	s.synced.Add(1)
}

// diskSlots bounds the camera writers' file system calls in progress at
// once (writes, creates, fsyncs and closes of spool files).
const diskSlots = 4

// diskGate bounds the goroutines inside a blocking file system call. Each
// such call holds an OS thread for as long as it blocks, and the Go runtime
// keeps a thread it started: 200 writers writing at once left dozens of
// threads behind. Writes go to the page cache and take microseconds, so a
// few slots do not hold the writers back; a writer waiting for a slot holds
// no thread.
type diskGate chan struct{}

func (g diskGate) enter() {
	if g != nil {
		g <- struct{}{}
	}
}

func (g diskGate) leave() {
	if g != nil {
		<-g
	}
}
