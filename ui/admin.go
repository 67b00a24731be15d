package ui

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/registry"
)

type userBody struct {
	Username    string   `json:"username"`
	Password    string   `json:"password"`
	Role        string   `json:"role"`
	Departments []string `json:"departments"`
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, c *call) error {
	us, err := s.reg.Users(r.Context())
	return writeOK(w, us, err)
}

func (s *Server) getUser(w http.ResponseWriter, r *http.Request, c *call) error {
	u, err := s.reg.User(r.Context(), r.PathValue("username"))
	return writeOK(w, u, err)
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, c *call) error {
	var in userBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	c.audit.Detail = "user " + truncate(in.Username, 64)
	u, err := s.reg.CreateUser(r.Context(), registry.User{Username: in.Username, Role: in.Role, Departments: in.Departments}, in.Password)
	if err != nil {
		return err
	}
	c.audit.Detail = fmt.Sprintf("user %s role %s departments %s", u.Username, u.Role, deptList(u.Departments))
	w.Header().Set("Location", "/api/v1/users/"+u.Username)
	writeJSON(w, http.StatusCreated, u)
	return nil
}

// tokenOwner is whose tokens p may list and revoke: every user's ("") for
// an admin of all departments, else p's own. An admin limited to
// departments manages no other account (users are global), so no other
// account's tokens either — in particular not the global admin's.
func tokenOwner(p *principal) string {
	if p.user.Role == registry.RoleAdmin && !p.user.Scoped() {
		return ""
	}
	return p.user.Username
}

func deptList(ds []string) string {
	if len(ds) == 0 {
		return "all"
	}
	return strings.Join(ds, ",")
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("username")
	c.audit.Detail = "user " + truncate(name, 64)
	var in userBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.Username != "" && in.Username != name {
		return apierr.New(apierr.ErrInvalid, "the username in the body differs from the URL's: a user cannot be renamed")
	}
	before, err := s.reg.User(r.Context(), name)
	if err != nil {
		return err
	}
	if in.Departments == nil {
		// Absent (or null) keeps the limit: failing closed, a client that
		// only changes the role cannot lift it by omission. [] is "every".
		in.Departments = before.Departments
	}
	u, err := s.reg.UpdateUser(r.Context(), registry.User{Username: name, Role: in.Role, Departments: in.Departments}, in.Password)
	if err != nil {
		return err
	}
	if in.Password != "" || u.Role != before.Role || !slices.Equal(u.Departments, before.Departments) {
		s.endLive("user changed", func(o whepOwner) bool { return o.user == name })
	}
	c.audit.Detail = fmt.Sprintf("user %s role %s departments %s", u.Username, u.Role, deptList(u.Departments))
	if in.Password != "" {
		c.audit.Detail += " password changed"
	}
	writeJSON(w, http.StatusOK, u)
	return nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, c *call) error {
	name := r.PathValue("username")
	c.audit.Detail = "user " + truncate(name, 64)
	if err := s.reg.DeleteUser(r.Context(), name); err != nil {
		return err
	}
	s.endLive("user deleted", func(o whepOwner) bool { return o.user == name })
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) listDepartments(w http.ResponseWriter, r *http.Request, c *call) error {
	ds, err := s.reg.Departments(r.Context())
	if err != nil {
		return err
	}
	if c.p.user.Scoped() {
		ds = slices.DeleteFunc(ds, func(d registry.Department) bool { return !c.p.user.InScope(d.ID) })
	}
	writeJSON(w, http.StatusOK, ds)
	return nil
}

func (s *Server) createDepartment(w http.ResponseWriter, r *http.Request, c *call) error {
	var d registry.Department
	if err := decodeJSON(w, r, &d); err != nil {
		return err
	}
	c.audit.Detail = "department " + truncate(d.ID, 64)
	if err := s.reg.CreateDepartment(r.Context(), d); err != nil {
		return err
	}
	d, err := s.reg.Department(r.Context(), d.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, d)
	return nil
}

func (s *Server) updateDepartment(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	c.audit.Detail = "department " + truncate(id, 64)
	var d registry.Department
	if err := decodeJSON(w, r, &d); err != nil {
		return err
	}
	if d.ID != "" && d.ID != id {
		return apierr.New(apierr.ErrInvalid, "the id in the body differs from the URL's: a department cannot be renamed")
	}
	d.ID = id
	return writeOK(w, d, s.reg.UpdateDepartment(r.Context(), d))
}

func (s *Server) deleteDepartment(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	c.audit.Detail = "department " + truncate(id, 64)
	return writeNoContent(w, s.reg.DeleteDepartment(r.Context(), id))
}

// parseTime reads an RFC 3339 query parameter; empty gives the zero time.
func parseTime(r *http.Request, name string, required bool) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		if required {
			return time.Time{}, apierr.New(apierr.ErrInvalid, "%s is required (RFC 3339, e.g. 2026-11-26T08:00:00Z)", name)
		}
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		return time.Time{}, apierr.New(apierr.ErrInvalid, "%s %q is not an RFC 3339 time (e.g. 2026-11-26T08:00:00Z)", name, truncate(v, 64))
	}
	return t, nil
}

// parseDuration reads a Go duration ("90s") or a number of seconds.
func parseDuration(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < 1e9 {
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, apierr.New(apierr.ErrInvalid, "duration %q is not a Go duration (90s, 10m) or seconds", truncate(v, 64))
	}
	return d, nil
}

func (s *Server) listAudit(w http.ResponseWriter, r *http.Request, c *call) error {
	var f registry.AuditFilter
	var err error
	if f.From, err = parseTime(r, "from", false); err != nil {
		return err
	}
	if f.To, err = parseTime(r, "to", false); err != nil {
		return err
	}
	q := r.URL.Query()
	f.User, f.Camera, f.Action = q.Get("user"), q.Get("camera"), q.Get("action")
	if v := q.Get("limit"); v != "" {
		if f.Limit, err = strconv.Atoi(v); err != nil || f.Limit < 1 || f.Limit > 10000 {
			return apierr.New(apierr.ErrInvalid, "limit must be 1 to 10000")
		}
	}
	format := q.Get("format")
	if format != "" && format != "json" && format != "csv" {
		return apierr.New(apierr.ErrInvalid, "format must be json or csv")
	}
	es, err := s.reg.AuditEntries(r.Context(), f)
	if err != nil {
		return err
	}
	if c.p.user.Scoped() {
		es = slices.DeleteFunc(es, func(e registry.AuditEntry) bool { return e.Camera == "" || !s.inScopeID(r, c, e.Camera) })
	}
	if format == "csv" {
		return writeAuditCSV(w, es)
	}
	writeJSON(w, http.StatusOK, struct {
		Entries []registry.AuditEntry `json:"entries"`
	}{es})
	return nil
}

// writeAuditCSV answers audit entries as a CSV file with a header row, times
// in RFC 3339 (UTC).
func writeAuditCSV(w http.ResponseWriter, es []registry.AuditEntry) error {
	var buf bytes.Buffer
	cw := csv.NewWriter(&buf)
	cw.Write([]string{"time", "user", "address", "action", "camera", "start", "end", "result", "detail"})
	ts := func(t time.Time) string {
		if t.IsZero() {
			return ""
		}
		return t.UTC().Format(time.RFC3339Nano)
	}
	for _, e := range es {
		cw.Write([]string{ts(e.Time), csvCell(e.User), e.Address, e.Action, csvCell(e.Camera), ts(e.Start), ts(e.End), e.Result, csvCell(e.Detail)})
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "text/csv; charset=utf-8")
	h.Set("Content-Disposition", `attachment; filename="vigil-audit.csv"`)
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
	return nil
}

// csvCell keeps a spreadsheet from reading a cell that a user could choose
// (a username, a failed login's name, a detail) as a formula.
func csvCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r", rune(v[0])) {
		return "'" + v
	}
	return v
}

func (s *Server) inScopeID(r *http.Request, c *call, id string) bool {
	cam, err := s.reg.Camera(r.Context(), id)
	return err == nil && authorize(c.p, actView, &cam) == nil
}

type incidentBody struct {
	Title   string    `json:"title"`
	Cameras []string  `json:"cameras"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
	Note    string    `json:"note"`
}

func (s *Server) createIncident(w http.ResponseWriter, r *http.Request, c *call) error {
	var in incidentBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if len(in.Cameras) == 1 {
		c.audit.Camera = truncate(in.Cameras[0], 64)
	}
	c.audit.Start, c.audit.End = in.Start, in.End
	if err := s.checkIncidentCameras(r, c, in.Cameras); err != nil {
		return err
	}
	inc, err := s.reg.CreateIncident(r.Context(), registry.Incident{Title: in.Title, Cameras: in.Cameras,
		Start: in.Start, End: in.End, Note: in.Note, CreatedBy: c.p.user.Username})
	if err != nil {
		return err
	}
	c.audit.Detail = fmt.Sprintf("incident %d cameras %s", inc.ID, strings.Join(inc.Cameras, ","))
	writeJSON(w, http.StatusCreated, inc)
	return nil
}

// visibleIncidents keeps the incidents with a camera p sees, showing only
// those cameras. An incident that also covers cameras p does not see is
// shown without its title and note: they describe the other departments'
// cameras as well, and p must not learn of those.
func (s *Server) visibleIncidents(r *http.Request, c *call, ins []registry.Incident) []registry.Incident {
	if !c.p.user.Scoped() {
		return ins
	}
	out := ins[:0]
	for _, in := range ins {
		all := len(in.Cameras) + len(in.PastCameras)
		in.PastCameras = nil // deleted cameras are in no department now: not theirs
		in.Cameras = slices.DeleteFunc(slices.Clone(in.Cameras), func(id string) bool { return !s.inScopeID(r, c, id) })
		if len(in.Cameras) == 0 {
			continue
		}
		if len(in.Cameras) < all {
			in.Title, in.Note, in.Notes = "", "", []registry.IncidentNote{}
		}
		out = append(out, in)
	}
	return out
}

// listIncidents answers the incidents c sees, filtered by status, camera,
// range (from and to, or start and end) and q (words in the title, note,
// notes or camera ids c sees).
func (s *Server) listIncidents(w http.ResponseWriter, r *http.Request, c *call) error {
	q := r.URL.Query()
	var rng [2]time.Time
	for i, names := range [2][2]string{{"from", "start"}, {"to", "end"}} {
		name := names[0]
		if !q.Has(name) {
			name = names[1]
		}
		t, err := parseTime(r, name, false)
		if err != nil {
			return err
		}
		rng[i] = t
	}
	ins, err := s.reg.FindIncidents(r.Context(), registry.IncidentFilter{Camera: q.Get("camera"),
		Start: rng[0], End: rng[1], Status: q.Get("status")})
	if err != nil {
		return err
	}
	ins = s.visibleIncidents(r, c, ins)
	if text := q.Get("q"); text != "" {
		ins = slices.DeleteFunc(ins, func(in registry.Incident) bool { return !in.Matches(text) })
	}
	writeJSON(w, http.StatusOK, ins)
	return nil
}

// pathIncident reads the incident named by the request path's {id}.
func (s *Server) pathIncident(r *http.Request) (registry.Incident, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		return registry.Incident{}, apierr.New(apierr.ErrNotFound, "incident %q does not exist", truncate(r.PathValue("id"), 64))
	}
	return s.reg.IncidentByID(r.Context(), id)
}

func (s *Server) deleteIncident(w http.ResponseWriter, r *http.Request, c *call) error {
	in, err := s.pathIncident(r)
	if err != nil {
		return err
	}
	id := in.ID
	// An admin limited to departments deletes only an incident all of
	// whose cameras they manage: it protects the recordings of each of them.
	if vis := s.visibleIncidents(r, c, []registry.Incident{in}); len(vis) == 0 {
		return apierr.New(apierr.ErrNotFound, "incident %d does not exist", id)
	} else if len(vis[0].Cameras) < len(in.Cameras)+len(in.PastCameras) {
		return apierr.New(apierr.ErrForbidden, "incident %d also covers cameras outside your departments: only an admin of every department can delete it", id)
	}
	if len(in.Cameras) == 1 {
		c.audit.Camera = in.Cameras[0]
	}
	c.audit.Start, c.audit.End = in.Start, in.End
	c.audit.Detail = fmt.Sprintf("incident %d %q cameras %s", in.ID, truncate(in.Title, 100), strings.Join(in.Cameras, ","))
	return writeNoContent(w, s.reg.DeleteIncident(r.Context(), id))
}

func (s *Server) availability(w http.ResponseWriter, r *http.Request, c *call) error {
	if s.deps.Availability == nil {
		return apierr.New(apierr.ErrUnavailable, "the availability report is not available in this server")
	}
	var csv bool
	switch f := r.URL.Query().Get("format"); f {
	case "", "json":
	case "csv":
		csv = true
	default:
		return apierr.New(apierr.ErrInvalid, "format %q is not known: use json or csv", truncate(f, 32))
	}
	to, err := parseTime(r, "to", false)
	if err != nil {
		return err
	}
	if to.IsZero() {
		to = time.Now()
	}
	from, err := parseTime(r, "from", false)
	if err != nil {
		return err
	}
	if from.IsZero() {
		from = to.Add(-24 * time.Hour)
	}
	if !to.After(from) {
		return apierr.New(apierr.ErrInvalid, "to must be after from")
	}
	if to.Sub(from) > 366*24*time.Hour {
		return apierr.New(apierr.ErrInvalid, "the report covers at most 366 days")
	}
	rep, err := s.deps.Availability(r.Context(), from, to)
	if err != nil {
		return err
	}
	if c.p.user.Scoped() {
		rep = rep.Only(c.p.user.InScope)
	}
	if csv {
		name := fmt.Sprintf("availability-%s-%s.csv", from.UTC().Format("20060102T1504Z"), to.UTC().Format("20060102T1504Z"))
		w.Header().Set("Content-Type", "text/csv; charset=utf-8")
		w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
		return rep.WriteCSV(w)
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}
