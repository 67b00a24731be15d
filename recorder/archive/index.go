package archive

import (
	"context"
	"embed"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/recorder/internal/fmp4read"
)

// Segment is one recorded fMP4 file in the store, as the index knows it.
type Segment struct {
	Camera string
	// CameraUID is the incarnation of the camera that recorded the segment
	// (see Own), and Department its department then; both are "" for an
	// orphan: a segment of no known incarnation.
	CameraUID  string
	Department string
	Start      time.Time // first sample's wall-clock time
	End        time.Time // end of the last sample
	Bytes      int64
	Key        string
	// InitSize is the length of the init section (ftyp+moov) at the start of the file.
	InitSize int64
	// Fragments lists every moof+mdat of the file, in order.
	Fragments []Fragment
}

// Fragment is one moof+mdat pair inside a segment file: its start time from
// the segment's Start (Offset), the byte offset of its moof (Pos), its size
// in bytes (Size), and whether its first video sample is a keyframe. It is
// the fragment as the fMP4 reader finds it, so that the index and playback
// cannot disagree about where keyframes are.
type Fragment = fmp4read.Fragment

// Index is the recordings index, in the server's database (SQLite or
// PostgreSQL, see internal/sqldb).
type Index struct {
	db    *sqldb.DB
	fence atomic.Pointer[Fence]
}

// Fence is checked by every transaction that adds or changes segment rows of
// a camera, before it commits (see SetFence).
type Fence func(ctx context.Context, tx *sqldb.Tx, camera string) error

//go:embed migrations
var migrationFiles embed.FS

// migrations are the index's tables. Legacy "recorder": the steps
// sqlitedb.Migrate ran before goose are the SQLite files 00001 and 00002.
var migrations = sqldb.Migrations{Component: "recorder", FS: migrationFiles, Dir: "migrations", Legacy: "recorder"}

// OpenIndex migrates the index tables in db and returns the index.
func OpenIndex(ctx context.Context, db *sqldb.DB) (*Index, error) {
	if err := db.Migrate(ctx, migrations); err != nil {
		return nil, err
	}
	return &Index{db: db}, nil
}

// SetFence sets the check that every transaction adding or changing segment
// rows of a camera (Add, hence upload, crash recovery and Reindex) makes
// before it commits: f(ctx, tx, camera) is called once per camera of the
// transaction, and an error rolls the transaction back and is returned
// wrapped (errors.Is finds it). The cluster runtime passes a lease check
// (lease.CheckTx), so that a node that lost a camera cannot write its rows.
// nil removes the check. Own, Disown, Delete (retention, which runs on one
// node for the cluster) and AdoptOrphans are not fenced: they follow the
// registry and retention, not the camera's recording.
func (ix *Index) SetFence(f func(ctx context.Context, tx *sqldb.Tx, camera string) error) {
	if f == nil {
		ix.fence.Store(nil)
		return
	}
	fence := Fence(f)
	ix.fence.Store(&fence)
}

// checkFence runs the fence, if any, for each camera of a transaction.
func (ix *Index) checkFence(ctx context.Context, tx *sqldb.Tx, cameras []string) error {
	f := ix.fence.Load()
	if f == nil {
		return nil
	}
	for _, c := range cameras {
		if err := (*f)(ctx, tx, c); err != nil {
			return fmt.Errorf("index: camera %s: %w", c, err)
		}
	}
	return nil
}

// Add inserts segments, or replaces the rows with the same keys, in one
// transaction. Each row is attributed to the incarnation of its camera, and
// the department, of the period (see Own) in which it started, whatever the
// Segment's CameraUID and Department say: a row's owner follows from its
// camera and time alone, so that rows written at upload, at crash recovery
// and by Reindex agree. A segment of no known period is an orphan.
func (ix *Index) Add(ctx context.Context, segs ...Segment) error {
	tx, err := ix.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("index: %w", err)
	}
	defer tx.Rollback()
	var cameras []string
	for _, s := range segs {
		if !slices.Contains(cameras, s.Camera) {
			cameras = append(cameras, s.Camera)
		}
		uid, dept, err := periodAt(ctx, tx, s.Camera, s.Start)
		if err != nil {
			return fmt.Errorf("index segment %s: %w", s.Key, err)
		}
		_, err = tx.Exec(ctx, `INSERT INTO segments(camera, start_ns, end_ns, bytes, key, init_size, fragments, camera_uid, department)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT(key) DO UPDATE SET camera=excluded.camera, start_ns=excluded.start_ns, end_ns=excluded.end_ns,
				bytes=excluded.bytes, init_size=excluded.init_size, fragments=excluded.fragments,
				camera_uid=excluded.camera_uid, department=excluded.department`,
			s.Camera, s.Start.UnixNano(), s.End.UnixNano(), s.Bytes, s.Key, s.InitSize, encodeFragments(s.Fragments), uid, dept)
		if err != nil {
			return fmt.Errorf("index segment %s: %w", s.Key, err)
		}
	}
	if err := ix.checkFence(ctx, tx, cameras); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index: %w", err)
	}
	return nil
}

// Segments returns the camera's segments that overlap [start, end), oldest
// first: those of the camera's current incarnation (see Own), and of the
// departments of ctx (WithDepartments). withFragments loads the fragment
// lists too.
func (ix *Index) Segments(ctx context.Context, camera string, start, end time.Time, withFragments bool) ([]Segment, error) {
	return ix.query(ctx, camera, withFragments, true, `end_ns > ? AND start_ns < ? ORDER BY start_ns`,
		start.UnixNano(), end.UnixNano())
}

// Delete removes the row of a key.
func (ix *Index) Delete(ctx context.Context, key string) error {
	if _, err := ix.db.Exec(ctx, `DELETE FROM segments WHERE key = ?`, key); err != nil {
		return fmt.Errorf("index delete %s: %w", key, err)
	}
	return nil
}

// encodeFragments packs fragments as varints: offset (µs, delta), pos (delta), size, keyframe.
func encodeFragments(fs []Fragment) []byte {
	buf := make([]byte, 0, len(fs)*8)
	var prevOff time.Duration
	var prevPos int64
	for _, f := range fs {
		buf = binary.AppendVarint(buf, int64((f.Offset-prevOff)/time.Microsecond))
		buf = binary.AppendVarint(buf, f.Pos-prevPos)
		buf = binary.AppendUvarint(buf, uint64(f.Size))
		k := uint64(0)
		if f.Keyframe {
			k = 1
		}
		buf = binary.AppendUvarint(buf, k)
		prevOff, prevPos = f.Offset, f.Pos
	}
	return buf
}

var errBadFragments = errors.New("corrupt fragment list")

func decodeFragments(b []byte) ([]Fragment, error) {
	var out []Fragment
	var off time.Duration
	var pos int64
	for len(b) > 0 {
		dOff, n := binary.Varint(b)
		if n <= 0 {
			return nil, errBadFragments
		}
		b = b[n:]
		dPos, n := binary.Varint(b)
		if n <= 0 {
			return nil, errBadFragments
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 || size > 1<<40 {
			return nil, errBadFragments
		}
		b = b[n:]
		k, n := binary.Uvarint(b)
		if n <= 0 || k > 1 {
			return nil, errBadFragments
		}
		b = b[n:]
		off += time.Duration(dOff) * time.Microsecond
		pos += dPos
		out = append(out, Fragment{Offset: off, Pos: pos, Size: int64(size), Keyframe: k == 1})
	}
	return out, nil
}

// Cameras returns the cameras that have segments in the index.
func (ix *Index) Cameras(ctx context.Context) ([]string, error) {
	rows, err := ix.db.Query(ctx, `SELECT DISTINCT camera FROM segments ORDER BY camera`)
	if err != nil {
		return nil, fmt.Errorf("index cameras: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, fmt.Errorf("index cameras: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CameraBytes returns the bytes of a camera's segments.
func (ix *Index) CameraBytes(ctx context.Context, camera string) (int64, error) {
	var n int64
	if err := ix.db.QueryRow(ctx, `SELECT COALESCE(SUM(bytes), 0) FROM segments WHERE camera = ?`, camera).Scan(&n); err != nil {
		return 0, fmt.Errorf("index bytes %s: %w", camera, err)
	}
	return n, nil
}

// OldestOwned is Oldest for the segments of the camera id's incarnation uid
// (owned), or for the others: its other incarnations' and its orphans.
func (ix *Index) OldestOwned(ctx context.Context, camera, uid string, owned bool, before time.Time, limit int) ([]Segment, error) {
	op := "="
	if !owned {
		op = "<>"
	}
	return ix.query(ctx, camera, false, false, `camera_uid `+op+` ? AND end_ns <= ? ORDER BY start_ns LIMIT ?`,
		uid, before.UnixNano(), limit)
}

// Oldest returns up to limit of a camera id's segments that end before
// before, oldest first, without fragment lists: of every incarnation, for
// retention.
func (ix *Index) Oldest(ctx context.Context, camera string, before time.Time, limit int) ([]Segment, error) {
	return ix.query(ctx, camera, false, false, `end_ns <= ? ORDER BY start_ns LIMIT ?`, before.UnixNano(), limit)
}
