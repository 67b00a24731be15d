package ui

import (
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/evidence"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/review"
)

// packageRequest is one evidence package to stream: the clips of cams over
// [start, end), for an incident or a single camera's export.
type packageRequest struct {
	cams       []ingest.Camera
	start, end time.Time
	incident   *int64
	omitted    int
	name       string // the download's file name
}

// PackageSHA256Trailer is the HTTP trailer of an evidence package: the
// SHA-256 of the whole zip, as its audit entry records it.
const PackageSHA256Trailer = "X-Package-SHA256"

// exportFormat reads the export's format parameter: "" (or "mp4") for the
// MP4 download, "package" for a signed evidence package.
func exportFormat(r *http.Request) (pkg bool, err error) {
	switch f := r.URL.Query().Get("format"); f {
	case "", "mp4":
		return false, nil
	case "package":
		return true, nil
	default:
		return false, apierr.New(apierr.ErrInvalid, "format %q is not known: leave it out for the MP4, or use format=package for a signed evidence package", truncate(f, 32))
	}
}

// exportIncident streams one package with every camera of the incident
// that the caller may see; the others are left out and only counted.
func (s *Server) exportIncident(w http.ResponseWriter, r *http.Request, c *call) error {
	in, err := s.pathIncident(r)
	if err != nil {
		return err
	}
	id := in.ID
	c.audit.Start, c.audit.End = in.Start, in.End
	var cams []ingest.Camera
	for _, camID := range in.Cameras {
		cam, err := s.reg.Camera(r.Context(), camID)
		if err != nil {
			if errors.Is(err, apierr.ErrNotFound) {
				continue
			}
			return err
		}
		if authorize(c.p, actExport, &cam) == nil {
			cams = append(cams, cam)
		}
	}
	if len(cams) == 0 {
		return apierr.New(apierr.ErrNotFound, "incident %d does not exist", id)
	}
	if len(cams) == 1 {
		c.audit.Camera = cams[0].ID
	}
	return s.writePackage(w, r, c, packageRequest{cams: cams, start: in.Start, end: in.End, incident: &in.ID,
		omitted: len(in.Cameras) + len(in.PastCameras) - len(cams),
		name:    packageName("incident-"+strconv.FormatInt(in.ID, 10), in.Start, in.End)})
}

// packageName is the download name of a package, such as
// police-007_20261126T080000Z_20261126T081000Z.zip.
func packageName(what string, start, end time.Time) string {
	return review.DownloadName(what, start, end, ".zip")
}

// writePackage exports the cameras one after the other (each holds one of
// the export places only while it is prepared and stored), streaming each
// clip into the zip as it is read. A camera with nothing recorded in the
// range is listed in the manifest without a file when others have some; an
// error before the first byte answers JSON, a later one cuts the package
// (which then fails to verify) and is audited as a failure.
func (s *Server) writePackage(w http.ResponseWriter, r *http.Request, c *call, p packageRequest) error {
	if !s.deps.Evidence.Valid() {
		return apierr.New(apierr.ErrUnavailable, "evidence packages are not available in this server")
	}
	if s.deps.Review == nil {
		return apierr.New(apierr.ErrUnavailable, "export is not available in this server")
	}
	user := c.p.user.Username
	ctx := review.WithUser(reviewContext(r, c), user)
	m := evidence.Manifest{Incident: p.incident, Start: p.start.UTC(), End: p.end.UTC(), Exporter: user,
		Exported: time.Now().UTC().Truncate(time.Second), Omitted: p.omitted}
	var pw *evidence.Writer
	var firstErr error
	cw := &countWriter{w: w}
	used := map[string]bool{}
	for i, cam := range p.cams {
		entry := evidence.Camera{ID: cam.ID, Name: cam.Name, Department: cam.Department, Gaps: []evidence.Gap{}}
		ex, err := s.deps.Review.Export(ctx, cam.ID, p.start, p.end)
		if errors.Is(err, apierr.ErrNotFound) {
			if firstErr == nil {
				firstErr = err
			}
			m.Cameras = append(m.Cameras, entry)
			continue
		}
		if err != nil {
			return err
		}
		if pw == nil {
			h := w.Header()
			h.Set("Content-Type", "application/zip")
			h.Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": p.name}))
			h.Set("Trailer", PackageSHA256Trailer)
			w.WriteHeader(http.StatusOK)
			pw = evidence.NewWriter(cw, s.deps.Evidence)
		}
		name := ex.Name
		if used[name] {
			// two camera ids alike but for characters a file name cannot hold
			name = strconv.Itoa(i+1) + "_" + name
		}
		used[name] = true
		f, err := pw.Add(name, ex.File, m.Exported)
		ex.File.Close()
		if err != nil {
			return err
		}
		if f.SHA256 != ex.SHA256 || f.Size != ex.Size {
			return fmt.Errorf("export of %s: the clip sent (%d bytes, sha256 %s) is not the clip prepared (%d bytes, sha256 %s)",
				cam.ID, f.Size, f.SHA256, ex.Size, ex.SHA256)
		}
		entry.File, entry.RecordedSeconds = f.Name, ex.Recorded.Seconds()
		for _, g := range ex.Gaps {
			entry.Gaps = append(entry.Gaps, evidence.Gap{Start: g.Start.UTC(), End: g.End.UTC()})
		}
		m.Cameras = append(m.Cameras, entry)
	}
	if pw == nil {
		// nothing recorded on any camera: say so rather than sign an empty package
		return firstErr
	}
	sum, err := pw.Close(m)
	if err != nil {
		return err
	}
	w.Header().Set(PackageSHA256Trailer, sum)
	files := make([]string, 0, len(m.Cameras))
	for _, cam := range m.Cameras {
		if cam.File != "" {
			files = append(files, cam.ID)
		}
	}
	detail := "package sha256 " + sum + " bytes " + strconv.FormatInt(cw.n, 10) + " key " + evidence.KeyID(s.deps.Evidence.Public()) +
		" cameras " + strings.Join(files, ",")
	if p.incident != nil {
		detail = "incident " + strconv.FormatInt(*p.incident, 10) + " " + detail
	}
	if p.omitted > 0 {
		detail += " omitted " + strconv.Itoa(p.omitted)
	}
	c.audit.Detail = detail
	s.log.Info("evidence package", "user", user, "bytes", cw.n, "sha256", sum, "cameras", len(files))
	return nil
}

// countWriter counts the bytes written through it.
type countWriter struct {
	w interface{ Write([]byte) (int, error) }
	n int64
}

func (cw *countWriter) Write(b []byte) (int, error) {
	n, err := cw.w.Write(b)
	cw.n += int64(n)
	return n, err
}

// evidenceKey shows the public key that signs evidence packages, to compare
// with the one a package names (vigil verify prints it too).
func (s *Server) evidenceKey(w http.ResponseWriter, r *http.Request, c *call) error {
	if !s.deps.Evidence.Valid() {
		return apierr.New(apierr.ErrUnavailable, "evidence packages are not available in this server")
	}
	pub := s.deps.Evidence.Public()
	writeJSON(w, http.StatusOK, evidenceKeyBody{Algorithm: "Ed25519", PublicKey: evidence.FormatPublic(pub), KeyID: evidence.KeyID(pub)})
	return nil
}

type evidenceKeyBody struct {
	Algorithm string `json:"algorithm"`
	PublicKey string `json:"publicKey"`
	KeyID     string `json:"keyId"`
}
