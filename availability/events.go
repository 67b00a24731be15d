package availability

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Event types on a camera's timeline.
const (
	// EventOffline is a period the camera was offline: Vigil tried to pull
	// it and failed.
	EventOffline = "offline"
)

// Event is something that happened to a camera over a period, for the
// playback timeline.
type Event struct {
	Type  string    `json:"type"`
	Start time.Time `json:"start"`
	// End is nil while the event lasts (the camera is still offline).
	End     *time.Time `json:"end"`
	Message string     `json:"message"`
}

// sampleOffline opens an offline period for a camera seen offline without
// one, and closes the open period of a camera seen online, disabled or no
// longer registered. A period starts when the camera's state changed (its
// Since), not at the sample that noticed it; it ends when the camera came
// back, or at the sample that saw it gone.
func (t *Tracker) sampleOffline(ctx context.Context, tx *sqldb.Tx, sts []ingest.Status, now time.Time) error {
	open := map[string]int64{} // camera → start_ms of its open period
	rows, err := tx.Query(ctx, `SELECT camera, start_ms FROM offline WHERE end_ms IS NULL`+tx.Dialect.ForUpdate())
	if err != nil {
		return err
	}
	for rows.Next() {
		var cam string
		var start int64
		if err := rows.Scan(&cam, &start); err != nil {
			rows.Close()
			return err
		}
		open[cam] = start
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	nowMs := now.UnixMilli()
	for _, st := range sts {
		start, isOpen := open[st.ID]
		delete(open, st.ID)
		switch {
		case st.State == ingest.StateOffline && !isOpen:
			from := nowMs
			// the change itself, unless it predates the previous sample
			// (then the period before this sample is not known)
			if s := st.Since.UnixMilli(); !st.Since.IsZero() && s < nowMs && s >= nowMs-2*t.opts.Interval.Milliseconds() {
				from = s
			}
			if _, err := tx.Exec(ctx, `INSERT INTO offline(camera, start_ms, seen_ms, message) VALUES(?, ?, ?, ?)
				ON CONFLICT(camera, start_ms) DO NOTHING`, st.ID, from, nowMs, st.LastError); err != nil {
				return err
			}
		case st.State == ingest.StateOffline:
			if _, err := tx.Exec(ctx, `UPDATE offline SET seen_ms = ?, message = CASE WHEN CAST(? AS TEXT) = '' THEN message ELSE CAST(? AS TEXT) END
				WHERE camera = ? AND start_ms = ?`, nowMs, st.LastError, st.LastError, st.ID, start); err != nil {
				return err
			}
		case isOpen:
			end := nowMs
			if st.State == ingest.StateOnline && !st.Since.IsZero() && st.Since.UnixMilli() > start && st.Since.UnixMilli() < nowMs {
				end = st.Since.UnixMilli()
			}
			if _, err := tx.Exec(ctx, `UPDATE offline SET end_ms = ? WHERE camera = ? AND start_ms = ?`, end, st.ID, start); err != nil {
				return err
			}
		}
	}
	// cameras removed while offline
	for cam, start := range open {
		if _, err := tx.Exec(ctx, `UPDATE offline SET end_ms = ? WHERE camera = ? AND start_ms = ?`, nowMs, cam, start); err != nil {
			return err
		}
	}
	return nil
}

// closeOpenPeriods ends, at the last sample that saw them, the periods left
// open when Vigil stopped: what happened while it was down is not known.
func closeOpenPeriods(ctx context.Context, db *sqldb.DB) error {
	if _, err := db.Exec(ctx, `UPDATE offline SET end_ms = seen_ms WHERE end_ms IS NULL`); err != nil {
		return fmt.Errorf("availability: close offline periods: %w", err)
	}
	return nil
}

// Events returns the events of a camera that overlap [from, to), the oldest
// first. They begin with the camera (archive.Index.CurrentSince): those of a
// deleted camera that had its id are not its own.
func (t *Tracker) Events(ctx context.Context, camera string, from, to time.Time) ([]Event, error) {
	if t.opts.Index != nil {
		since, ok, err := t.opts.Index.CurrentSince(ctx, camera)
		if err != nil {
			return nil, fmt.Errorf("availability: events of %q: %w", camera, err)
		}
		if ok && since.After(from) {
			from = since
		}
		if !to.After(from) {
			return []Event{}, nil
		}
	}
	return sqldb.QueryList(ctx, t.db, fmt.Sprintf("availability: events of %q", camera), func(rows *sql.Rows, e *Event) error {
		var start int64
		var end sql.NullInt64
		var msg string
		if err := rows.Scan(&start, &end, &msg); err != nil {
			return err
		}
		*e = Event{Type: EventOffline, Start: time.UnixMilli(start).UTC(), Message: msg}
		if end.Valid {
			et := time.UnixMilli(end.Int64).UTC()
			e.End = &et
		}
		return nil
	}, `SELECT start_ms, end_ms, message FROM offline
		WHERE camera = ? AND start_ms < ? AND (end_ms IS NULL OR end_ms > ?) ORDER BY start_ms`,
		camera, to.UnixMilli(), from.UnixMilli())
}
