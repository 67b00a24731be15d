package ui

import (
	"context"
	"maps"
	"strings"
	"sync"
	"testing"

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

func (p *probed) probe(ctx context.Context, rawURL, transport string) (any, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.urls = append(p.urls, rawURL)
	return map[string]string{"ok": "yes"}, nil
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
		who, camera string
		restored    bool
	}{
		{pAdmin, "police-1", true},
		{floodAdmin, "flood-1", true},
		{floodAdmin, "police-1", false},
	} {
		t.Run(tc.who+"/"+tc.camera, func(t *testing.T) {
			p.mu.Lock()
			p.urls = nil
			p.mu.Unlock()
			rec := f.do(req{method: "POST", path: "/api/v1/cameras/test", ctype: "application/json", who: tc.who,
				body: `{"id":"` + tc.camera + `","mainUrl":"rtsp://admin:***@203.0.113.9:554/x"}`})
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
