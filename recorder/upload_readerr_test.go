package recorder

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/recorder/archive"
)

// TestUploadKeepsSegmentOnReadError: a spool file that cannot be read for
// a reason of the file system (here a read that fails with EISDIR; in
// production a descriptor limit or a disk error) waits for the next attempt.
// Only a file that is gone or does not parse is dropped.
func TestUploadKeepsSegmentOnReadError(t *testing.T) {
	rec := newLocal(t, Options{})
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		make    func(p string) error
		dropped bool
	}{
		{"unreadable", func(p string) error { return os.Mkdir(p, 0o750) }, false},
		{"not a segment", func(p string) error { return os.WriteFile(p, []byte("garbage, not an fMP4 file"), 0o640) }, true},
		{"gone", func(p string) error { return nil }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := archive.SegmentKey("cam-"+strings.ReplaceAll(tc.name, " ", "-"), time.Now())
			p := filepath.Join(rec.opts.SpoolDir, filepath.FromSlash(key))
			if err := os.MkdirAll(filepath.Dir(p), 0o750); err != nil {
				t.Fatal(err)
			}
			if err := tc.make(p); err != nil {
				t.Fatal(err)
			}
			before := rec.Status()
			rec.spool.grow(100)
			rec.spool.closed(key, p, 100)
			it := rec.spool.next(ctx)
			if it == nil || it.key != key {
				t.Fatalf("next: %+v", it)
			}
			uerr := rec.upload(ctx, it)
			rec.spool.done(it, uerr)
			st := rec.Status()
			if dropped := st.Dropped > before.Dropped; dropped != tc.dropped {
				t.Fatalf("upload error %v: dropped %v, want %v (status %+v)", uerr, dropped, tc.dropped, st)
			}
			if !tc.dropped {
				if st.Waiting != 1 || st.LastUploadError == "" {
					t.Fatalf("status %+v: the segment should wait with the error shown", st)
				}
				if _, err := os.Stat(p); err != nil {
					t.Fatalf("the spool file went: %v", err)
				}
				// clean up for the next case: the file is gone now
				os.Remove(p)
				rec.spool.mu.Lock()
				rec.spool.retryAt = time.Time{}
				rec.spool.mu.Unlock()
				it := rec.spool.next(ctx)
				rec.spool.done(it, rec.upload(ctx, it))
				if st := rec.Status(); st.Waiting != 0 {
					t.Fatalf("a gone file still waits: %+v", st)
				}
			}
		})
	}
}
