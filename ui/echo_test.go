package ui

import (
	"net/url"
	"strings"
	"testing"
)

// An id of any length in a URL is not echoed in full in the error (issue
// 12, item 13): what is quoted is capped.
func TestLongIDsNotEchoed(t *testing.T) {
	f := newFixture(t, Options{})
	long := strings.Repeat("x", 5000)
	esc := url.PathEscape(long)
	for _, r := range []req{
		{method: "GET", path: "/api/v1/cameras/" + esc},
		{method: "GET", path: "/api/v1/cameras/" + esc + "/status"},
		{method: "DELETE", path: "/api/v1/cameras/" + esc},
		{method: "GET", path: "/api/v1/users/" + esc},
		{method: "DELETE", path: "/api/v1/users/" + esc},
		{method: "PUT", path: "/api/v1/users/" + esc, ctype: "application/json", body: `{"role":"viewer"}`},
		{method: "DELETE", path: "/api/v1/tokens/" + esc},
		{method: "PUT", path: "/api/v1/departments/" + esc, ctype: "application/json", body: `{"nameZh":"a","nameEn":"b"}`},
		{method: "DELETE", path: "/api/v1/departments/" + esc},
		{method: "DELETE", path: "/api/v1/incidents/" + esc},
		{method: "DELETE", path: "/api/v1/whep/" + esc},
		{method: "GET", path: "/api/v1/nope/" + esc},
		// JSON errors quote what they could not take: a field name, a value.
		{method: "POST", path: "/api/v1/tokens", ctype: "application/json", body: `{"` + long + `":1}`},
		{method: "POST", path: "/api/v1/tokens", ctype: "application/json", body: `{"name":` + long + `}`},
		{method: "POST", path: "/api/v1/users", ctype: "application/json", body: `{"username":"` + long + `","role":"viewer","password":"password1"}`},
		{method: "POST", path: "/api/v1/users", ctype: "application/json", body: `{"username":"ok","role":"` + long + `","password":"password1"}`},
		{method: "POST", path: "/api/v1/departments", ctype: "application/json", body: `{"id":"` + long + `","name":{"en":"x","zh-CN":"x"}}`},
		{method: "POST", path: "/api/v1/incidents", ctype: "application/json", body: `{"title":"` + long + `"}`},
	} {
		r.who = pAdmin
		rec := f.do(r)
		if rec.Code < 400 {
			t.Errorf("%s %s…: %d", r.method, truncate(r.path, 30), rec.Code)
		}
		if n := rec.Body.Len(); n > 400 || strings.Contains(rec.Body.String(), strings.Repeat("x", 300)) {
			t.Errorf("%s %s…: %d, a %d-byte answer: %.120s…", r.method, truncate(r.path, 30), rec.Code, n, rec.Body)
		}
	}
}
