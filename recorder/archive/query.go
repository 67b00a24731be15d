package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Index queries of playback. They use the (camera, start_ns) index
// only, so that a seek costs the same whatever the size of the archive.

// segmentCols are the columns of a row without its fragment list.
const segmentCols = "camera, start_ns, end_ns, bytes, key, init_size, camera_uid, department"

type rowScanner interface{ Scan(dest ...any) error }

// scanSegmentRow reads a row of segmentCols, and of fragments when
// withFragments.
func scanSegmentRow(r rowScanner, withFragments bool) (Segment, error) {
	var s Segment
	var startNS, endNS int64
	var frags []byte
	dest := []any{&s.Camera, &startNS, &endNS, &s.Bytes, &s.Key, &s.InitSize, &s.CameraUID, &s.Department}
	if withFragments {
		dest = append(dest, &frags)
	}
	if err := r.Scan(dest...); err != nil {
		return s, err
	}
	s.Start, s.End = time.Unix(0, startNS).UTC(), time.Unix(0, endNS).UTC()
	if withFragments {
		var err error
		if s.Fragments, err = decodeFragments(frags); err != nil {
			return s, fmt.Errorf("index segment %s: %w", s.Key, err)
		}
	}
	return s, nil
}

// query returns the camera's segments of the rows that also match where
// (with its ORDER BY and LIMIT), with their fragments when withFragments.
// With current, only the rows the review may show: those of the camera's
// current incarnation, and of the departments of ctx (WithDepartments).
func (ix *Index) query(ctx context.Context, camera string, withFragments, current bool, where string, args ...any) ([]Segment, error) {
	cols := segmentCols
	if withFragments {
		cols += ", fragments"
	}
	scope, scopeArgs := "", []any{camera}
	if current {
		scope, scopeArgs = reviewScope(ctx, camera)
	}
	rows, err := ix.db.Query(ctx, `SELECT `+cols+` FROM segments WHERE camera = ? `+scope+` AND `+where,
		append(scopeArgs, args...)...)
	if err != nil {
		return nil, fmt.Errorf("index query %s: %w", camera, err)
	}
	defer rows.Close()
	var out []Segment
	for rows.Next() {
		s, err := scanSegmentRow(rows, withFragments)
		if err != nil {
			return nil, fmt.Errorf("index query %s: %w", camera, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("index query %s: %w", camera, err)
	}
	return out, nil
}

// SegmentAt returns, with its fragments, the camera's segment (of its
// current incarnation, see Own, and of the departments of ctx) that
// contains t (Start <= t < End); ok is false when t falls in no segment.
func (ix *Index) SegmentAt(ctx context.Context, camera string, t time.Time) (Segment, bool, error) {
	scope, args := reviewScope(ctx, camera)
	row := ix.db.QueryRow(ctx, `SELECT `+segmentCols+`, fragments FROM segments
		WHERE camera = ? `+scope+` AND start_ns <= ? ORDER BY start_ns DESC LIMIT 1`, append(args, t.UnixNano())...)
	s, err := scanSegmentRow(row, true)
	if errors.Is(err, sql.ErrNoRows) {
		return Segment{}, false, nil
	}
	if err != nil {
		return Segment{}, false, fmt.Errorf("index query %s: %w", camera, err)
	}
	if !s.End.After(t) {
		return Segment{}, false, nil
	}
	return s, true, nil
}

// SegmentsAfter returns, with their fragments, up to limit of the
// camera's segments (of its current incarnation, and of the departments of
// ctx) that start in (after, before), oldest first.
func (ix *Index) SegmentsAfter(ctx context.Context, camera string, after, before time.Time, limit int) ([]Segment, error) {
	return ix.query(ctx, camera, true, true, `start_ns > ? AND start_ns < ? ORDER BY start_ns LIMIT ?`,
		after.UnixNano(), before.UnixNano(), limit)
}
