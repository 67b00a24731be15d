package review

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// StoreError is a failure of the object store while a recording is read: the
// recording is indexed, but the store cannot give it now (an S3 outage, bad
// credentials, a failing disk). It is of kind apierr.ErrUnavailable (503), and
// its message gives the reason in plain words.
type StoreError struct {
	Err error // the store's error
}

func (e *StoreError) Error() string {
	reason := e.Err.Error()
	var s3 *archive.S3Error
	if errors.As(e.Err, &s3) {
		reason = s3.Summary()
	}
	return "the object store cannot be reached: " + reason
}

// Unwrap gives the kind and the store's error.
func (e *StoreError) Unwrap() []error { return []error{apierr.ErrUnavailable, e.Err} }

// storeFailed makes a store's error a *StoreError, unless the request itself
// ended (its context), which is no failure of the store.
func storeFailed(ctx context.Context, err error) error {
	if err == nil || ctx.Err() != nil || errors.Is(err, context.Canceled) {
		return err
	}
	return &StoreError{Err: err}
}

// storeBody reads a store object; a read that fails mid-way (the server went
// away) fails as a *StoreError.
type storeBody struct {
	io.ReadCloser
	ctx context.Context
	key string
}

func (b *storeBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil && err != io.EOF {
		err = storeFailed(b.ctx, fmt.Errorf("segment %s: %w", b.key, err))
	}
	return n, err
}

// storeErrorFirst returns the *StoreError inside err, if any, so that what
// the user reads begins with the reason; other errors are returned as they are.
func storeErrorFirst(err error) error {
	var se *StoreError
	if errors.As(err, &se) {
		return se
	}
	return err
}
