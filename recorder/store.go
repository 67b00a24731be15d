package recorder

import (
	"context"
	"errors"
	"io"
	"time"
)

// ErrObjectNotFound is returned by a Store for a key that does not exist.
var ErrObjectNotFound = errors.New("object not found")

// Store is what the recorder needs of an object store: the local directory
// store and the S3 store implement it.
type Store interface {
	// Put writes an object of known size. meta is stored as object metadata
	// where the store supports it.
	Put(ctx context.Context, key string, r io.Reader, size int64, meta map[string]string) error
	// Get reads length bytes from offset; length < 0 reads to the end.
	// A missing key fails with an error that wraps ErrObjectNotFound.
	Get(ctx context.Context, key string, offset, length int64) (io.ReadCloser, error)
	// List calls fn for every object whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string, fn func(ObjectInfo) error) error
	// Delete removes an object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
}

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}
