package registry

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// Layout is a named arrangement of the live wall: a grid and which camera
// is in which cell. It belongs to the user who made it and is private, or
// shared with one department (every user of that department sees it). A
// layout with a Tour is a tour: an unattended wall cycles its layouts (or,
// when it names none, the pages of every camera the wall sees, Grid at a
// time), each for Dwell.
type Layout struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	// Grid is the number of cells: one of LayoutGrids (6 is one large
	// tile and five small ones).
	Grid int `json:"grid"`
	// Cells has Grid entries (a tour may have none): a camera id or nil
	// for an empty cell. A camera the viewer may not see is shown as nil.
	Cells []*string `json:"cells"`
	// Shared is the department the layout is shared with; nil: private.
	Shared  *string   `json:"shared"`
	Tour    *Tour     `json:"tour"`
	Owner   string    `json:"owner"`
	Updated time.Time `json:"updated"`
}

// Tour cycles layouts on a wall.
type Tour struct {
	// Layouts are the ids of the layouts shown in turn; empty: the pages
	// of the cameras. A layout the viewer may not see is left out.
	Layouts []string `json:"layouts"`
	Dwell   Dwell    `json:"dwell"`
}

// Dwell is how long a tour shows each layout: a Go duration ("30s") in
// JSON, or a number of seconds when read.
type Dwell time.Duration

// String is the Go duration.
func (d Dwell) String() string { return time.Duration(d).String() }

// MarshalJSON writes the dwell as a Go duration string.
func (d Dwell) MarshalJSON() ([]byte, error) {
	return json.Marshal(d.String())
}

// UnmarshalJSON reads a Go duration string or a number of seconds.
func (d *Dwell) UnmarshalJSON(b []byte) error {
	if string(b) == "null" {
		return nil // as encoding/json does for a value it cannot set to nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var secs float64
		if json.Unmarshal(b, &secs) != nil {
			return apierr.New(apierr.ErrInvalid, "dwell must be a duration such as 30s or a number of seconds")
		}
		*d = Dwell(time.Duration(secs * float64(time.Second)))
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		secs, serr := strconv.ParseFloat(s, 64)
		if serr != nil {
			return apierr.New(apierr.ErrInvalid, "dwell must be a duration such as 30s or a number of seconds")
		}
		v = time.Duration(secs * float64(time.Second))
	}
	*d = Dwell(v)
	return nil
}

// Layout limits.
var LayoutGrids = []int{1, 4, 6, 9, 16, 25}

const (
	MinTourDwell   = 5 * time.Second
	MaxTourDwell   = 24 * time.Hour
	MaxTourLayouts = 64
)

// layoutRow is a layout as stored, before it is shown to anyone.
type layoutRow struct {
	Layout
	cells []string // "" for an empty cell
}

func scanLayout(rows *sql.Rows, l *layoutRow) error {
	var cells, tourLayouts string
	var shared string
	var dwell, updated int64
	var hasTour bool
	if err := rows.Scan(&l.ID, &l.Name, &l.Grid, &cells, &shared, &hasTour, &tourLayouts, &dwell, &l.Owner, &updated); err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(cells), &l.cells); err != nil {
		return fmt.Errorf("layout %s: cells: %w", l.ID, err)
	}
	if shared != "" {
		l.Shared = &shared
	}
	if hasTour {
		l.Tour = &Tour{Dwell: Dwell(dwell)}
		if err := json.Unmarshal([]byte(tourLayouts), &l.Tour.Layouts); err != nil {
			return fmt.Errorf("layout %s: tour: %w", l.ID, err)
		}
	}
	l.Updated = nsTime(updated)
	return nil
}

const layoutColumns = `id, name, grid, cells, shared, has_tour, tour_layouts, tour_dwell_ns, owner, updated_ns`

// sees tells whether u sees the stored layout l: their own, or shared
// with one of their departments (any, for a user of every department).
func (l *layoutRow) seenBy(u User) bool {
	return l.Owner == u.Username || l.Shared != nil && u.InScope(*l.Shared)
}

// layoutView is what a viewer needs to show layouts: the departments of
// the cameras and which layouts exist for them.
type layoutView struct {
	viewer  User
	cameras map[string]string // id → department
	seen    map[string]bool   // layout id → the viewer sees it
}

// show turns a stored layout into what viewer may see: cameras they may
// not see (or that no longer exist) are empty cells, tour layouts they
// may not see are left out.
func (v layoutView) show(l layoutRow) Layout {
	out := l.Layout
	out.Cells = make([]*string, len(l.cells))
	for i, c := range l.cells {
		if dep, ok := v.cameras[c]; c != "" && ok && v.viewer.InScope(dep) {
			out.Cells[i] = &c
		}
	}
	if l.Tour != nil {
		t := *l.Tour
		t.Layouts = slices.DeleteFunc(slices.Clone(t.Layouts), func(id string) bool { return !v.seen[id] })
		out.Tour = &t
	}
	return out
}

// layoutState reads every layout and camera department for viewer. lock is
// appended to the layouts' query: a transaction that goes on to change one
// passes tx.Dialect.ForUpdate().
func (r *Registry) layoutState(ctx context.Context, q sqldb.Querier, viewer User, lock string) ([]layoutRow, layoutView, error) {
	rows, err := sqldb.QueryList(ctx, q, "list layouts", scanLayout,
		`SELECT `+layoutColumns+` FROM layouts WHERE owner = ? OR shared != '' ORDER BY name, id`+lock, viewer.Username)
	if err != nil {
		return nil, layoutView{}, err
	}
	type cam struct{ id, dep string }
	cams, err := sqldb.QueryList(ctx, q, "list layouts", func(rows *sql.Rows, c *cam) error {
		return rows.Scan(&c.id, &c.dep)
	}, `SELECT id, department FROM cameras`)
	if err != nil {
		return nil, layoutView{}, err
	}
	v := layoutView{viewer: viewer, cameras: make(map[string]string, len(cams)), seen: map[string]bool{}}
	for _, c := range cams {
		v.cameras[c.id] = c.dep
	}
	rows = slices.DeleteFunc(rows, func(l layoutRow) bool { return !l.seenBy(viewer) })
	for _, l := range rows {
		v.seen[l.ID] = true
	}
	return rows, v, nil
}

// Layouts lists the layouts viewer sees, by name.
func (r *Registry) Layouts(ctx context.Context, viewer User) ([]Layout, error) {
	rows, v, err := r.layoutState(ctx, r.db, viewer, "")
	if err != nil {
		return nil, err
	}
	out := make([]Layout, len(rows))
	for i, l := range rows {
		out[i] = v.show(l)
	}
	return out, nil
}

func layoutNotFound(id string) error {
	return apierr.New(apierr.ErrNotFound, "layout %q does not exist", truncate(id, 64))
}

// Layout returns one layout viewer sees; one they do not see does not
// exist for them.
func (r *Registry) Layout(ctx context.Context, viewer User, id string) (Layout, error) {
	rows, v, err := r.layoutState(ctx, r.db, viewer, "")
	if err != nil {
		return Layout{}, err
	}
	for _, l := range rows {
		if l.ID == id {
			return v.show(l), nil
		}
	}
	return Layout{}, layoutNotFound(id)
}

// CreateLayout stores a new layout of by; ID, Owner and Updated are set.
func (r *Registry) CreateLayout(ctx context.Context, by User, l Layout) (Layout, error) {
	id, _, err := newIDAndSecret(1)
	if err != nil {
		return Layout{}, err
	}
	l.ID, l.Owner = id, by.Username
	return r.saveLayout(ctx, by, l, func([]layoutRow, *Layout) (*layoutRow, error) { return nil, nil })
}

// UpdateLayout replaces a layout by (its owner, or an admin who sees
// it). A cell that by sees empty but that holds a camera by may not see
// keeps that camera: an editor cannot remove what they were not shown.
func (r *Registry) UpdateLayout(ctx context.Context, by User, l Layout) (Layout, error) {
	return r.saveLayout(ctx, by, l, func(rows []layoutRow, l *Layout) (*layoutRow, error) {
		i := slices.IndexFunc(rows, func(x layoutRow) bool { return x.ID == l.ID })
		if i < 0 {
			return nil, layoutNotFound(l.ID)
		}
		old := rows[i]
		if old.Owner != by.Username && by.Role != RoleAdmin {
			return nil, apierr.New(apierr.ErrForbidden, "only the owner of layout %q (%s) or an admin can change it", old.ID, old.Owner)
		}
		l.Owner = old.Owner
		return &old, nil
	})
}

// saveLayout stores l for by in one transaction, for CreateLayout and
// UpdateLayout: replaces picks, from the layouts by sees, the stored
// layout l replaces (nil for a new one) or refuses; l is then checked,
// stamped with the time and stored, and returned as by sees it.
func (r *Registry) saveLayout(ctx context.Context, by User, l Layout, replaces func(rows []layoutRow, l *Layout) (*layoutRow, error)) (Layout, error) {
	var out Layout
	err := r.inTx(ctx, func(tx *sqldb.Tx) error {
		rows, v, err := r.layoutState(ctx, tx, by, tx.Dialect.ForUpdate())
		if err != nil {
			return err
		}
		old, err := replaces(rows, &l)
		if err != nil {
			return err
		}
		cells, err := checkLayout(ctx, tx, by, &l, old, rows, v)
		if err != nil {
			return err
		}
		l.Updated = r.now().UTC()
		if err := r.storeLayout(ctx, tx, l, cells, old == nil); err != nil {
			return err
		}
		out = v.show(layoutRow{Layout: l, cells: cells})
		return nil
	})
	return out, err
}

// DeleteLayout removes a layout by (its owner, or an admin who sees it)
// and returns it as it was. Tours that named it skip it from then on.
func (r *Registry) DeleteLayout(ctx context.Context, by User, id string) (Layout, error) {
	var out Layout
	err := r.inTx(ctx, func(tx *sqldb.Tx) error {
		rows, v, err := r.layoutState(ctx, tx, by, tx.Dialect.ForUpdate())
		if err != nil {
			return err
		}
		i := slices.IndexFunc(rows, func(x layoutRow) bool { return x.ID == id })
		if i < 0 {
			return layoutNotFound(id)
		}
		if rows[i].Owner != by.Username && by.Role != RoleAdmin {
			return apierr.New(apierr.ErrForbidden, "only the owner of layout %q (%s) or an admin can delete it", id, rows[i].Owner)
		}
		out = v.show(rows[i])
		if _, err := tx.Exec(ctx, `DELETE FROM layouts WHERE id = ?`, id); err != nil {
			return fmt.Errorf("delete layout %s: %w", id, err)
		}
		return nil
	})
	return out, err
}

func (r *Registry) storeLayout(ctx context.Context, tx *sqldb.Tx, l Layout, cells []string, create bool) error {
	cj, _ := json.Marshal(cells)
	shared, tourLayouts, dwell, hasTour := "", "[]", int64(0), false
	if l.Shared != nil {
		shared = *l.Shared
	}
	if l.Tour != nil {
		tj, _ := json.Marshal(l.Tour.Layouts)
		tourLayouts, dwell, hasTour = string(tj), int64(l.Tour.Dwell), true
	}
	now := l.Updated.UnixNano()
	var err error
	if create {
		_, err = tx.Exec(ctx, `INSERT INTO layouts(`+layoutColumns+`) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			l.ID, l.Name, l.Grid, string(cj), shared, hasTour, tourLayouts, dwell, l.Owner, now)
	} else {
		_, err = tx.Exec(ctx, `UPDATE layouts SET name = ?, grid = ?, cells = ?, shared = ?, has_tour = ?,
			tour_layouts = ?, tour_dwell_ns = ?, updated_ns = ? WHERE id = ?`,
			l.Name, l.Grid, string(cj), shared, hasTour, tourLayouts, dwell, now, l.ID)
	}
	if err != nil {
		return fmt.Errorf("store layout %s: %w", l.ID, err)
	}
	return nil
}

// checkLayout validates l as by would store it and returns its cells as
// stored. old is the stored layout being replaced (nil when creating).
func checkLayout(ctx context.Context, q sqldb.Querier, by User, l *Layout, old *layoutRow, rows []layoutRow, v layoutView) ([]string, error) {
	l.Name = strings.TrimSpace(l.Name)
	var msgs []string
	if msg := checkText(l.Name, 1, 100); msg != "" {
		msgs = append(msgs, "name "+msg)
	}
	if !slices.Contains(LayoutGrids, l.Grid) {
		msgs = append(msgs, fmt.Sprintf("grid %d is not one of 1, 4, 6, 9, 16, 25", l.Grid))
	}
	if len(l.Cells) != l.Grid && !(l.Tour != nil && len(l.Cells) == 0) {
		msgs = append(msgs, fmt.Sprintf("cells has %d entries but the grid has %d cells", len(l.Cells), l.Grid))
	}
	cells := make([]string, len(l.Cells))
	var oldShown []*string
	if old != nil && len(old.cells) == len(l.Cells) {
		oldShown = v.show(*old).Cells
	}
	var missing []string
	for i, c := range l.Cells {
		switch {
		case c == nil && oldShown != nil && old.cells[i] != "" && oldShown[i] == nil:
			if _, ok := v.cameras[old.cells[i]]; ok {
				cells[i] = old.cells[i] // hidden from by: kept
			}
		case c == nil:
		case !idRE.MatchString(*c):
			msgs = append(msgs, fmt.Sprintf("camera %q is not a camera id", truncate(*c, 64)))
		case slices.Contains(cells[:i], *c):
			msgs = append(msgs, fmt.Sprintf("camera %q is in two cells", *c))
		default:
			if dep, ok := v.cameras[*c]; !ok || !by.InScope(dep) {
				missing = append(missing, *c)
			}
			cells[i] = *c
		}
	}
	if l.Shared != nil {
		if *l.Shared == "" {
			l.Shared = nil
		} else if !by.InScope(*l.Shared) {
			msgs = append(msgs, fmt.Sprintf("shared: %q is not one of your departments", truncate(*l.Shared, 64)))
		} else if err := departmentExists(ctx, q, *l.Shared); err != nil {
			return nil, err
		}
	}
	if l.Tour != nil {
		msgs = append(msgs, checkTour(l, rows)...)
	}
	if len(msgs) > 0 {
		return nil, apierr.New(apierr.ErrInvalid, "layout: %s", strings.Join(msgs, "; "))
	}
	if len(missing) > 0 {
		return nil, apierr.New(apierr.ErrNotFound, "camera %q does not exist", truncate(missing[0], 64))
	}
	return cells, nil
}

func checkTour(l *Layout, rows []layoutRow) []string {
	var msgs []string
	d := time.Duration(l.Tour.Dwell)
	if d < MinTourDwell || d > MaxTourDwell {
		msgs = append(msgs, "tour dwell must be between 5s and 24h")
	}
	if l.Tour.Layouts == nil {
		l.Tour.Layouts = []string{}
	}
	if len(l.Tour.Layouts) > MaxTourLayouts {
		msgs = append(msgs, fmt.Sprintf("a tour has at most %d layouts", MaxTourLayouts))
	}
	for _, id := range l.Tour.Layouts {
		i := slices.IndexFunc(rows, func(x layoutRow) bool { return x.ID == id })
		switch {
		case id == l.ID:
			msgs = append(msgs, "a tour cannot show itself")
		case i < 0:
			msgs = append(msgs, fmt.Sprintf("tour: layout %q does not exist", truncate(id, 64)))
		case rows[i].Tour != nil:
			msgs = append(msgs, fmt.Sprintf("tour: layout %q is itself a tour", id))
		}
	}
	return msgs
}

// departmentExists tells a missing department as a clear error.
func departmentExists(ctx context.Context, q sqldb.Querier, id string) error {
	rows, err := q.Query(ctx, `SELECT 1 FROM departments WHERE id = ?`, id)
	if err != nil {
		return fmt.Errorf("department %q: %w", id, err)
	}
	defer rows.Close()
	if !rows.Next() {
		return apierr.New(apierr.ErrInvalid, "department %q does not exist", truncate(id, 64))
	}
	return rows.Err()
}
