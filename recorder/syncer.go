package recorder

import (
	"context"
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
type syncer struct {
	log    *slog.Logger
	mu     sync.Mutex
	files  map[*syncFile]struct{}
	synced atomic.Int64 // fsyncs done, for tests
}

// syncFile is an open spool file known to the syncer.
type syncFile struct {
	key   string
	dirty atomic.Bool // written to since its last sync

	mu     sync.Mutex // held while syncing; closed under it
	f      *os.File
	closed bool
}

func newSyncer(log *slog.Logger) *syncer {
	return &syncer{log: log, files: map[*syncFile]struct{}{}}
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
		for _, sf := range files {
			s.sync(sf)
		}
		clear(files)
		files = files[:0]
	}
}

func (s *syncer) sync(sf *syncFile) {
	sf.mu.Lock()
	defer sf.mu.Unlock()
	if sf.closed || !sf.dirty.Swap(false) {
		return
	}
	if err := sf.f.Sync(); err != nil {
		s.log.Warn("recorder: spool sync", "segment", sf.key, "err", err)
	}
	s.synced.Add(1)
}
