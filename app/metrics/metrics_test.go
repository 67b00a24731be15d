package metrics

import (
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// Route labels stay bounded: no camera id or session becomes a label value.
func TestRouteClass(t *testing.T) {
	for path, want := range map[string]string{
		"/healthz":                            "/healthz",
		"/metrics":                            "/metrics",
		"/api/v1/cameras":                     "/api/v1/cameras",
		"/api/v1/cameras/police-007":          "/api/v1/cameras/{id}",
		"/api/v1/cameras/police-007/playback": "/api/v1/cameras/{id}/playback",
		"/api/v1/cameras/x/whep":              "/api/v1/cameras/{id}/whep",
		"/api/v1/whep/abcdef":                 "/api/v1/whep",
		"/api/v1/users/bob":                   "/api/v1/users",
		"/api/v1/":                            "/api/v1/other",
		"/":                                   "/web",
		"/js/main.js":                         "/web",
	} {
		if got := RouteClass(path); got != want {
			t.Errorf("RouteClass(%q) = %q, want %q", path, got, want)
		}
	}
}

// Requests to paths nobody registered — made without a login, thousands of
// them — add no series: labels come from route patterns, never raw paths.
func TestRequestLabelsBounded(t *testing.T) {
	m := New(Sources{})
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, r *http.Request) {}
	mux.HandleFunc("GET /api/v1/cameras/{id}/playback", ok)
	mux.HandleFunc("GET /api/v1/users/{username}", ok)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { http.NotFound(w, r) })
	h := m.Instrument(mux)
	series := func() int {
		mfs, err := m.Registry().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "vigil_http_request_duration_seconds" {
				return len(mf.GetMetric())
			}
		}
		return 0
	}
	rnd := rand.New(rand.NewPCG(1, 2))
	word := func() string { return strconv.FormatUint(rnd.Uint64(), 36) }
	paths := []func() string{
		func() string { return "/" + word() },
		func() string { return "/api/v1/" + word() },
		func() string { return "/api/v1/" + word() + "/" + word() },
		func() string { return "/api/v1/cameras/" + word() + "/" + word() },
		func() string { return "/api/v1/cameras/" + word() + "/playback" },
		func() string { return "/api/v1/users/" + word() },
	}
	for i := range 10000 {
		r := httptest.NewRequest("GET", paths[i%len(paths)](), nil)
		h.ServeHTTP(httptest.NewRecorder(), r)
	}
	// 2 patterns with 200, plus /web and /api/v1/other (404) for the catch-all.
	if n := series(); n > 4 {
		t.Fatalf("10000 random paths made %d series", n)
	}
	for path, want := range map[string]string{
		"/api/v1/cameras/x/playback": "/api/v1/cameras/{id}/playback",
		"/api/v1/nope":               "/api/v1/other",
		"/nope":                      "/web",
	} {
		r := httptest.NewRequest("GET", path, nil)
		mux.ServeHTTP(httptest.NewRecorder(), r)
		if got := routeLabel(r); got != want {
			t.Errorf("routeLabel(%s) = %q, want %q", path, got, want)
		}
	}
}

// Without a matched pattern, RouteClass still keeps made-up paths out.
func TestRouteClassUnknown(t *testing.T) {
	for _, p := range []string{"/api/v1/zzz", "/api/v1/cameras/x/zzz", "/api/v1/zzz/yyy"} {
		if got := RouteClass(p); got != "/api/v1/other" {
			t.Errorf("RouteClass(%q) = %q", p, got)
		}
	}
}
