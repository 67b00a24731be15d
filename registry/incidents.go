package registry

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
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
	// Status is IncidentOpen or IncidentClosed. Both hold the recordings.
	Status  string    `json:"status"`
	Updated time.Time `json:"updated,omitzero"`
	// Notes are added over time and never changed, oldest first.
	Notes []IncidentNote `json:"notes"`
}

// IncidentNote is a note added to an incident.
type IncidentNote struct {
	Author string    `json:"author"`
	Time   time.Time `json:"time"`
	Text   string    `json:"text"`
}

// Incident statuses. A closed incident still holds its recordings until
// it is deleted.
const (
	IncidentOpen   = "open"
	IncidentClosed = "closed"
)

// Incident limits.
const (
	MaxIncidentCameras = 256
	MaxIncidentSpan    = 366 * 24 * time.Hour
)

// checkNote tells what is wrong with a note's text, or "".
func checkNote(note string) string {
	for _, r := range note {
		if (r < 0x20 && r != '\n' && r != '\r' && r != '\t') || r == 0x7f {
			return "note contains a control character"
		}
	}
	if len([]rune(note)) > 10000 {
		return "note is longer than 10000 characters"
	}
	return ""
}

func validateIncident(in Incident) error {
	var msgs []string
	if msg := checkText(in.Title, 1, 200); msg != "" {
		msgs = append(msgs, "title "+msg)
	}
	if msg := checkNote(in.Note); msg != "" {
		msgs = append(msgs, msg)
	}
	if in.Status != IncidentOpen && in.Status != IncidentClosed {
		msgs = append(msgs, "status must be open or closed")
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
	if in.Status == "" {
		in.Status = IncidentOpen
	}
	in.Notes = []IncidentNote{}
	if err := validateIncident(in); err != nil {
		return in, err
	}
	in.Created = r.now().UTC()
	err := r.inTx(ctx, func(tx *sqldb.Tx) error {
		err := tx.QueryRow(ctx, `INSERT INTO incidents(title, start_ns, end_ns, note, created_by, created_ns, status) VALUES(?, ?, ?, ?, ?, ?, ?)
			RETURNING id`,
			in.Title, in.Start.UnixNano(), in.End.UnixNano(), in.Note, in.CreatedBy, in.Created.UnixNano(), in.Status).Scan(&in.ID)
		if err != nil {
			return fmt.Errorf("create incident: %w", err)
		}
		for _, c := range in.Cameras {
			if _, err := tx.Exec(ctx, `INSERT INTO incident_cameras(incident, camera, camera_uid)
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
	return r.FindIncidents(ctx, IncidentFilter{Camera: camera, Start: start, End: end})
}

// IncidentFilter selects incidents; a zero field selects all.
type IncidentFilter struct {
	// Camera: the incidents of the camera that has the id now.
	Camera string
	// Start, End: the incidents overlapping Start..End (when End is after
	// Start).
	Start, End time.Time
	// Status: IncidentOpen or IncidentClosed.
	Status string
}

const incidentColumns = `id, title, start_ns, end_ns, note, created_by, created_ns, status, updated_ns`

func scanIncident(sc interface{ Scan(...any) error }, in *Incident) error {
	var s, e, c, u int64
	err := sc.Scan(&in.ID, &in.Title, &s, &e, &in.Note, &in.CreatedBy, &c, &in.Status, &u)
	in.Start, in.End, in.Created, in.Updated = nsTime(s), nsTime(e), nsTime(c), nsTime(u)
	return err
}

// FindIncidents lists the incidents f selects, newest first, with their
// cameras and notes.
func (r *Registry) FindIncidents(ctx context.Context, f IncidentFilter) ([]Incident, error) {
	q := `SELECT ` + incidentColumns + ` FROM incidents`
	var where []string
	var args []any
	if f.Status != "" {
		if f.Status != IncidentOpen && f.Status != IncidentClosed {
			return nil, apierr.New(apierr.ErrInvalid, "status must be open or closed")
		}
		where, args = append(where, `status = ?`), append(args, f.Status)
	}
	camera, start, end := f.Camera, f.Start, f.End
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
	out, err := sqldb.QueryList(ctx, r.db, "list incidents", func(rows *sql.Rows, in *Incident) error {
		return scanIncident(rows, in)
	}, q+` ORDER BY start_ns DESC, id DESC`, args...)
	if err != nil {
		return nil, err
	}
	for i := range out {
		if err := incidentCameras(ctx, r.db, &out[i]); err != nil {
			return nil, err
		}
		if err := incidentNotes(ctx, r.db, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// incidentNotes sets in.Notes, oldest first.
func incidentNotes(ctx context.Context, q sqldb.Querier, in *Incident) error {
	notes, err := sqldb.QueryList(ctx, q, fmt.Sprintf("incident %d notes", in.ID), func(rows *sql.Rows, n *IncidentNote) error {
		var t int64
		err := rows.Scan(&n.Author, &t, &n.Text)
		n.Time = nsTime(t)
		return err
	}, `SELECT author, time_ns, text FROM incident_notes WHERE incident = ? ORDER BY id`, in.ID)
	in.Notes = notes
	return err
}

// Matches tells whether the incident's title, note, notes, creator or a
// camera id contains q, ignoring case.
func (in Incident) Matches(q string) bool {
	q = strings.ToLower(strings.TrimSpace(q))
	if q == "" {
		return true
	}
	texts := append([]string{in.Title, in.Note, in.CreatedBy}, in.Cameras...)
	for _, n := range in.Notes {
		texts = append(texts, n.Text, n.Author)
	}
	return slices.ContainsFunc(texts, func(s string) bool { return strings.Contains(strings.ToLower(s), q) })
}

// UpdateIncident replaces an incident's title, note, status, range and
// cameras. A camera that stays keeps the incarnation the incident was made
// on; the cameras deleted since (PastCameras) stay held.
func (r *Registry) UpdateIncident(ctx context.Context, in Incident) (Incident, error) {
	in.Title = strings.TrimSpace(in.Title)
	in.Cameras = slices.Compact(slices.Sorted(slices.Values(in.Cameras)))
	in.Start, in.End = in.Start.UTC(), in.End.UTC()
	if err := validateIncident(in); err != nil {
		return in, err
	}
	err := r.inTx(ctx, func(tx *sqldb.Tx) error {
		res, err := tx.Exec(ctx, `UPDATE incidents SET title = ?, start_ns = ?, end_ns = ?, note = ?, status = ?, updated_ns = ? WHERE id = ?`,
			in.Title, in.Start.UnixNano(), in.End.UnixNano(), in.Note, in.Status, r.now().UnixNano(), in.ID)
		if err != nil {
			return fmt.Errorf("update incident %d: %w", in.ID, err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return apierr.New(apierr.ErrNotFound, "incident %d does not exist", in.ID)
		}
		var old Incident
		old.ID = in.ID
		if err := incidentCameras(ctx, tx, &old); err != nil {
			return err
		}
		for _, c := range old.Cameras {
			if !slices.Contains(in.Cameras, c) {
				if _, err := tx.Exec(ctx, `DELETE FROM incident_cameras WHERE incident = ? AND camera = ?`, in.ID, c); err != nil {
					return fmt.Errorf("update incident %d: %w", in.ID, err)
				}
			}
		}
		for _, c := range in.Cameras {
			if slices.Contains(old.Cameras, c) {
				continue
			}
			// A past camera of the same id stays held; the new one joins.
			if _, err := tx.Exec(ctx, `INSERT INTO incident_cameras(incident, camera, camera_uid)
				VALUES(?, ?, COALESCE((SELECT uid FROM cameras WHERE id = ?), ''))
				ON CONFLICT(incident, camera) DO UPDATE SET camera_uid = excluded.camera_uid`, in.ID, c, c); err != nil {
				return fmt.Errorf("update incident %d: %w", in.ID, err)
			}
		}
		return nil
	})
	if err != nil {
		return in, err
	}
	return r.IncidentByID(ctx, in.ID)
}

// AddIncidentNote appends a note to an incident and returns the incident.
func (r *Registry) AddIncidentNote(ctx context.Context, id int64, n IncidentNote) (Incident, error) {
	if strings.TrimSpace(n.Text) == "" {
		return Incident{}, apierr.New(apierr.ErrInvalid, "the note is empty")
	}
	if msg := checkNote(n.Text); msg != "" {
		return Incident{}, apierr.New(apierr.ErrInvalid, "incident: %s", msg)
	}
	n.Time = r.now().UTC()
	_, err := r.db.Exec(ctx, `INSERT INTO incident_notes(incident, author, time_ns, text)
		SELECT id, CAST(? AS TEXT), CAST(? AS BIGINT), CAST(? AS TEXT) FROM incidents WHERE id = ?`, n.Author, n.Time.UnixNano(), n.Text, id)
	if err != nil {
		return Incident{}, fmt.Errorf("incident %d: add note: %w", id, err)
	}
	return r.IncidentByID(ctx, id)
}

// incidentCameras sets in.Cameras and in.PastCameras: the cameras that
// still are the incarnation the incident was made on, and the others.
func incidentCameras(ctx context.Context, q sqldb.Querier, in *Incident) error {
	rows, err := q.Query(ctx, `SELECT ic.camera, COALESCE(c.uid = ic.camera_uid, FALSE) FROM incident_cameras ic
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
	err := scanIncident(r.db.QueryRow(ctx, `SELECT `+incidentColumns+` FROM incidents WHERE id = ?`, id), &in)
	if notFound(err) {
		return in, apierr.New(apierr.ErrNotFound, "incident %d does not exist", id)
	}
	if err != nil {
		return in, fmt.Errorf("incident %d: %w", id, err)
	}
	if err := incidentCameras(ctx, r.db, &in); err != nil {
		return in, err
	}
	return in, incidentNotes(ctx, r.db, &in)
}

// DeleteIncident removes an incident (its recordings become subject to
// retention again).
func (r *Registry) DeleteIncident(ctx context.Context, id int64) error {
	res, err := r.db.Exec(ctx, `DELETE FROM incidents WHERE id = ?`, id)
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
	rows, err := r.db.Query(ctx, `SELECT i.start_ns, i.end_ns FROM incidents i
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
