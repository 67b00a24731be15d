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
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/availability"
	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
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
// built once (password hashing is slow on purpose) and copied per test: the
// SQLite file's bytes, and its rows for a test on PostgreSQL.
var template struct {
	once   sync.Once
	err    error
	data   []byte               // the SQLite database file
	rows   map[string]tableRows // the rows of templateTables
	tokens map[string]string
	spare  string
	inc    int64
}

// templateTables are the tables the template fills, in an order that
// inserts no row before the row it refers to.
var templateTables = []string{"departments", "users", "user_departments", "tokens", "cameras", "incidents", "incident_cameras"}

// tableRows are the columns and rows of a table.
type tableRows struct {
	cols []string
	rows [][]any
}

// buildTemplate builds the template in an SQLite file and keeps its bytes
// and rows; the file is removed.
func buildTemplate() error {
	dir, err := os.MkdirTemp("", "vigil-ui-template")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	path := filepath.Join(dir, "vigil.db")
	db, err := sqldb.Open(ctx, sqldb.Config{Path: path})
	if err != nil {
		return err
	}
	defer db.Close()
	reg, err := registry.Open(ctx, db)
	if err != nil {
		return err
	}
	if err := fillTemplate(ctx, reg); err != nil {
		return err
	}
	template.rows = map[string]tableRows{}
	for _, table := range templateTables {
		if template.rows[table], err = readTable(ctx, db, table); err != nil {
			return err
		}
	}
	if err := db.Close(); err != nil {
		return err
	}
	template.data, err = os.ReadFile(path)
	return err
}

// readTable reads every row of table.
func readTable(ctx context.Context, db *sqldb.DB, table string) (tableRows, error) {
	rows, err := db.Query(ctx, `SELECT * FROM `+table)
	if err != nil {
		return tableRows{}, err
	}
	defer rows.Close()
	var out tableRows
	if out.cols, err = rows.Columns(); err != nil {
		return out, err
	}
	for rows.Next() {
		row := make([]any, len(out.cols))
		ptrs := make([]any, len(row))
		for i := range row {
			ptrs[i] = &row[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return out, err
		}
		out.rows = append(out.rows, row)
	}
	return out, rows.Err()
}

// pgFixtures are the PostgreSQL databases of the fixtures that ended, for
// the next ones: creating a database (and migrating it) takes about a
// second, emptying one and loading the template a few milliseconds. They
// live on pgtest's server, which goes with its databases when the tests
// end (on a server of VIGIL_TEST_POSTGRES_URL, the databases
// vigil_ui_<pid>_<n> stay).
var pgFixtures struct {
	mu   sync.Mutex
	free []*sqldb.DB
	n    int
}

// fixturePostgres returns a PostgreSQL database holding the template, with
// the registry's tables, for the test; it is reused after the test.
func fixturePostgres(t testing.TB) *sqldb.DB {
	t.Helper()
	ctx := context.Background()
	pgFixtures.mu.Lock()
	var db *sqldb.DB
	if n := len(pgFixtures.free); n > 0 {
		db, pgFixtures.free = pgFixtures.free[n-1], pgFixtures.free[:n-1]
	} else {
		pgFixtures.n++
	}
	n := pgFixtures.n
	pgFixtures.mu.Unlock()
	if db == nil {
		// a database of the test's own on the server names the server
		u, err := url.Parse(pgtest.URL(t))
		if err != nil {
			t.Fatal(err)
		}
		name := fmt.Sprintf("vigil_ui_%d_%d", os.Getpid(), n)
		if _, err := testdb.OpenURL(t, u.String()).Exec(ctx, `CREATE DATABASE `+name); err != nil {
			t.Fatal(err)
		}
		u.Path = "/" + name
		if db, err = sqldb.Open(ctx, sqldb.Config{URL: u.String()}); err != nil {
			t.Fatal(err)
		}
		if _, err := registry.Open(ctx, db); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() {
		pgFixtures.mu.Lock()
		defer pgFixtures.mu.Unlock()
		pgFixtures.free = append(pgFixtures.free, db)
	})
	loadTemplate(t, db)
	return db
}

// loadTemplate empties db's tables (but goose's) and inserts the
// template's rows: 0/1 become false/true where the column is boolean, and
// the incidents' identity goes on after their ids. The audit log's trigger
// refuses TRUNCATE: the transaction turns triggers off for itself
// (session_replication_role, as the superuser of pgtest's server).
func loadTemplate(t testing.TB, db *sqldb.DB) {
	t.Helper()
	ctx := context.Background()
	tx, err := db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	var tables string
	if err := tx.QueryRow(ctx, `SELECT string_agg(tablename, ', ') FROM pg_tables
		WHERE schemaname = current_schema() AND tablename NOT LIKE 'goose%'`).Scan(&tables); err != nil {
		t.Fatal(err)
	}
	for _, stmt := range []string{`SET LOCAL session_replication_role = replica`, `TRUNCATE ` + tables + ` RESTART IDENTITY`} {
		if _, err := tx.Exec(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	for _, table := range templateTables {
		tr := template.rows[table]
		bools := map[string]bool{}
		cols, err := tx.Query(ctx, `SELECT column_name FROM information_schema.columns WHERE table_name = ? AND data_type = 'boolean'`, table)
		if err != nil {
			t.Fatal(err)
		}
		for cols.Next() {
			var c string
			if err := cols.Scan(&c); err != nil {
				t.Fatal(err)
			}
			bools[c] = true
		}
		cols.Close()
		insert := `INSERT INTO ` + table + `(` + strings.Join(tr.cols, ", ") + `) VALUES(?` + strings.Repeat(", ?", len(tr.cols)-1) + `)`
		for _, row := range tr.rows {
			args := slices.Clone(row)
			for i, c := range tr.cols {
				if n, ok := args[i].(int64); ok && bools[c] {
					args[i] = n != 0
				}
			}
			if _, err := tx.Exec(ctx, insert, args...); err != nil {
				t.Fatalf("template %s: %v", table, err)
			}
		}
	}
	if _, err := tx.Exec(ctx, `SELECT setval(pg_get_serial_sequence('incidents', 'id'), (SELECT max(id) FROM incidents))`); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// fillTemplate makes the template's users, tokens, cameras and incident.
func fillTemplate(ctx context.Context, reg *registry.Registry) error {
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

// newFixture copies the template database into t.TempDir (or its rows into
// a new PostgreSQL database) and starts a server over it.
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
	var db *sqldb.DB
	if testdb.Postgres() {
		db = fixturePostgres(t)
	} else {
		db = testdb.OpenSQLite(t, testkit.TempFile(t, "vigil.db", template.data))
	}
	reg, err := registry.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	gb := fixtureGB28181(t, db)
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
