package metrics

import "testing"

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
