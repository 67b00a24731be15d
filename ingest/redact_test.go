package ingest

import (
	"net/url"
	"strings"
	"testing"
)

// redactCases are strings that quote camera URLs, with what RedactURL must
// make of them. Go's url.Parse splits the user info at the last '@' of the
// authority, so a password (or user name) may hold '@' and ':' unescaped.
var redactCases = []struct {
	name, in, want string
}{
	{"plain", "rtsp://admin:secret@10.0.0.1:554/ch1", "rtsp://admin:***@10.0.0.1:554/ch1"},
	{"rtsps upper case", "RTSPS://admin:secret@cam/x", "RTSPS://admin:***@cam/x"},
	{"no password", "rtsp://admin@10.0.0.1/ch1", "rtsp://admin@10.0.0.1/ch1"},
	{"no user info", "rtsp://10.0.0.1:554/ch1", "rtsp://10.0.0.1:554/ch1"},
	{"empty password", "rtsp://admin:@cam/x", "rtsp://admin:***@cam/x"},
	{"at sign in password", "rtsp://admin:p@ss@10.0.0.1/ch1", "rtsp://admin:***@10.0.0.1/ch1"},
	{"colon and at in password", "rtsp://admin:a:b@c@cam:554/x", "rtsp://admin:***@cam:554/x"},
	{"at sign in user name", "rtsp://ops@site:secret@cam/x", "rtsp://ops@site:***@cam/x"},
	{"no path", "rtsp://admin:p@ss@cam", "rtsp://admin:***@cam"},
	{"in an error", `dial "rtsp://u:p@w@cam/x": refused, mail ops@example`, `dial "rtsp://u:***@cam/x": refused, mail ops@example`},
	{"two urls", "rtsp://a:x@y@h1/m rtsp://b:z@h2/s", "rtsp://a:***@h1/m rtsp://b:***@h2/s"},
	{"port and later at", "rtsp://cam:554/x?u=a@b", "rtsp://cam:554/x?u=a@b"},
}

func TestRedactURL(t *testing.T) {
	for _, tc := range redactCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := RedactURL(tc.in); got != tc.want {
				t.Fatalf("RedactURL(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// FuzzRedactURL checks that no part of a URL's password survives RedactURL,
// whatever url.Parse accepts.
func FuzzRedactURL(f *testing.F) {
	for _, tc := range redactCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, s string) {
		u, err := url.Parse(s)
		if err != nil || u.User == nil || (u.Scheme != "rtsp" && u.Scheme != "rtsps") {
			return
		}
		p, ok := u.User.Password()
		if !ok || len(p) < 4 || strings.Contains(u.User.Username(), p) || strings.Contains(u.Host+u.Path, p) {
			return
		}
		if got := RedactURL(s); strings.Contains(got, p) {
			t.Fatalf("RedactURL(%q) = %q still holds the password %q", s, got, p)
		}
	})
}
