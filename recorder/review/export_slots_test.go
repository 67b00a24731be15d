package review

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/diskfree"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

// blockingStore holds every Get until release is closed, so that an export
// stays in preparation as long as the test wants.
type blockingStore struct {
	archive.Store
	entered chan struct{}
	release chan struct{}
}

func (b *blockingStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	select {
	case <-b.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return b.Store.Get(ctx, key, offset, length)
}

// Downloads in progress (two slow readers that keep their clips open) hold
// no global place: another user's export is prepared all the same. A user is
// limited to MaxExportsPerUser clips at once (429), and only preparing is
// bounded globally (503 while MaxExports are prepared). Temporary files go
// when the clips are closed.
func TestExportSlowDownloadsDoNotBlockOthers(t *testing.T) {
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	addReviewSegments(t, st, ix, "cam", reviewT0, 0, [][]byte{syntheticReviewSegment(t, 10*time.Second, 2000, 0)})
	rv := NewReview(st, ix, nil)
	rv.TempDir = t.TempDir()
	rv.ExportMemoryBytes = 1 // every clip is a temporary file
	rv.MaxExports = 2
	rv.MaxExportsPerUser = 2
	start, end := reviewT0, reviewT0.Add(8*time.Second)
	export := func(user string) (Export, error) {
		return rv.Export(WithUser(context.Background(), user), "cam", start, end)
	}

	// two slow readers, each reading one byte and then nothing more
	var open []Export
	for _, user := range []string{"alice", "bob"} {
		ex, err := export(user)
		if err != nil {
			t.Fatalf("%s: %v", user, err)
		}
		if _, err := io.ReadFull(ex.File, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		open = append(open, ex)
	}
	// a third user exports while both download
	carol, err := export("carol")
	if err != nil {
		t.Fatalf("a third user's export while two slow downloads run: %v", err)
	}
	if b, err := io.ReadAll(carol.File); err != nil || int64(len(b)) != carol.Size {
		t.Fatalf("carol read %d of %d bytes: %v", len(b), carol.Size, err)
	}
	carol.File.Close()

	// one user cannot hold more than MaxExportsPerUser
	second, err := export("alice")
	if err != nil {
		t.Fatalf("alice's second export: %v", err)
	}
	_, err = export("alice")
	if !errors.Is(err, apierr.ErrTooMany) || apierr.Status(err) != http.StatusTooManyRequests || !strings.Contains(err.Error(), "try again") {
		t.Fatalf("alice's third export: %v (status %d), want 429", err, apierr.Status(err))
	}
	if ex, err := export("dave"); err != nil {
		t.Fatalf("another user while alice is at her limit: %v", err)
	} else {
		ex.File.Close()
	}
	second.File.Close()
	if ex, err := export("alice"); err != nil {
		t.Fatalf("alice after closing one: %v", err)
	} else {
		ex.File.Close()
	}
	for _, ex := range open {
		ex.File.Close()
	}

	// preparing is bounded globally: with both places preparing, a third
	// user is told to try again (503); the places come back once prepared
	bs := &blockingStore{Store: st, entered: make(chan struct{}, 2), release: make(chan struct{})}
	rv2 := NewReview(bs, ix, nil)
	rv2.TempDir = rv.TempDir
	rv2.MaxExports = 2
	type result struct {
		ex  Export
		err error
	}
	done := make(chan result, 2)
	for _, user := range []string{"alice", "bob"} {
		go func() {
			ex, err := rv2.Export(WithUser(context.Background(), user), "cam", start, end)
			done <- result{ex, err}
		}()
	}
	<-bs.entered
	<-bs.entered
	_, err = rv2.Export(WithUser(context.Background(), "carol"), "cam", start, end)
	if !errors.Is(err, apierr.ErrUnavailable) || errors.Is(err, apierr.ErrTooMany) || apierr.Status(err) != http.StatusServiceUnavailable {
		t.Fatalf("an export while two are prepared: %v, want 503", err)
	}
	close(bs.release)
	for range 2 {
		r := <-done
		if r.err != nil {
			t.Fatal(r.err)
		}
		defer r.ex.File.Close() // downloads still open
	}
	ex, err := rv2.Export(WithUser(context.Background(), "carol"), "cam", start, end)
	if err != nil {
		t.Fatalf("after the two were prepared (and are being downloaded): %v", err)
	}
	ex.File.Close()
}

// The clips' temporary files are removed when closed.
func TestExportTempFilesRemoved(t *testing.T) {
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	addReviewSegments(t, st, ix, "cam", reviewT0, 0, [][]byte{syntheticReviewSegment(t, 10*time.Second, 2000, 0)})
	rv := NewReview(st, ix, nil)
	rv.TempDir = t.TempDir()
	rv.ExportMemoryBytes = 1
	var exs []Export
	for _, user := range []string{"a", "b", "c", "a"} {
		ex, err := rv.Export(WithUser(context.Background(), user), "cam", reviewT0, reviewT0.Add(4*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		exs = append(exs, ex)
	}
	if left, _ := os.ReadDir(rv.TempDir); len(left) != len(exs) {
		t.Fatalf("%d temporary files for %d open clips", len(left), len(exs))
	}
	for _, ex := range exs {
		ex.File.Close()
	}
	if left, _ := os.ReadDir(rv.TempDir); len(left) != 0 {
		t.Fatalf("closed clips left files: %v", left)
	}
}

// An export's temporary file may not take the free space that recording
// keeps on its disk (the spool may share it): the export is refused with
// 503 and a reason, and leaves no file.
func TestExportKeepsDiskReserve(t *testing.T) {
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	addReviewSegments(t, st, ix, "cam", reviewT0, 0, [][]byte{syntheticReviewSegment(t, 10*time.Second, 8000, 0)})
	rv := NewReview(st, ix, nil)
	rv.TempDir = t.TempDir()
	rv.ExportMemoryBytes = 1 << 20
	const total = 100 << 30
	var free uint64
	rv.diskSpace = func(string) (uint64, uint64, error) { return free, total, nil }
	reserve := diskfree.Reserve(total)

	free = reserve + 1<<20 // room for 1 MiB only; the clip is about 2 MB
	_, err := rv.Export(context.Background(), "cam", reviewT0, reviewT0.Add(10*time.Second))
	if !errors.Is(err, apierr.ErrUnavailable) || !strings.Contains(err.Error(), "too little free space") {
		t.Fatalf("export onto a disk at its reserve: %v", err)
	}
	if left, _ := os.ReadDir(rv.TempDir); len(left) != 0 {
		t.Fatalf("refused export left files: %v", left)
	}
	free = reserve + 100<<20
	ex, err := rv.Export(context.Background(), "cam", reviewT0, reviewT0.Add(10*time.Second))
	if err != nil {
		t.Fatalf("export with room: %v", err)
	}
	if ex.Size < 1<<20 {
		t.Fatalf("clip of %d bytes, want more than ExportMemoryBytes", ex.Size)
	}
	ex.File.Close()
}

// During an S3 outage, playback and export of uploaded video fail with 503
// and a reason a person understands, not with a 500 "internal error".
func TestReviewS3Outage(t *testing.T) {
	s3, endpoint, stop, _ := rectest.StartS3Store(t)
	ctx := context.Background()
	ix := openReviewIndex(t)
	addReviewSegments(t, s3, ix, "cam", reviewT0, 0, [][]byte{syntheticReviewSegment(t, 10*time.Second, 200, 0)})
	rv := NewReview(s3, ix, nil)
	rv.TempDir = t.TempDir()
	if err := rv.Playback(ctx, io.Discard, "cam", reviewT0, 5*time.Second); err != nil {
		t.Fatalf("playback before the outage: %v", err)
	}
	stop()

	check := func(what string, err error) {
		t.Helper()
		if err == nil {
			t.Fatalf("%s during the outage: no error", what)
		}
		if got := apierr.Status(err); got != http.StatusServiceUnavailable {
			t.Errorf("%s during the outage: status %d (%v), want 503", what, got, err)
		}
		var se *StoreError
		if !errors.As(err, &se) {
			t.Errorf("%s: %v is no *StoreError", what, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "the object store cannot be reached: ") || !strings.Contains(msg, endpoint+" is unreachable") {
			t.Errorf("%s: message %q does not say the store is unreachable", what, msg)
		}
	}
	check("playback", rv.Playback(ctx, io.Discard, "cam", reviewT0, 5*time.Second))
	_, err := rv.Export(ctx, "cam", reviewT0, reviewT0.Add(5*time.Second))
	check("export", err)

	// a request that ends by itself is no store failure
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := rv.Playback(cctx, io.Discard, "cam", reviewT0, 5*time.Second); errors.As(err, new(*StoreError)) {
		t.Errorf("a cancelled playback reported as a store failure: %v", err)
	}
}

// brokenBodyStore gives bodies that fail after a few bytes, as when the
// S3 server goes away during a read.
type brokenBodyStore struct{ archive.Store }

func (s brokenBodyStore) Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error) {
	rc, err := s.Store.Get(ctx, key, offset, length)
	if err != nil {
		return nil, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, 100), iotestErrReader{}), rc}, nil
}

type iotestErrReader struct{}

func (iotestErrReader) Read([]byte) (int, error) {
	return 0, errors.New("read tcp 127.0.0.1:1->127.0.0.1:2: connection reset by peer")
}

// A store that fails in the middle of a read fails the export with 503 too.
func TestExportStoreFailsMidRead(t *testing.T) {
	st, ix := newReviewLocalStore(t), openReviewIndex(t)
	addReviewSegments(t, st, ix, "cam", reviewT0, 0, [][]byte{syntheticReviewSegment(t, 10*time.Second, 200, 0)})
	rv := NewReview(brokenBodyStore{st}, ix, nil)
	rv.TempDir = t.TempDir()
	_, err := rv.Export(context.Background(), "cam", reviewT0, reviewT0.Add(5*time.Second))
	if apierr.Status(err) != http.StatusServiceUnavailable || !strings.HasPrefix(err.Error(), "the object store cannot be reached: segment cam/") ||
		!strings.Contains(err.Error(), "connection reset by peer") {
		t.Fatalf("export over a failing read: %v (status %d)", err, apierr.Status(err))
	}
}
