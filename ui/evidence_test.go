package ui

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/evidence"
	"github.com/vigil-vms/vigil/recorder/review"
	"github.com/vigil-vms/vigil/registry"
)

// testEvidenceKey signs the fixture's packages.
var testEvidenceKey = evidence.NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)))

// verifyPackage checks a package against the fixture's key and returns its
// manifest and entry names.
func verifyPackage(t *testing.T, body []byte) (evidence.Manifest, []string) {
	t.Helper()
	m, err := evidence.Verify(bytes.NewReader(body), int64(len(body)), testEvidenceKey.Public())
	if err != nil {
		t.Fatalf("the package does not verify: %v", err)
	}
	zr, err := zip.NewReader(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	return m, names
}

func TestExportPackage(t *testing.T) {
	f := newFixtureReview(t, Options{}, gapReview{})
	before := time.Now().UTC().Truncate(time.Second)
	rec := f.do(req{method: "GET", who: pResponder,
		path: "/api/v1/cameras/police-1/export?start=2026-11-26T08:00:00Z&end=2026-11-26T08:00:30Z&format=package"})
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/zip" {
		t.Fatalf("package: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if cd := rec.Header().Get("Content-Disposition"); !strings.Contains(cd, "police-1_20261126T080000Z_20261126T080030Z.zip") {
		t.Errorf("Content-Disposition %q", cd)
	}
	m, names := verifyPackage(t, rec.Body.Bytes())
	if want := []string{"police-1_clip.mp4", evidence.ManifestName, evidence.SignatureName}; !slices.Equal(names, want) {
		t.Fatalf("entries %v, want %v", names, want)
	}
	clipSum := sha256.Sum256(fakeClip)
	if len(m.Files) != 1 || m.Files[0] != (evidence.File{Name: "police-1_clip.mp4", Size: int64(len(fakeClip)), SHA256: hex.EncodeToString(clipSum[:])}) {
		t.Errorf("files %+v", m.Files)
	}
	if len(m.Cameras) != 1 {
		t.Fatalf("cameras %+v", m.Cameras)
	}
	cam := m.Cameras[0]
	if cam.ID != "police-1" || cam.Name != "Station Rd" || cam.Department != "police" || cam.File != "police-1_clip.mp4" ||
		cam.RecordedSeconds != 10.25 || len(cam.Gaps) != 2 || !cam.Gaps[0].Start.Equal(gapStart) || !cam.Gaps[0].End.Equal(gapEnd) {
		t.Errorf("camera %+v", cam)
	}
	if !m.Start.Equal(fixtureT0) || !m.End.Equal(fixtureT0.Add(30*time.Second)) || m.Exporter != pResponder ||
		m.Exported.Before(before) || m.Exported.After(time.Now()) || m.Incident != nil || m.Omitted != 0 {
		t.Errorf("manifest %+v", m)
	}
	if m.PublicKey != evidence.FormatPublic(testEvidenceKey.Public()) || m.KeyID != evidence.KeyID(testEvidenceKey.Public()) {
		t.Errorf("key %s %s", m.PublicKey, m.KeyID)
	}

	// The audit row and the trailer carry the hash of the package as downloaded.
	sum := sha256.Sum256(rec.Body.Bytes())
	if got := rec.Result().Trailer.Get(PackageSHA256Trailer); got != hex.EncodeToString(sum[:]) {
		t.Errorf("trailer %s %q, want %x", PackageSHA256Trailer, got, sum)
	}
	found := false
	for _, e := range mustAudit(t, f) {
		if e.Action == "export" && e.User == pResponder {
			found = true
			if e.Result != "ok" || e.Camera != "police-1" || !strings.Contains(e.Detail, "package sha256 "+hex.EncodeToString(sum[:])) {
				t.Errorf("audit row %+v, want the package hash %x", e, sum)
			}
		}
	}
	if !found {
		t.Error("no audit row for the package")
	}

	// Plain export stays the MP4; an unknown format is refused.
	rec = f.do(req{method: "GET", who: pResponder, path: "/api/v1/cameras/police-1/export?start=2026-11-26T08:00:00Z&end=2026-11-26T08:00:30Z"})
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "video/mp4" || !bytes.Equal(rec.Body.Bytes(), fakeClip) {
		t.Errorf("plain export: %d %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	rec = f.do(req{method: "GET", who: pResponder, path: "/api/v1/cameras/police-1/export?start=2026-11-26T08:00:00Z&end=2026-11-26T08:00:30Z&format=tar"})
	if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), "format=package") {
		t.Errorf("format=tar: %d %s", rec.Code, rec.Body)
	}
	// Nothing recorded: an error, not an empty signed package.
	rec = f.do(req{method: "GET", who: pResponder, path: "/api/v1/cameras/police-1/export?start=2026-11-26T12:00:00Z&end=2026-11-26T12:00:30Z&format=package"})
	if rec.Code != http.StatusNotFound || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Errorf("nothing recorded: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}

// serialReview counts the exports open at once.
type serialReview struct {
	fakeReview
	mu         sync.Mutex
	open, most int
	cameras    []string
}

func (s *serialReview) Export(ctx context.Context, camera string, start, end time.Time) (review.Export, error) {
	ex, err := s.fakeReview.Export(ctx, camera, start, end)
	if err != nil {
		return ex, err
	}
	s.mu.Lock()
	s.open++
	s.most = max(s.most, s.open)
	s.cameras = append(s.cameras, camera)
	s.mu.Unlock()
	ex.File = closeFunc{ReadSeekCloser: ex.File, close: func() {
		s.mu.Lock()
		s.open--
		s.mu.Unlock()
	}}
	return ex, nil
}

type closeFunc struct {
	io.ReadSeekCloser
	close func()
}

func (c closeFunc) Close() error { c.close(); return c.ReadSeekCloser.Close() }

// An incident's package holds every camera of it the caller sees, one
// export at a time; a user limited to departments gets only theirs, and
// the manifest counts the others without naming them.
func TestExportIncident(t *testing.T) {
	rv := &serialReview{}
	f := newFixtureReview(t, Options{}, rv)
	in, err := f.reg.CreateIncident(context.Background(), registry.Incident{Title: "Levee breach", Cameras: []string{"police-1", "flood-1"},
		Start: fixtureT0, End: fixtureT0.Add(10 * time.Minute), CreatedBy: pAdmin})
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/incidents/%d/export", in.ID)
	cases := []struct {
		who     string
		cams    []string
		omitted int
	}{
		{pAdmin, []string{"flood-1", "police-1"}, 0}, // the registry keeps them sorted
		{pResponder, []string{"flood-1", "police-1"}, 0},
		{pScoped, []string{"flood-1"}, 1},
	}
	for _, tc := range cases {
		t.Run(tc.who, func(t *testing.T) {
			rec := f.do(req{method: "GET", path: path, who: tc.who})
			if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/zip" {
				t.Fatalf("%d %s", rec.Code, rec.Body)
			}
			m, names := verifyPackage(t, rec.Body.Bytes())
			var ids, files []string
			for _, c := range m.Cameras {
				ids = append(ids, c.ID)
				files = append(files, c.File)
			}
			if !slices.Equal(ids, tc.cams) || m.Omitted != tc.omitted || m.Incident == nil || *m.Incident != in.ID ||
				!m.Start.Equal(in.Start) || !m.End.Equal(in.End) || m.Exporter != tc.who {
				t.Fatalf("manifest %+v", m)
			}
			want := append(slices.Clone(files), evidence.ManifestName, evidence.SignatureName)
			if !slices.Equal(names, want) {
				t.Fatalf("entries %v, want %v", names, want)
			}
			if tc.omitted > 0 && (strings.Contains(rec.Body.String(), "police") || strings.Contains(rec.Body.String(), "Levee")) {
				t.Fatal("the package of a limited user names a camera or the title they may not see")
			}
			sum := sha256.Sum256(rec.Body.Bytes())
			es := mustAudit(t, f)
			e := es[0]
			if e.Action != "export" || e.User != tc.who || e.Result != "ok" ||
				!strings.Contains(e.Detail, fmt.Sprintf("incident %d package sha256 %x", in.ID, sum)) {
				t.Fatalf("audit row %+v", e)
			}
		})
	}
	if rv.most != 1 {
		t.Errorf("%d exports were open at once, want 1", rv.most)
	}

	// An incident with nothing recorded, and one the caller cannot see.
	empty, err := f.reg.CreateIncident(context.Background(), registry.Incident{Title: "Later", Cameras: []string{"flood-1"},
		Start: fixtureT0.Add(3 * time.Hour), End: fixtureT0.Add(4 * time.Hour), CreatedBy: pAdmin})
	if err != nil {
		t.Fatal(err)
	}
	if rec := f.do(req{method: "GET", path: fmt.Sprintf("/api/v1/incidents/%d/export", empty.ID), who: pAdmin}); rec.Code != http.StatusNotFound {
		t.Errorf("nothing recorded: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do(req{method: "GET", path: fmt.Sprintf("/api/v1/incidents/%d/export", f.incident), who: pScoped}); rec.Code != http.StatusNotFound {
		t.Errorf("an incident of police-1 only, as a flood-control user: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do(req{method: "GET", path: "/api/v1/incidents/nope/export", who: pAdmin}); rec.Code != http.StatusNotFound {
		t.Errorf("a bad id: %d %s", rec.Code, rec.Body)
	}
}

func TestEvidenceKeyShown(t *testing.T) {
	f := newFixture(t, Options{})
	rec := f.do(req{method: "GET", path: "/api/v1/evidence/key", who: pAdmin})
	got := decode[evidenceKeyBody](t, rec.Body.Bytes())
	pub := testEvidenceKey.Public()
	if rec.Code != http.StatusOK || got.PublicKey != evidence.FormatPublic(pub) || got.KeyID != evidence.KeyID(pub) || got.Algorithm != "Ed25519" {
		t.Fatalf("%d %s", rec.Code, rec.Body)
	}

	// a server without a key answers 503 on packages; the MP4 export stays
	f.srv.deps.Evidence = evidence.Key{}
	for _, path := range []string{"/api/v1/evidence/key", fmt.Sprintf("/api/v1/incidents/%d/export", f.incident),
		"/api/v1/cameras/police-1/export?start=2026-11-26T08:00:00Z&end=2026-11-26T08:00:30Z&format=package"} {
		if rec := f.do(req{method: "GET", path: path, who: pAdmin}); rec.Code != http.StatusServiceUnavailable {
			t.Errorf("%s without a key: %d %s", path, rec.Code, rec.Body)
		}
	}
	if rec := f.do(req{method: "GET", path: "/api/v1/cameras/police-1/export?start=2026-11-26T08:00:00Z&end=2026-11-26T08:00:30Z", who: pAdmin}); rec.Code != http.StatusOK {
		t.Errorf("MP4 export without a key: %d", rec.Code)
	}
}

// failingReview fails the export of one camera with a store error.
type failingReview struct {
	fakeReview
	camera string
}

func (f failingReview) Export(ctx context.Context, camera string, start, end time.Time) (review.Export, error) {
	if camera == f.camera {
		return review.Export{}, errors.New("read segment: connection reset")
	}
	return f.fakeReview.Export(ctx, camera, start, end)
}

// A camera failing after the package has begun cuts it: it does not
// verify, and the audit row says the export failed.
func TestExportIncidentFailsMidway(t *testing.T) {
	f := newFixtureReview(t, Options{}, failingReview{camera: "police-1"}) // flood-1 goes first
	in, err := f.reg.CreateIncident(context.Background(), registry.Incident{Title: "Levee breach", Cameras: []string{"police-1", "flood-1"},
		Start: fixtureT0, End: fixtureT0.Add(10 * time.Minute), CreatedBy: pAdmin})
	if err != nil {
		t.Fatal(err)
	}
	rec := f.do(req{method: "GET", path: fmt.Sprintf("/api/v1/incidents/%d/export", in.ID), who: pAdmin})
	body := rec.Body.Bytes()
	if _, err := evidence.Verify(bytes.NewReader(body), int64(len(body)), testEvidenceKey.Public()); err == nil {
		t.Fatal("a package cut midway verifies")
	}
	if e := mustAudit(t, f)[0]; e.Action != "export" || e.Result != "failed" || !strings.Contains(e.Detail, "connection reset") {
		t.Fatalf("audit row %+v", e)
	}
	// failing on the first camera answers JSON
	f = newFixtureReview(t, Options{}, failingReview{camera: "police-1"})
	rec = f.do(req{method: "GET", path: "/api/v1/cameras/police-1/export?start=2026-11-26T08:00:00Z&end=2026-11-26T08:00:30Z&format=package", who: pAdmin})
	if rec.Code != http.StatusInternalServerError || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("failure before the first byte: %d %q %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
}
