// Package archive is what the recorder leaves behind and the review reads:
// the segment and fragment types, the store key layout
// (<camera>/YYYY/MM/DD/HH-MM-SS.mmm.mp4, UTC), the object stores (a local
// directory and S3) behind the Store interface, and the index of segments
// (in SQLite or PostgreSQL, internal/sqldb) with its queries, including
// Reindex, which rebuilds the rows from the store. Crash recovery and Reindex compute a segment's row by parsing
// its file (ScanSegment, over internal/fmp4read); the recorder writes the row
// of a segment it wrote whole from its own fragment table, which is the same
// row (the recorder's TestWriterRowsEqualReindex checks it).
//
// The index also says whose a segment is: the incarnation of the camera
// that recorded it and the department it belonged to then, not merely the
// id it is filed under, which a later camera may reuse (see Own and
// incarnation.go).
//
// It neither writes segments (package recorder does) nor plays them
// (package review does); both sides import it, not each other.
package archive

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

// FileStore is a Store that can take a finished file by its path, so that
// the recorder need not stream it: the local store links it into place
// instead of copying it. The file is left where it is (the recorder
// removes it once the index knows the segment).
type FileStore interface {
	Store
	// PutFile stores the size bytes of the file at path under key, as Put
	// would with the file's contents. A failure to read the file itself
	// wraps ErrSourceFile (and the *fs.PathError).
	PutFile(ctx context.Context, key, path string, size int64, meta map[string]string) error
}

// ErrSourceFile marks a PutFile failure to read the file to store, as
// opposed to a failure of the store.
var ErrSourceFile = errors.New("file to store")

// ObjectInfo describes a stored object.
type ObjectInfo struct {
	Key      string
	Size     int64
	Modified time.Time
}
