package review

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// During an S3 outage, playback and export of uploaded video fail with 503
// and a reason a person understands, not with a 500 "internal error".
func TestReviewS3Outage(t *testing.T) {
	endpoint, access, secret, bucket, stop, _ := testkit.StartS3(t)
	ctx := context.Background()
	s3, err := archive.NewS3Store(ctx, archive.S3Options{Endpoint: endpoint, Bucket: bucket, AccessKey: access, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
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
	_, err = rv.Export(ctx, "cam", reviewT0, reviewT0.Add(5*time.Second))
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
