package ui

import (
	"context"
	"maps"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/registry"
)

// addPrincipal creates a user with a bearer token in f's database and
// returns its principal name for req.who.
func (f *fixture) addPrincipal(u registry.User) string {
	f.t.Helper()
	ctx := context.Background()
	if _, err := f.reg.CreateUser(ctx, u, userPassword); err != nil {
		f.t.Fatal(err)
	}
	_, secret, err := f.reg.CreateToken(ctx, u.Username, "test")
	if err != nil {
		f.t.Fatal(err)
	}
	f.tokens = maps.Clone(f.tokens) // the template's map is shared
	f.tokens[u.Username] = secret
	return u.Username
}

// probed records the URLs the server probes.
type probed struct {
	mu   sync.Mutex
	urls []string
}

func (p *probed) probe(ctx context.Context, rawURL, transport string) (ingest.ProbeResult, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.urls = append(p.urls, rawURL)
	return ingest.ProbeResult{}, nil
}

// TestTestCameraStoredPasswordScope: "test connection" with a *** password
// tests with the stored one, but only for a camera the caller may manage: an
// admin limited to flood-control must not make the server send the stored
// password of a police camera to a host of their choosing.
func TestTestCameraStoredPasswordScope(t *testing.T) {
	f := newFixture(t, Options{})
	p := &probed{}
	f.srv.deps.Probe = p.probe
	floodAdmin := f.addPrincipal(registry.User{Username: "flood-admin", Role: registry.RoleAdmin, Departments: []string{"flood-control"}})

	for _, tc := range []struct {
		who, camera, url string
		restored         bool
	}{
		{pAdmin, "police-1", "rtsp://admin:***@127.0.0.1:1/x", true},
		{floodAdmin, "flood-1", "rtsp://admin:***@127.0.0.1:1/x", true},
		{floodAdmin, "police-1", "rtsp://admin:***@127.0.0.1:1/x", false},
		// The stored password goes only where it is stored: same scheme,
		// host, port and user — for an unlimited admin as well.
		{pAdmin, "police-1", "rtsp://admin:***@203.0.113.9:554/x", false},
		{pAdmin, "police-1", "rtsp://admin:***@127.0.0.1:2/x", false},
		{pAdmin, "police-1", "rtsp://other:***@127.0.0.1:1/x", false},
		{pAdmin, "police-1", "rtsps://admin:***@127.0.0.1:1/x", false},
		{pAdmin, "police-1", "rtsp://admin:***@127.0.0.1.attacker.example:1/x", false},
		{floodAdmin, "flood-1", "rtsp://admin:***@203.0.113.9:1/x", false},
	} {
		t.Run(tc.who+"/"+tc.camera+"/"+tc.url, func(t *testing.T) {
			p.mu.Lock()
			p.urls = nil
			p.mu.Unlock()
			rec := f.do(req{method: "POST", path: "/api/v1/cameras/test", ctype: "application/json", who: tc.who,
				body: `{"id":"` + tc.camera + `","mainUrl":"` + tc.url + `"}`})
			if rec.Code != ok {
				t.Fatalf("test: %d %s", rec.Code, rec.Body)
			}
			p.mu.Lock()
			defer p.mu.Unlock()
			if len(p.urls) != 1 {
				t.Fatalf("probed %d URLs, want 1", len(p.urls))
			}
			if got := strings.Contains(p.urls[0], camPassword); got != tc.restored {
				t.Fatalf("stored password used: %v, want %v", got, tc.restored)
			}
		})
	}
}

// TestReplaceCameraKeepsPasswordOnlyInPlace: a PUT whose URL keeps *** but
// names another host, port, user or scheme is refused, and the stored
// password reaches neither the new URL nor the fleet.
func TestReplaceCameraKeepsPasswordOnlyInPlace(t *testing.T) {
	for _, u := range []string{
		"rtsp://admin:***@203.0.113.9:554/main",
		"rtsp://admin:***@127.0.0.1:2/main",
		"rtsp://root:***@127.0.0.1:1/main",
		"rtsps://admin:***@127.0.0.1:1/main",
	} {
		t.Run(u, func(t *testing.T) {
			f := newFixture(t, Options{})
			rec := f.do(req{method: "PUT", path: "/api/v1/cameras/police-1", ctype: "application/json", who: pAdmin,
				body: `{"name":"Station Rd","department":"police","mainUrl":"` + u + `"}`})
			if rec.Code != bad || !strings.Contains(rec.Body.String(), "mainUrl") {
				t.Fatalf("PUT: %d %s, want 400 on mainUrl", rec.Code, rec.Body)
			}
			stored, err := f.reg.Camera(context.Background(), "police-1")
			if err != nil || !strings.Contains(stored.MainURL, "@127.0.0.1:1/main") {
				t.Fatalf("stored camera changed: %s %v", ingest.RedactURL(stored.MainURL), err)
			}
		})
	}
	// The same endpoint keeps the password (a path change is fine).
	f := newFixture(t, Options{})
	rec := f.do(req{method: "PUT", path: "/api/v1/cameras/police-1", ctype: "application/json", who: pAdmin,
		body: `{"name":"Station Rd","department":"police","mainUrl":"rtsp://admin:***@127.0.0.1:1/other"}`})
	if rec.Code != ok {
		t.Fatalf("PUT: %d %s", rec.Code, rec.Body)
	}
	if stored, _ := f.reg.Camera(context.Background(), "police-1"); ingest.URLPassword(stored.MainURL) != camPassword {
		t.Fatalf("password not kept: %s", ingest.RedactURL(stored.MainURL))
	}
}

// liveSessions returns the fake relay's open sessions.
func (f *fixture) liveSessions() map[string]string {
	f.live.mu.Lock()
	defer f.live.mu.Unlock()
	return maps.Clone(f.live.sessions)
}

// TestLiveEndsWhenAccessChanges: a live view outlives neither the viewer's
// right to it nor the viewer's account. Changing a user's departments,
// role or password, deleting the user, and moving a camera to another
// department end the live sessions concerned (a viewer who still may watch
// reconnects, and is authorized again).
func TestLiveEndsWhenAccessChanges(t *testing.T) {
	offer := func(f *fixture, who, camera string) string {
		t.Helper()
		rec := f.do(req{method: "POST", path: "/api/v1/cameras/" + camera + "/whep", ctype: "application/sdp", body: "v=0\r\n", who: who})
		if rec.Code != cr {
			t.Fatalf("offer: %d %s", rec.Code, rec.Body)
		}
		loc := rec.Header().Get("Location")
		return loc[strings.LastIndex(loc, "/")+1:]
	}
	for _, tc := range []struct {
		name     string
		change   req
		ended    []string // of the sessions opened by operator (police-1), viewer (flood-1)
		unchange []string
	}{
		{name: "user departments", change: req{method: "PUT", path: "/api/v1/users/operator", ctype: "application/json",
			body: `{"role":"operator","departments":["flood-control"]}`}, ended: []string{"operator"}, unchange: []string{"viewer"}},
		{name: "user role", change: req{method: "PUT", path: "/api/v1/users/viewer", ctype: "application/json",
			body: `{"role":"responder","departments":[]}`}, ended: []string{"viewer"}, unchange: []string{"operator"}},
		{name: "user password", change: req{method: "PUT", path: "/api/v1/users/operator", ctype: "application/json",
			body: `{"role":"operator","departments":[],"password":"another-password-1"}`}, ended: []string{"operator"}, unchange: []string{"viewer"}},
		{name: "user unchanged", change: req{method: "PUT", path: "/api/v1/users/operator", ctype: "application/json",
			body: `{"role":"operator","departments":[]}`}, unchange: []string{"operator", "viewer"}},
		{name: "user deleted", change: req{method: "DELETE", path: "/api/v1/users/operator"}, ended: []string{"operator"}, unchange: []string{"viewer"}},
		{name: "camera department", change: req{method: "PUT", path: "/api/v1/cameras/police-1", ctype: "application/json",
			body: `{"name":"Station Rd","department":"flood-control","mainUrl":"rtsp://admin:***@127.0.0.1:1/main"}`},
			ended: []string{"operator"}, unchange: []string{"viewer"}},
		{name: "camera renamed", change: req{method: "PUT", path: "/api/v1/cameras/police-1", ctype: "application/json",
			body: `{"name":"Station Road","department":"police","mainUrl":"rtsp://admin:***@127.0.0.1:1/main","subUrl":"rtsp://admin:***@127.0.0.1:1/sub"}`},
			unchange: []string{"operator", "viewer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			ids := map[string]string{pOperator: offer(f, pOperator, "police-1"), pViewer: offer(f, pViewer, "flood-1")}
			tc.change.who = pAdmin
			if rec := f.do(tc.change); rec.Code >= 300 {
				t.Fatalf("change: %d %s", rec.Code, rec.Body)
			}
			open := f.liveSessions()
			for _, who := range tc.ended {
				if _, ok := open[ids[who]]; ok {
					t.Errorf("the live session of %s is still open", who)
				}
			}
			for _, who := range tc.unchange {
				if _, ok := open[ids[who]]; !ok {
					t.Errorf("the live session of %s was ended", who)
				}
			}
		})
	}
}

// TestLivePerUserCap: one user's live sessions are capped (429 with a JSON
// error), other users are not affected, and a session that ends — deleted,
// or ended by the relay because its viewer never connected — frees its slot.
func TestLivePerUserCap(t *testing.T) {
	f := newFixture(t, Options{LivePerUser: 3})
	offer := func(who string) *httptest.ResponseRecorder {
		return f.do(req{method: "POST", path: "/api/v1/cameras/flood-1/whep", ctype: "application/sdp", body: "v=0\r\n", who: who})
	}
	var locs []string
	for i := range 3 {
		rec := offer(pViewer)
		if rec.Code != cr {
			t.Fatalf("offer %d: %d %s", i+1, rec.Code, rec.Body)
		}
		locs = append(locs, rec.Header().Get("Location"))
	}
	rec := offer(pViewer)
	if rec.Code != http.StatusTooManyRequests || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") ||
		!strings.Contains(rec.Body.String(), `"error"`) {
		t.Fatalf("offer beyond the cap: %d %s %s", rec.Code, rec.Header().Get("Content-Type"), rec.Body)
	}
	if rec := offer(pOperator); rec.Code != cr {
		t.Fatalf("another user: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do(req{method: "DELETE", path: locs[0], who: pViewer}); rec.Code != ok {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if rec := offer(pViewer); rec.Code != cr {
		t.Fatalf("after a delete: %d %s", rec.Code, rec.Body)
	}
	// The relay ends a session on its own (ICE never connected).
	f.live.mu.Lock()
	delete(f.live.sessions, locs[1][strings.LastIndex(locs[1], "/")+1:])
	f.live.mu.Unlock()
	if rec := offer(pViewer); rec.Code != cr {
		t.Fatalf("after the relay ended a session: %d %s", rec.Code, rec.Body)
	}
	if rec := offer(pViewer); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("at the cap again: %d %s", rec.Code, rec.Body)
	}
}
