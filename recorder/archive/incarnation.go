package archive

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Recordings belong to the camera that made them, not to its id.
//
// The store files a segment under the camera's id (the key layout is fixed),
// and an id is free again once its camera is deleted, so the id alone cannot
// say whose a segment is. The registry therefore gives every camera an
// incarnation uid at creation that is never reused, and the index keeps,
// per camera id, the periods during which an incarnation owned the id, each
// with the department the camera belonged to (table camera_periods):
//
//   - Own, when a camera is created, loaded at start or changed: opens a
//     period for its incarnation (from the camera's creation, or where the
//     previous period of the id ended, whichever is later), or a new one of
//     the same incarnation when the camera moved to another department;
//   - Disown, when a camera is deleted: ends its open period.
//
// Every row the index writes (Add, hence upload, crash recovery and
// Reindex) carries the uid and department of the period in which its
// segment started; a segment of no period is an orphan (uid ""). The review
// queries (Segments, SegmentAt, SegmentsAfter) return only the rows of the
// id's current incarnation, so a camera created under a deleted camera's id
// starts with an empty archive; with WithDepartments they also keep only the
// rows recorded under the caller's departments. The rows of a deleted
// incarnation, and orphans, stay in the index and the store: retention
// deletes them by the default retention, as any deleted camera's (OldestOwned;
// incidents on the id still hold them), Reindex attributes them again by the periods, and OwnerSegments
// lists them for an administrator. An id the index has no period for (a
// camera never given to Own: tests, tools) shows its rows as before
// incarnations existed.

// Owner is one incarnation of a camera, as the registry knows it.
type Owner struct {
	Camera     string
	UID        string
	Department string
	// Since is when the incarnation began to own the id: its creation, or
	// zero for a camera registered before incarnations existed, which owns
	// every older segment of its id.
	Since time.Time
}

// Own records that o's incarnation owns o.Camera from now on, in
// o.Department, as of at (the time of the change). It is idempotent: owning
// again with the same incarnation and department changes nothing. When the
// id's open period belongs to another incarnation (its deletion was never
// told), that period ends first. The orphan rows of the id that fall in the
// new period are adopted (the migration's rows of cameras that existed
// before incarnations). An owner without a UID is ignored.
//
// orphansBefore is, when Own opened a period, the number of orphan rows of
// the id from before it: recordings no camera shows (after a database was
// lost, see AdoptOrphans), for the caller to say so.
func (ix *Index) Own(ctx context.Context, o Owner, at time.Time) (orphansBefore int64, err error) {
	if o.UID == "" {
		return 0, nil
	}
	tx, err := ix.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("index: camera %s: %w", o.Camera, err)
	}
	defer tx.Rollback()
	if err := lockCamera(ctx, tx, o.Camera); err != nil {
		return 0, fmt.Errorf("index: camera %s: %w", o.Camera, err)
	}
	opened, err := own(ctx, tx, o, at.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("index: camera %s: %w", o.Camera, err)
	}
	if opened {
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM segments WHERE camera = ? AND camera_uid = ''`,
			o.Camera).Scan(&orphansBefore); err != nil {
			return 0, fmt.Errorf("index: camera %s: %w", o.Camera, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("index: camera %s: %w", o.Camera, err)
	}
	return orphansBefore, nil
}

// lockCamera makes the transactions that change a camera's periods take
// turns: on PostgreSQL with a transaction-level advisory lock on the camera
// id (a row lock cannot hold a period that does not exist yet); SQLite's
// transactions take the database's write lock when they begin.
func lockCamera(ctx context.Context, tx *sqldb.Tx, camera string) error {
	if tx.Dialect != sqldb.Postgres {
		return nil
	}
	_, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('vigil_camera_periods'), hashtext(?))`, camera)
	return err
}

// own opens a period of o unless its open period is o's already; opened
// tells whether it did.
func own(ctx context.Context, tx *sqldb.Tx, o Owner, at int64) (opened bool, err error) {
	var uid, dept string
	var since int64
	err = tx.QueryRow(ctx, `SELECT uid, department, since_ns FROM camera_periods
		WHERE camera = ? AND until_ns IS NULL`, o.Camera).Scan(&uid, &dept, &since)
	open := err == nil
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return false, err
	}
	if open && uid == o.UID && dept == o.Department {
		return false, nil
	}
	var start int64
	if !o.Since.IsZero() {
		start = o.Since.UnixNano()
	}
	if open {
		end := at
		if uid == o.UID {
			start = at // moved to another department: a new period from now
		} else if start > since && start < end {
			end = start // the other incarnation ended when this one began
		}
		if end < since {
			end = since
		}
		if _, err := tx.Exec(ctx, `UPDATE camera_periods SET until_ns = ?
			WHERE camera = ? AND until_ns IS NULL`, end, o.Camera); err != nil {
			return false, err
		}
	}
	// never before the end of an earlier period of the id
	var last sql.NullInt64
	if err := tx.QueryRow(ctx, `SELECT MAX(until_ns) FROM camera_periods WHERE camera = ?`,
		o.Camera).Scan(&last); err != nil {
		return false, err
	}
	if last.Valid && last.Int64 > start {
		start = last.Int64
	}
	if _, err := tx.Exec(ctx, `INSERT INTO camera_periods(camera, uid, department, since_ns, until_ns)
		VALUES(?, ?, ?, ?, NULL)`, o.Camera, o.UID, o.Department, start); err != nil {
		return false, err
	}
	_, err = tx.Exec(ctx, `UPDATE segments SET camera_uid = ?, department = ?
		WHERE camera = ? AND camera_uid = '' AND start_ns >= ?`, o.UID, o.Department, o.Camera, start)
	return err == nil, err
}

// Disown records that the camera's current incarnation stopped owning its
// id at at (the camera was deleted): its segments stay, attributed to it,
// and a camera created later under the id does not see them.
func (ix *Index) Disown(ctx context.Context, camera string, at time.Time) error {
	tx, err := ix.db.Begin(ctx)
	if err != nil {
		return fmt.Errorf("index: camera %s: %w", camera, err)
	}
	defer tx.Rollback()
	if err := lockCamera(ctx, tx, camera); err != nil {
		return fmt.Errorf("index: camera %s: %w", camera, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE camera_periods SET until_ns = CASE WHEN since_ns > ?1 THEN since_ns ELSE ?1 END
		WHERE camera = ?2 AND until_ns IS NULL`, at.UnixNano(), camera); err != nil {
		return fmt.Errorf("index: camera %s: %w", camera, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("index: camera %s: %w", camera, err)
	}
	return nil
}

// periodAt returns the incarnation and department of the period of the
// camera that contains t; "" and "" when none does (an orphan).
func periodAt(ctx context.Context, tx *sqldb.Tx, camera string, t time.Time) (uid, dept string, err error) {
	ns := t.UnixNano()
	err = tx.QueryRow(ctx, `SELECT uid, department FROM camera_periods
		WHERE camera = ? AND since_ns <= ? AND (until_ns IS NULL OR until_ns > ?)
		ORDER BY since_ns DESC LIMIT 1`, camera, ns, ns).Scan(&uid, &dept)
	if errors.Is(err, sql.ErrNoRows) {
		return "", "", nil
	}
	return uid, dept, err
}

// currentOwner is the condition of the review queries on a row of the
// camera (the argument): it belongs to the camera's current incarnation;
// with no period at all for the camera, to no incarnation (as before
// incarnations); with periods but none open (deleted), to none.
const currentOwner = `camera_uid = COALESCE(
	(SELECT uid FROM camera_periods WHERE camera = ? AND until_ns IS NULL),
	CASE WHEN EXISTS (SELECT 1 FROM camera_periods WHERE camera = ?) THEN NULL ELSE '' END)`

// reviewScope returns the condition (from "AND") and the arguments, the
// camera first, of the rows of the camera the review may show: of its
// current incarnation and of the departments of ctx.
func reviewScope(ctx context.Context, camera string) (string, []any) {
	scope, args := "AND "+currentOwner, []any{camera, camera, camera}
	if depts := departments(ctx); len(depts) > 0 {
		// "": a row of an id the index knows no owner of (shown as before
		// incarnations; the caller checked the camera's department)
		scope += " AND department IN ('', ?" + strings.Repeat(", ?", len(depts)-1) + ")"
		for _, d := range depts {
			args = append(args, d)
		}
	}
	return scope, args
}

type departmentsKey struct{}

// WithDepartments returns a context under which the review queries
// (Segments, SegmentAt, SegmentsAfter, Visible) keep only the segments
// recorded while their camera belonged to one of depts: a user limited to
// departments does not see what a camera recorded before it moved to one of
// theirs. No departments means all of them.
func WithDepartments(ctx context.Context, depts []string) context.Context {
	return context.WithValue(ctx, departmentsKey{}, slices.Clone(depts))
}

func departments(ctx context.Context) []string {
	d, _ := ctx.Value(departmentsKey{}).([]string)
	return d
}

// Visible tells whether a segment of the camera that starts at start, not
// indexed yet (still in the recorder's spool), is one the review queries
// would show under ctx: one of the camera's current incarnation and of the
// departments of ctx, by the period it started in.
func (ix *Index) Visible(ctx context.Context, camera string, start time.Time) (bool, error) {
	ns := start.UnixNano()
	var uid, dept sql.NullString
	var known bool
	err := ix.db.QueryRow(ctx, `SELECT
		(SELECT uid FROM camera_periods WHERE camera = ?1 AND since_ns <= ?2 AND (until_ns IS NULL OR until_ns > ?2)
			AND uid = (SELECT uid FROM camera_periods WHERE camera = ?1 AND until_ns IS NULL)
			ORDER BY since_ns DESC LIMIT 1),
		(SELECT department FROM camera_periods WHERE camera = ?1 AND since_ns <= ?2 AND (until_ns IS NULL OR until_ns > ?2)
			ORDER BY since_ns DESC LIMIT 1),
		EXISTS (SELECT 1 FROM camera_periods WHERE camera = ?1)`, camera, ns).Scan(&uid, &dept, &known)
	if err != nil {
		return false, fmt.Errorf("index: camera %s: %w", camera, err)
	}
	if !known {
		return true, nil // as before incarnations (see reviewScope)
	}
	if !uid.Valid {
		return false, nil
	}
	depts := departments(ctx)
	return len(depts) == 0 || slices.Contains(depts, dept.String), nil
}

// CurrentSince returns when the camera's current incarnation began to own
// its id (the start of its first period; zero for one that owns every older
// recording of the id); ok is false when no camera owns the id now, as far as
// the index was told. What else is kept per camera id (availability's
// offline periods) starts there too.
func (ix *Index) CurrentSince(ctx context.Context, camera string) (since time.Time, ok bool, err error) {
	var ns sql.NullInt64
	err = ix.db.QueryRow(ctx, `SELECT MIN(since_ns) FROM camera_periods
		WHERE camera = ?1 AND uid = (SELECT uid FROM camera_periods WHERE camera = ?1 AND until_ns IS NULL)`,
		camera).Scan(&ns)
	if err != nil {
		return time.Time{}, false, fmt.Errorf("index: camera %s: %w", camera, err)
	}
	if !ns.Valid {
		return time.Time{}, false, nil
	}
	if ns.Int64 == 0 {
		return time.Time{}, true, nil
	}
	return time.Unix(0, ns.Int64).UTC(), true, nil
}

// OwnerSegments returns, for an administrator, the segments of the camera id
// that overlap [start, end) and belong to the incarnation uid — "" for the
// orphans — whether or not that incarnation still exists, oldest first,
// without fragment lists. It is how the recordings of a deleted camera are
// found again: Owners lists the incarnations an id has had.
func (ix *Index) OwnerSegments(ctx context.Context, camera, uid string, start, end time.Time) ([]Segment, error) {
	return ix.query(ctx, camera, false, false, `camera_uid = ? AND end_ns > ? AND start_ns < ? ORDER BY start_ns`,
		uid, start.UnixNano(), end.UnixNano())
}

// Period is one period of an incarnation of a camera id (see Own).
type Period struct {
	Owner
	Until time.Time // zero while it lasts
}

// Owners returns the periods of the camera id, oldest first: the
// incarnations it has had, with their departments.
func (ix *Index) Owners(ctx context.Context, camera string) ([]Period, error) {
	rows, err := ix.db.Query(ctx, `SELECT uid, department, since_ns, until_ns FROM camera_periods
		WHERE camera = ? ORDER BY since_ns, id`, camera)
	if err != nil {
		return nil, fmt.Errorf("index: camera %s: %w", camera, err)
	}
	defer rows.Close()
	var out []Period
	for rows.Next() {
		p := Period{Owner: Owner{Camera: camera}}
		var since int64
		var until sql.NullInt64
		if err := rows.Scan(&p.UID, &p.Department, &since, &until); err != nil {
			return nil, fmt.Errorf("index: camera %s: %w", camera, err)
		}
		if since != 0 {
			p.Since = time.Unix(0, since).UTC()
		}
		if until.Valid {
			p.Until = time.Unix(0, until.Int64).UTC()
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// Orphans returns the number of orphan rows (of no incarnation) of the
// camera ids the index knows owners of: rows that no camera shows.
func (ix *Index) Orphans(ctx context.Context) (int64, error) {
	var n int64
	if err := ix.db.QueryRow(ctx, `SELECT COUNT(*) FROM segments
		WHERE camera_uid = '' AND camera IN (SELECT camera FROM camera_periods)`).Scan(&n); err != nil {
		return 0, fmt.Errorf("index orphans: %w", err)
	}
	return n, nil
}

// AdoptOrphans gives the orphan rows of every camera id to the camera that
// has the id now: each current incarnation's first period is extended back
// to the end of the id's previous incarnation (or to the beginning), and the
// orphans in between become its own, in the department of that first
// period. It is for a database lost without a backup (vigil reindex
// --adopt-orphans): the cameras registered again are new incarnations, and
// the store alone cannot tell whose a file was. It returns the number of
// rows adopted.
func (ix *Index) AdoptOrphans(ctx context.Context) (int64, error) {
	tx, err := ix.db.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("index adopt: %w", err)
	}
	defer tx.Rollback()
	type first struct {
		camera, uid, dept string
		since             int64
	}
	rows, err := tx.Query(ctx, `SELECT p.camera, p.uid, p.department, p.since_ns FROM camera_periods p
		JOIN camera_periods o ON o.camera = p.camera AND o.uid = p.uid AND o.until_ns IS NULL
		WHERE p.since_ns = (SELECT MIN(since_ns) FROM camera_periods q WHERE q.camera = p.camera AND q.uid = p.uid)`+
		tx.Dialect.ForUpdate())
	if err != nil {
		return 0, fmt.Errorf("index adopt: %w", err)
	}
	var firsts []first
	for rows.Next() {
		var f first
		if err := rows.Scan(&f.camera, &f.uid, &f.dept, &f.since); err != nil {
			rows.Close()
			return 0, fmt.Errorf("index adopt: %w", err)
		}
		firsts = append(firsts, f)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("index adopt: %w", err)
	}
	var n int64
	for _, f := range firsts {
		var from int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(until_ns), 0) FROM camera_periods
			WHERE camera = ? AND uid <> ? AND until_ns <= ?`, f.camera, f.uid, f.since).Scan(&from); err != nil {
			return 0, fmt.Errorf("index adopt %s: %w", f.camera, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE camera_periods SET since_ns = ?
			WHERE camera = ? AND uid = ? AND since_ns = ?`, from, f.camera, f.uid, f.since); err != nil {
			return 0, fmt.Errorf("index adopt %s: %w", f.camera, err)
		}
		res, err := tx.Exec(ctx, `UPDATE segments SET camera_uid = ?, department = ?
			WHERE camera = ? AND camera_uid = '' AND start_ns >= ? AND start_ns < ?`, f.uid, f.dept, f.camera, from, f.since)
		if err != nil {
			return 0, fmt.Errorf("index adopt %s: %w", f.camera, err)
		}
		k, _ := res.RowsAffected()
		n += k
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("index adopt: %w", err)
	}
	return n, nil
}
