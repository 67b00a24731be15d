package ui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/availability"
	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/review"
	"github.com/vigil-vms/vigil/registry"
)

// The fixture's secrets: no response, log line or audit row may contain them.
const (
	camPassword   = "Pw-S3cr3t-77"
	userPassword  = "correct-horse-1"
	adminPassword = "admin-password-1"
)

var fixtureT0 = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

// fakeLive stands in for the WebRTC relay where a real SDP exchange is not
// what a test is about (the matrix needs every allowed cell to succeed).
type fakeLive struct {
	mu       sync.Mutex
	n        int
	sessions map[string]string // id → camera
}

func (f *fakeLive) Offer(ctx context.Context, cameraID string, kind ingest.StreamKind, offerSDP string) (string, string, error) {
	if !strings.HasPrefix(offerSDP, "v=0") {
		return "", "", apierr.New(apierr.ErrInvalid, "the offer is not SDP")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.n++
	id := fmt.Sprintf("sess%d", f.n)
	if f.sessions == nil {
		f.sessions = map[string]string{}
	}
	f.sessions[id] = cameraID
	return id, "v=0\r\no=- answer " + string(kind) + "\r\n", nil
}

func (f *fakeLive) Patch(ctx context.Context, id, frag string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sessions[id]; !ok {
		return apierr.New(apierr.ErrNotFound, "no session")
	}
	return nil
}

func (f *fakeLive) Alive(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.sessions[id]
	return ok
}

func (f *fakeLive) Delete(id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.sessions[id]; !ok {
		return apierr.New(apierr.ErrNotFound, "no session")
	}
	delete(f.sessions, id)
	return nil
}

// fakeReview stands in for the recorder's read side: one recorded hour
// from fixtureT0 for every camera.
type fakeReview struct{}

var fakeClip = []byte("\x00\x00\x00\x18ftypisom fake fragmented mp4 payload for tests")

func (fakeReview) inRange(t time.Time) error {
	if t.Before(fixtureT0) || !t.Before(fixtureT0.Add(time.Hour)) {
		return apierr.New(apierr.ErrNotFound, "nothing was recorded at %s", t.Format(time.RFC3339))
	}
	return nil
}

func (f fakeReview) Recordings(ctx context.Context, camera string, start, end time.Time) (review.Recordings, error) {
	return review.Recordings{
		Spans:    []review.Span{{Start: fixtureT0, End: fixtureT0.Add(time.Hour)}},
		Segments: []review.SegmentInfo{{Start: fixtureT0, End: fixtureT0.Add(time.Hour), Bytes: 1000}},
	}, nil
}

// Open places the fake clip's first frame on the whole second at or before
// start, like a keyframe.
func (f fakeReview) Open(ctx context.Context, camera string, start time.Time, dur time.Duration) (review.Playback, error) {
	if err := f.inRange(start); err != nil {
		return review.Playback{}, err
	}
	return review.Playback{Start: start.Truncate(time.Second), WriterTo: bytes.NewReader(fakeClip)}, nil
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }

func (f fakeReview) Export(ctx context.Context, camera string, start, end time.Time) (review.Export, error) {
	if err := f.inRange(start); err != nil {
		return review.Export{}, err
	}
	sum := sha256.Sum256(fakeClip)
	return review.Export{File: nopCloser{bytes.NewReader(fakeClip)}, Size: int64(len(fakeClip)),
		SHA256: hex.EncodeToString(sum[:]), Name: camera + "_clip.mp4"}, nil
}

// Thumbnail places the fake keyframe on the even second at or before at.
func (f fakeReview) Thumbnail(ctx context.Context, camera string, at time.Time) (review.Thumbnail, error) {
	if err := f.inRange(at); err != nil {
		return review.Thumbnail{}, err
	}
	return review.Thumbnail{Time: at.Truncate(2 * time.Second), MP4: fakeClip, Final: true}, nil
}

// fakeRecording records which cameras the recorder was told about.
type fakeRecording struct {
	mu  sync.Mutex
	set map[string]ingest.Camera
}

func (f *fakeRecording) Set(c ingest.Camera) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.set == nil {
		f.set = map[string]ingest.Camera{}
	}
	f.set[c.ID] = c
}

func (f *fakeRecording) Remove(id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.set, id)
}

func (f *fakeRecording) Recording(id string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	c, ok := f.set[id]
	return ok && c.Record && c.Enabled
}

// fixture is a server over a real registry in a fresh database.
type fixture struct {
	t      testing.TB
	reg    *registry.Registry
	srv    *Server
	h      http.Handler
	live   *fakeLive
	fleet  *ingest.Fleet
	rec    *fakeRecording
	logBuf *testkit.SyncBuffer
	tokens map[string]string // principal → bearer secret
	// spareToken is a token of admin, for the token deletion cell.
	spareToken string
	incident   int64
	bodies     bytes.Buffer // every response body, for the password grep
}

// The principals of the authorization matrix.
const (
	pAdmin     = "admin"
	pOperator  = "operator"
	pResponder = "responder"
	pViewer    = "viewer"
	pScoped    = "scoped" // a responder limited to flood-control
	// pScopedAdmin is an admin limited to flood-control.
	pScopedAdmin = "scoped-admin"
	pAnon        = "anon"
	pRevoked     = "revoked" // a revoked token of admin
)

var principals = []string{pAdmin, pOperator, pResponder, pViewer, pScoped, pScopedAdmin, pAnon, pRevoked}

// template is a database with the fixture's users, tokens and cameras,
// built once (password hashing is slow on purpose) and copied per test.
var template struct {
	once   sync.Once
	dir    string
	err    error
	tokens map[string]string
	spare  string
	inc    int64
}

func buildTemplate() error {
	dir, err := os.MkdirTemp("", "vigil-ui-template")
	if err != nil {
		return err
	}
	template.dir = dir
	ctx := context.Background()
	reg, closeDB, err := registry.OpenFile(ctx, filepath.Join(dir, "vigil.db"))
	if err != nil {
		return err
	}
	defer closeDB()
	if _, err := reg.EnsureAdmin(ctx, adminPassword); err != nil {
		return err
	}
	users := []registry.User{
		{Username: pOperator, Role: registry.RoleOperator},
		{Username: pResponder, Role: registry.RoleResponder},
		{Username: pViewer, Role: registry.RoleViewer},
		{Username: pScoped, Role: registry.RoleResponder, Departments: []string{"flood-control"}},
		{Username: pScopedAdmin, Role: registry.RoleAdmin, Departments: []string{"flood-control"}},
	}
	for _, u := range users {
		if _, err := reg.CreateUser(ctx, u, userPassword); err != nil {
			return err
		}
	}
	template.tokens = map[string]string{}
	for _, name := range []string{pAdmin, pOperator, pResponder, pViewer, pScoped, pScopedAdmin} {
		_, secret, err := reg.CreateToken(ctx, name, "matrix")
		if err != nil {
			return err
		}
		template.tokens[name] = secret
	}
	revoked, secret, err := reg.CreateToken(ctx, pAdmin, "revoked")
	if err != nil {
		return err
	}
	if err := reg.DeleteToken(ctx, revoked.ID, ""); err != nil {
		return err
	}
	template.tokens[pRevoked] = secret
	spare, _, err := reg.CreateToken(ctx, pAdmin, "spare")
	if err != nil {
		return err
	}
	template.spare = spare.ID
	for _, c := range []ingest.Camera{
		{ID: "police-1", Name: "Station Rd", Department: "police", MainURL: "rtsp://admin:" + camPassword + "@127.0.0.1:1/main",
			SubURL: "rtsp://admin:" + camPassword + "@127.0.0.1:1/sub", Record: true, Enabled: true},
		{ID: "flood-1", Name: "水闸一号", Department: "flood-control", MainURL: "rtsp://admin:" + camPassword + "@127.0.0.1:1/main",
			Record: true, Enabled: true},
	} {
		if _, err := reg.CreateCamera(ctx, c); err != nil {
			return err
		}
	}
	in, err := reg.CreateIncident(ctx, registry.Incident{Title: "Flooding", Cameras: []string{"police-1"},
		Start: fixtureT0, End: fixtureT0.Add(10 * time.Minute), CreatedBy: pAdmin})
	if err != nil {
		return err
	}
	template.inc = in.ID
	return nil
}

// newFixture copies the template database into t.TempDir and starts a
// server over it.
func newFixture(t testing.TB, opts Options) *fixture {
	t.Helper()
	return newFixtureReview(t, opts, fakeReview{})
}

// newFixtureReview is newFixture with review as the recorder's read side.
func newFixtureReview(t testing.TB, opts Options, review Review) *fixture {
	t.Helper()
	template.once.Do(func() { template.err = buildTemplate() })
	if template.err != nil {
		t.Fatal(template.err)
	}
	data, err := os.ReadFile(filepath.Join(template.dir, "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := testkit.TempFile(t, "vigil.db", data)
	db := testdb.OpenSQLite(t, path)
	reg, err := registry.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	gb := fixtureGB28181(t, db.DB)
	f := &fixture{t: t, reg: reg, live: &fakeLive{}, rec: &fakeRecording{}, logBuf: &testkit.SyncBuffer{},
		tokens: template.tokens, spareToken: template.spare, incident: template.inc}
	f.fleet = ingest.NewFleet(ingest.FleetOptions{}) // not run: pulls nothing
	log := slog.New(slog.NewTextHandler(f.logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.srv, err = New(Deps{
		Registry: reg, Cameras: dispatch.New(f.fleet, f.rec), Live: f.live, Review: review,
		Probe: func(ctx context.Context, rawURL, transport string) (ingest.ProbeResult, error) {
			if strings.Contains(rawURL, "unreachable") {
				return ingest.ProbeResult{}, errors.New("dial tcp: connection refused for " + rawURL)
			}
			return ingest.ProbeResult{Video: &ingest.VideoStatus{Codec: "H264", Width: 1280, Height: 720}}, nil
		},
		Availability: func(ctx context.Context, from, to time.Time) (availability.Report, error) {
			return availability.Report{From: from, To: to,
				Departments: []availability.DepartmentAv{{ID: "police", Cameras: 1, Online: new(99.0)}, {ID: "flood-control", Cameras: 2, Online: new(50.0)}},
				Cameras: []availability.CameraAv{{ID: "police-1", Department: "police", Online: new(99.0)},
					{ID: "flood-1", Name: `=Dam, "north" gate`, Department: "flood-control", Online: new(50.0), Record: true, Recorded: new(25.5), ObservedS: 1800, ObservedPercent: 50},
					{ID: "flood-2", Department: "flood-control"}}}, nil
		},
		Metrics: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "vigil_up 1\n") }),
		Events:  fakeEvents,
		Health:  fakeHealth{},
		Alerts:  fakeAlerts{},
		GB28181: gb,
		Log:     log,

		Evidence: testEvidenceKey,
	}, opts)
	if err != nil {
		t.Fatal(err)
	}
	f.h = f.srv.Handler()
	return f
}

// req is one request of a test.
type req struct {
	method, path string
	body         string
	ctype        string
	who          string            // a principal (bearer token) or "" for none
	header       map[string]string // extra headers
	cookie       *http.Cookie
}

func (f *fixture) do(r req) *httptest.ResponseRecorder {
	f.t.Helper()
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr := httptest.NewRequest(r.method, r.path, body)
	if r.ctype != "" {
		hr.Header.Set("Content-Type", r.ctype)
	}
	if tok, ok := f.tokens[r.who]; ok {
		hr.Header.Set("Authorization", "Bearer "+tok)
	}
	for k, v := range r.header {
		hr.Header.Set(k, v)
	}
	if r.cookie != nil {
		hr.AddCookie(r.cookie)
	}
	rec := httptest.NewRecorder()
	f.h.ServeHTTP(rec, hr)
	f.bodies.Write(rec.Body.Bytes())
	for k, vs := range rec.Header() {
		fmt.Fprintf(&f.bodies, "%s: %s\n", k, strings.Join(vs, ","))
	}
	return rec
}

// auditRows counts the audit rows of an action.
func (f *fixture) auditRows(action string) int {
	f.t.Helper()
	es, err := f.reg.AuditEntries(context.Background(), registry.AuditFilter{Limit: 10000})
	if err != nil {
		f.t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if e.Action == action {
			n++
		}
	}
	return n
}

// login logs in through the web app's path and returns the cookie and CSRF token.
func (f *fixture) login(user, password string) (*http.Cookie, string) {
	f.t.Helper()
	rec := f.do(req{method: "POST", path: "/api/v1/session", ctype: "application/json",
		body: fmt.Sprintf(`{"username":%q,"password":%q}`, user, password)})
	if rec.Code != http.StatusOK {
		f.t.Fatalf("login %s: %d %s", user, rec.Code, rec.Body)
	}
	ck := sessionCookie(rec)
	if ck == nil {
		f.t.Fatal("no session cookie")
	}
	var s sessionBody
	if err := unmarshalStrict(rec.Body.Bytes(), &s); err != nil || s.CSRFToken == "" {
		f.t.Fatalf("session body %s: %v", rec.Body, err)
	}
	return ck, s.CSRFToken
}

func newRequest(method, path string, body io.Reader) *http.Request {
	return httptest.NewRequest(method, path, body)
}

func serve(h http.Handler, r *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec
}

// sessionCookie is the session cookie rec sets (the last, as a browser keeps
// it), or nil.
func sessionCookie(rec *httptest.ResponseRecorder) *http.Cookie {
	var ck *http.Cookie
	for _, c := range rec.Result().Cookies() {
		if c.Name == SessionCookie {
			ck = c
		}
	}
	return ck
}
