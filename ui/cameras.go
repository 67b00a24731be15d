package ui

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/registry"
)

// cameraBody is a camera as clients send it: record and enabled default to
// true when absent.
type cameraBody struct {
	ID            string          `json:"id"`
	Name          string          `json:"name"`
	Department    string          `json:"department"`
	Location      ingest.Location `json:"location"`
	MainURL       string          `json:"mainUrl"`
	SubURL        string          `json:"subUrl"`
	Transport     string          `json:"transport"`
	Record        *bool           `json:"record"`
	RetentionDays int             `json:"retentionDays"`
	Enabled       *bool           `json:"enabled"`
	Tags          []string        `json:"tags"`
	// Source and GB28181 may be repeated as GET gave them; a GB/T 28181
	// camera's are kept (registry.KeepGB).
	Source  string            `json:"source"`
	GB28181 *ingest.GBChannel `json:"gb28181"`
}

func (b cameraBody) camera() ingest.Camera {
	c := ingest.Camera{ID: b.ID, Name: b.Name, Department: b.Department, Location: b.Location,
		MainURL: b.MainURL, SubURL: b.SubURL, Transport: b.Transport, RetentionDays: b.RetentionDays,
		Record: true, Enabled: true, Tags: b.Tags, Source: b.Source, GB28181: b.GB28181}
	if b.Record != nil {
		c.Record = *b.Record
	}
	if b.Enabled != nil {
		c.Enabled = *b.Enabled
	}
	return c
}

// camera returns the camera of the {id} path value if p may act on it;
// a camera outside p's departments is not found, like a missing one.
func (s *Server) camera(r *http.Request, c *call, act action) (ingest.Camera, error) {
	id := r.PathValue("id")
	if c.audit != nil {
		c.audit.Camera = truncate(id, 64)
	}
	cam, err := s.reg.Camera(r.Context(), id)
	if err != nil {
		return cam, err
	}
	if err := authorize(c.p, act, &cam); err != nil {
		return ingest.Camera{}, err
	}
	return cam, nil
}

// visibleCameras lists the cameras p sees.
func (s *Server) visibleCameras(ctx context.Context, p *principal) ([]ingest.Camera, error) {
	cams, err := s.reg.Cameras(ctx)
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(cams, func(c ingest.Camera) bool { return authorize(p, actView, &c) != nil }), nil
}

// apply asks for a created or changed camera to take effect.
func (s *Server) apply(c ingest.Camera) {
	if s.deps.Cameras != nil {
		s.deps.Cameras.Apply(c)
	}
}

// unapply asks for a deleted camera to stop everywhere.
func (s *Server) unapply(id string) {
	if s.deps.Cameras != nil {
		s.deps.Cameras.Remove(id)
	}
}

// hideTaken words an id collision for an admin limited to departments so
// that it does not tell a camera they see from one of another department
// (which must answer exactly as one that does not exist). Camera ids are one
// namespace for every department (URLs, recordings and the audit log name
// cameras by id), so such an admin still learns that an id is not
// available, but never that a camera has it, nor its department or name.
func hideTaken(p *principal, err error) error {
	if !p.user.Scoped() {
		return err
	}
	if ve, ok := errors.AsType[*registry.ValidationError](err); ok {
		errs := slices.Clone(ve.Errors)
		for i, fe := range errs {
			if fe.Taken {
				errs[i].Message = "this id is not available: choose another"
			}
		}
		return &registry.ValidationError{Errors: errs}
	}
	if errors.Is(err, apierr.ErrConflict) {
		return apierr.New(apierr.ErrConflict, "this camera id is not available: choose another")
	}
	return err
}

// inScopeDepartment refuses to put a camera into a department outside the
// departments of an admin limited to some.
func inScopeDepartment(p *principal, department string) error {
	if department == "" || p.user.InScope(department) {
		return nil
	}
	return apierr.New(apierr.ErrForbidden, "your account is limited to %s: it cannot manage cameras of %q",
		strings.Join(p.user.Departments, ", "), department)
}

func (s *Server) listCameras(w http.ResponseWriter, r *http.Request, c *call) error {
	cams, err := s.visibleCameras(r.Context(), c.p)
	if err != nil {
		return err
	}
	for i := range cams {
		cams[i] = registry.RedactCamera(cams[i])
	}
	writeJSON(w, http.StatusOK, cams)
	return nil
}

// viewCamera is a handler that answers with view of the camera of the URL,
// which the caller must be allowed to view: the camera itself (its
// passwords redacted) or its status.
func (s *Server) viewCamera(view func(ingest.Camera) any) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request, c *call) error {
		cam, err := s.camera(r, c, actView)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, view(cam))
		return nil
	}
}

func (s *Server) createCamera(w http.ResponseWriter, r *http.Request, c *call) error {
	var in cameraBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	c.audit.Camera = truncate(in.ID, 64)
	if err := inScopeDepartment(c.p, in.Department); err != nil {
		return err
	}
	if in.Source == ingest.SourceGB28181 {
		return apierr.New(apierr.ErrInvalid, "a gb28181 camera comes from its device's catalog: add the device under GB/T 28181 devices")
	}
	cam, err := s.reg.CreateCamera(r.Context(), in.camera())
	if err != nil {
		return hideTaken(c.p, err)
	}
	s.apply(cam)
	s.log.Info("camera created", "camera", cam.ID, "user", c.p.user.Username, "url", ingest.RedactURL(cam.MainURL))
	w.Header().Set("Location", "/api/v1/cameras/"+cam.ID)
	writeJSON(w, http.StatusCreated, registry.RedactCamera(cam))
	return nil
}

func (s *Server) replaceCamera(w http.ResponseWriter, r *http.Request, c *call) error {
	id := r.PathValue("id")
	c.audit.Camera = truncate(id, 64)
	var in cameraBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	if in.ID != "" && in.ID != id {
		return apierr.New(apierr.ErrInvalid, "the id in the body (%q) differs from the URL's (%q): a camera cannot be renamed", truncate(in.ID, 64), truncate(id, 64))
	}
	in.ID = id
	if _, err := s.camera(r, c, actAdmin); err != nil {
		return err
	}
	if err := inScopeDepartment(c.p, in.Department); err != nil {
		return err
	}
	cam, before, err := s.reg.ReplaceCamera(r.Context(), in.camera())
	if err != nil {
		return err
	}
	c.audit.Detail = "changed " + strings.Join(changedFields(before, cam), ", ")
	s.apply(cam)
	if cam.Department != before.Department {
		s.endLive("camera moved to another department", func(o whepOwner) bool { return o.camera == cam.ID })
	}
	s.log.Info("camera changed", "camera", cam.ID, "user", c.p.user.Username)
	writeJSON(w, http.StatusOK, registry.RedactCamera(cam))
	return nil
}

// changedFields names the fields that differ (never their values: a URL may
// hold a password).
func changedFields(a, b ingest.Camera) []string {
	var out []string
	add := func(name string, diff bool) {
		if diff {
			out = append(out, name)
		}
	}
	add("name", a.Name != b.Name)
	add("department", a.Department != b.Department)
	add("location", a.Location != b.Location)
	add("mainUrl", a.MainURL != b.MainURL)
	add("subUrl", a.SubURL != b.SubURL)
	add("transport", a.Transport != b.Transport)
	add("record", a.Record != b.Record)
	add("retentionDays", a.RetentionDays != b.RetentionDays)
	add("enabled", a.Enabled != b.Enabled)
	add("tags", !slices.Equal(a.Tags, b.Tags))
	if len(out) == 0 {
		out = append(out, "nothing")
	}
	return out
}

func (s *Server) deleteCamera(w http.ResponseWriter, r *http.Request, c *call) error {
	cam, err := s.camera(r, c, actAdmin)
	if err != nil {
		return err
	}
	if _, err := s.reg.DeleteCamera(r.Context(), cam.ID); err != nil {
		return err
	}
	s.unapply(cam.ID)
	s.log.Info("camera deleted", "camera", cam.ID, "user", c.p.user.Username)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) importCameras(w http.ResponseWriter, r *http.Request, c *call) error {
	var body []byte
	switch mt := mediaType(r); mt {
	case "text/csv", "application/csv":
		b, err := readBody(w, r, maxCSVBody)
		if err != nil {
			return err
		}
		body = b
	case "multipart/form-data":
		b, err := readMultipartFile(w, r)
		if err != nil {
			return err
		}
		body = b
	default:
		return errStatus(http.StatusUnsupportedMediaType, "send the CSV with Content-Type: text/csv, or as the file field of a multipart/form-data upload")
	}
	cams, rows, rowErrs, err := registry.ReadCamerasCSV(strings.NewReader(string(body)))
	if err != nil {
		return err
	}
	for _, cam := range cams {
		if err := inScopeDepartment(c.p, cam.Department); err != nil {
			return err
		}
	}
	if err := s.reg.ImportCameras(r.Context(), cams, rows, rowErrs...); err != nil {
		return hideTaken(c.p, err)
	}
	ids := make([]string, len(cams))
	out := make([]ingest.Camera, len(cams))
	for i, cam := range cams {
		s.apply(cam)
		ids[i] = cam.ID
		out[i] = registry.RedactCamera(cam)
	}
	c.audit.Detail = fmt.Sprintf("%d cameras: %s", len(ids), truncate(strings.Join(ids, ","), 2000))
	s.log.Info("cameras imported", "count", len(ids), "user", c.p.user.Username)
	writeJSON(w, http.StatusCreated, struct {
		Imported int             `json:"imported"`
		Cameras  []ingest.Camera `json:"cameras"`
	}{len(out), out})
	return nil
}

// readMultipartFile returns the content of the "file" field.
func readMultipartFile(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	b, err := readBody(w, r, maxCSVBody+64<<10)
	if err != nil {
		return nil, err
	}
	_, params, _ := strings.Cut(r.Header.Get("Content-Type"), ";")
	boundary := ""
	for _, p := range strings.Split(params, ";") {
		k, v, _ := strings.Cut(strings.TrimSpace(p), "=")
		if strings.EqualFold(k, "boundary") {
			boundary = strings.Trim(v, `"`)
		}
	}
	if boundary == "" {
		return nil, apierr.New(apierr.ErrInvalid, "the multipart upload has no boundary")
	}
	mr := multipart.NewReader(strings.NewReader(string(b)), boundary)
	for {
		part, err := mr.NextPart()
		if err != nil {
			return nil, apierr.New(apierr.ErrInvalid, "the multipart upload has no file field")
		}
		if part.FormName() != "file" {
			continue
		}
		data, err := readAllLimit(part, maxCSVBody)
		if err != nil {
			return nil, err
		}
		return data, nil
	}
}

func readAllLimit(p *multipart.Part, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(p, limit+1))
	if err != nil {
		return nil, apierr.New(apierr.ErrInvalid, "cannot read the uploaded file: %v", err)
	}
	if int64(len(b)) > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	return b, nil
}

// probeBody is what the test of a new camera needs.
type probeBody struct {
	cameraBody
	Stream string `json:"stream"`
}

func (s *Server) testCamera(w http.ResponseWriter, r *http.Request, c *call) error {
	cam, kind, err := s.cameraStream(r, c, actAdmin)
	if err != nil {
		return err
	}
	u := cam.URL(kind)
	if u == "" {
		return apierr.New(apierr.ErrInvalid, "camera %q has no %s stream URL", cam.ID, kind)
	}
	return s.probe(w, r, u, cam.Transport)
}

func (s *Server) testNewCamera(w http.ResponseWriter, r *http.Request, c *call) error {
	var in probeBody
	if err := decodeJSON(w, r, &in); err != nil {
		return err
	}
	cam := in.camera()
	registry.NormalizeCamera(&cam)
	u := cam.MainURL
	if in.Stream == string(ingest.Sub) {
		u = cam.SubURL
	}
	// The admin form shows stored passwords as ***: test with the stored one,
	// of a camera the caller may manage (an admin limited to departments
	// must not send another department's password anywhere), and only at the
	// stored URL's scheme, host, port and user (no admin may send a stored
	// password to a host of their choosing). Otherwise *** is sent as it is.
	if ingest.URLPassword(u) == registry.RedactedPasswd && cam.ID != "" {
		if stored, err := s.reg.Camera(r.Context(), cam.ID); err == nil && authorize(c.p, actAdmin, &stored) == nil {
			u, _ = registry.KeepPassword(u, stored.MainURL, stored.SubURL)
		}
	}
	cam.MainURL = u
	cam.SubURL = ""
	for _, fe := range registry.ValidateCamera(cam, nil) {
		if fe.Field == "mainUrl" || fe.Field == "transport" {
			return &registry.ValidationError{Errors: []registry.FieldError{fe}}
		}
	}
	return s.probe(w, r, u, cam.Transport)
}

// probe answers what a camera URL offers, or 502 with the camera's error.
func (s *Server) probe(w http.ResponseWriter, r *http.Request, rawURL, transport string) error {
	if s.deps.Probe == nil {
		return apierr.New(apierr.ErrUnavailable, "testing a camera is not available in this server")
	}
	ctx, cancel := context.WithTimeout(r.Context(), 15*time.Second)
	defer cancel()
	res, err := s.deps.Probe(ctx, rawURL, transport)
	if err != nil {
		if st := statusOf(err); st != http.StatusInternalServerError {
			return err
		}
		return errStatus(http.StatusBadGateway, "the camera did not answer as expected: %s", ingest.RedactURL(err.Error()))
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// cameraStream is the camera of the URL, as camera finds it for act, and
// which of its streams the query asks for.
func (s *Server) cameraStream(r *http.Request, c *call, act action) (ingest.Camera, ingest.StreamKind, error) {
	cam, err := s.camera(r, c, act)
	if err != nil {
		return cam, "", err
	}
	kind, err := streamKind(r)
	return cam, kind, err
}

func streamKind(r *http.Request) (ingest.StreamKind, error) {
	switch q := r.URL.Query().Get("stream"); q {
	case "", "main":
		return ingest.Main, nil
	case "sub":
		return ingest.Sub, nil
	default:
		return "", apierr.New(apierr.ErrInvalid, "stream must be main or sub")
	}
}

// status is a camera's status, from the owner of the running cameras.
func (s *Server) status(cam ingest.Camera) dispatch.Status {
	if s.deps.Cameras == nil {
		return dispatch.New(nil, nil).Status(cam) // nothing runs: connecting, or disabled
	}
	return s.deps.Cameras.Status(cam)
}

func (s *Server) allStatus(w http.ResponseWriter, r *http.Request, c *call) error {
	cams, err := s.visibleCameras(r.Context(), c.p)
	if err != nil {
		return err
	}
	out := make([]dispatch.Status, 0, len(cams))
	for _, cam := range cams {
		out = append(out, localizeStatus(s.status(cam), requestLang(r)))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
