package registry

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqlitedb"
)

// Incident marks a time range of some cameras as evidence: retention never
// deletes recordings inside it while it exists.
type Incident struct {
	ID      int64    `json:"id"`
	Title   string   `json:"title"`
	Cameras []string `json:"cameras"`
	// PastCameras are the ids of the incident's cameras that were deleted
	// since (a camera created later under the same id is not the
	// incident's): their recordings stay held by it.
	PastCameras []string  `json:"pastCameras,omitempty"`
	Start       time.Time `json:"start"`
	End         time.Time `json:"end"`
	Note        string    `json:"note"`
	CreatedBy   string    `json:"createdBy"`
	Created     time.Time `json:"created"`
}

// Incident limits.
const (
	MaxIncidentCameras = 256
	MaxIncidentSpan    = 366 * 24 * time.Hour
)

func validateIncident(in Incident) error {
	var msgs []string
	if msg := checkText(in.Title, 1, 200); msg != "" {
		msgs = append(msgs, "title "+msg)
	}
	if strings.TrimSpace(in.Note) != "" {
		for _, r := range in.Note {
			if (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || r == 0x7f {
				msgs = append(msgs, "note contains a control character")
				break
			}
		}
		if len([]rune(in.Note)) > 10000 {
			msgs = append(msgs, "note is longer than 10000 characters")
		}
	}
	if len(in.Cameras) == 0 {
		msgs = append(msgs, "cameras is empty")
	}
	if len(in.Cameras) > MaxIncidentCameras {
		msgs = append(msgs, fmt.Sprintf("more than %d cameras", MaxIncidentCameras))
	}
	for _, c := range in.Cameras {
		if !idRE.MatchString(c) {
			msgs = append(msgs, fmt.Sprintf("camera %q is not a camera id", truncate(c, 64)))
		}
	}
	switch {
	case in.Start.IsZero() || in.End.IsZero():
		msgs = append(msgs, "start and end are required")
	case !in.End.After(in.Start):
		msgs = append(msgs, "end must be after start")
	case in.End.Sub(in.Start) > MaxIncidentSpan:
		msgs = append(msgs, "an incident spans at most 366 days")
	}
	if len(msgs) > 0 {
		return apierr.New(apierr.ErrInvalid, "incident: %s", strings.Join(msgs, "; "))
	}
	return nil
}

// CreateIncident records an incident; ID and Created are set.
func (r *Registry) CreateIncident(ctx context.Context, in Incident) (Incident, error) {
	in.Title = strings.TrimSpace(in.Title)
	in.Cameras = slices.Compact(slices.Sorted(slices.Values(in.Cameras)))
	in.Start, in.End = in.Start.UTC(), in.End.UTC()
	if err := validateIncident(in); err != nil {
		return in, err
	}
	in.Created = r.now().UTC()
	err := r.inTx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `INSERT INTO incidents(title, start_ns, end_ns, note, created_by, created_ns) VALUES(?, ?, ?, ?, ?, ?)`,
			in.Title, in.Start.UnixNano(), in.End.UnixNano(), in.Note, in.CreatedBy, in.Created.UnixNano())
		if err != nil {
			return fmt.Errorf("create incident: %w", err)
		}
		if in.ID, err = res.LastInsertId(); err != nil {
			return fmt.Errorf("create incident: %w", err)
		}
		for _, c := range in.Cameras {
			if _, err := tx.ExecContext(ctx, `INSERT INTO incident_cameras(incident, camera, camera_uid)
				VALUES(?, ?, COALESCE((SELECT uid FROM cameras WHERE id = ?), ''))`, in.ID, c, c); err != nil {
				return fmt.Errorf("create incident: %w", err)
			}
		}
		return nil
	})
	return in, err
}

// Incidents lists incidents, newest first. With camera not empty, only the
// incidents of that camera (the camera that has the id now, not a deleted
// one that had it); with end after start, only those overlapping
// start..end.
func (r *Registry) Incidents(ctx context.Context, camera string, start, end time.Time) ([]Incident, error) {
	q := `SELECT id, title, start_ns, end_ns, note, created_by, created_ns FROM incidents`
	var where []string
	var args []any
	if camera != "" {
		where, args = append(where, `id IN (SELECT incident FROM incident_cameras WHERE camera = ?
			AND camera_uid = COALESCE((SELECT uid FROM cameras WHERE id = ?), ''))`), append(args, camera, camera)
	}
	if end.After(start) {
		where, args = append(where, `start_ns < ? AND end_ns > ?`), append(args, end.UnixNano(), start.UnixNano())
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	out, err := sqlitedb.QueryList(ctx, r.db, "list incidents", func(rows *sql.Rows, in *Incident) error {
		var s, e, c int64
		err := rows.Scan(&in.ID, &in.Title, &s, &e, &in.Note, &in.CreatedBy, &c)
		in.Start, in.End, in.Created = nsTime(s), nsTime(e), nsTime(c)
		return err
	}, q+` ORDER BY start_ns DESC, id DESC`, args...)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := incidentCameras(ctx, r.db, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// incidentCameras sets in.Cameras and in.PastCameras: the cameras that
// still are the incarnation the incident was made on, and the others.
func incidentCameras(ctx context.Context, q sqlitedb.Queryer, in *Incident) error {
	rows, err := q.QueryContext(ctx, `SELECT ic.camera, COALESCE(c.uid = ic.camera_uid, 0) FROM incident_cameras ic
		LEFT JOIN cameras c ON c.id = ic.camera WHERE ic.incident = ? ORDER BY ic.camera`, in.ID)
	if err != nil {
		return fmt.Errorf("incident %d: %w", in.ID, err)
	}
	defer rows.Close()
	in.Cameras, in.PastCameras = []string{}, nil
	for rows.Next() {
		var c string
		var same bool
		if err := rows.Scan(&c, &same); err != nil {
			return fmt.Errorf("incident %d: %w", in.ID, err)
		}
		if same {
			in.Cameras = append(in.Cameras, c)
		} else {
			in.PastCameras = append(in.PastCameras, c)
		}
	}
	return rows.Err()
}

// IncidentByID returns one incident.
func (r *Registry) IncidentByID(ctx context.Context, id int64) (Incident, error) {
	in := Incident{ID: id}
	var s, e, c int64
	err := r.db.QueryRowContext(ctx, `SELECT title, start_ns, end_ns, note, created_by, created_ns FROM incidents WHERE id = ?`, id).
		Scan(&in.Title, &s, &e, &in.Note, &in.CreatedBy, &c)
	if notFound(err) {
		return in, apierr.New(apierr.ErrNotFound, "incident %d does not exist", id)
	}
	if err != nil {
		return in, fmt.Errorf("incident %d: %w", id, err)
	}
	in.Start, in.End, in.Created = nsTime(s), nsTime(e), nsTime(c)
	return in, incidentCameras(ctx, r.db, &in)
}

// DeleteIncident removes an incident (its recordings become subject to
// retention again).
func (r *Registry) DeleteIncident(ctx context.Context, id int64) error {
	res, err := r.db.ExecContext(ctx, `DELETE FROM incidents WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("delete incident %d: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apierr.New(apierr.ErrNotFound, "incident %d does not exist", id)
	}
	return nil
}

// Holds returns the time ranges that incidents hold for a camera id, sorted
// by start: retention must never delete recordings that overlap one of
// them. They hold the id's recordings of every incarnation, those of a
// deleted camera the incident was made on too.
func (r *Registry) Holds(ctx context.Context, camera string) ([][2]time.Time, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT i.start_ns, i.end_ns FROM incidents i
		JOIN incident_cameras c ON c.incident = i.id WHERE c.camera = ? ORDER BY i.start_ns, i.end_ns`, camera)
	if err != nil {
		return nil, fmt.Errorf("incident holds of %q: %w", camera, err)
	}
	defer rows.Close()
	var out [][2]time.Time
	for rows.Next() {
		var s, e int64
		if err := rows.Scan(&s, &e); err != nil {
			return nil, fmt.Errorf("incident holds of %q: %w", camera, err)
		}
		out = append(out, [2]time.Time{nsTime(s), nsTime(e)})
	}
	return out, rows.Err()
}
