package ui

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/registry"
)

// A layout shared with flood-control: the scoped user opens it and sees
// the police camera's cell empty (its id appears nowhere in the answer), a
// display of flood-control opens it too but cannot change it, and every
// change is audited.
func TestLayoutsAPI(t *testing.T) {
	f := newFixture(t, Options{})
	rec := f.do(req{method: "POST", path: "/api/v1/layouts", who: pAdmin, ctype: "application/json",
		body: `{"name":"Levee","grid":6,"cells":["police-1","flood-1",null,null,null,null],"shared":"flood-control","tour":null}`})
	if rec.Code != cr || !strings.HasPrefix(rec.Header().Get("Location"), "/api/v1/layouts/") {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var l registry.Layout
	if err := json.Unmarshal(rec.Body.Bytes(), &l); err != nil {
		t.Fatal(err)
	}
	rec = f.do(req{method: "GET", path: "/api/v1/layouts/" + l.ID, who: pScoped})
	if rec.Code != ok || !strings.Contains(rec.Body.String(), `"cells":[null,"flood-1",null,null,null,null]`) ||
		strings.Contains(rec.Body.String(), "police-1") {
		t.Fatalf("scoped user's view: %d %s", rec.Code, rec.Body)
	}
	// A client sends back what it read (id, owner, updated) with a change.
	var back map[string]any
	json.Unmarshal(rec.Body.Bytes(), &back)
	back["name"] = "Levee north"
	b, _ := json.Marshal(back)
	if rec := f.do(req{method: "PUT", path: "/api/v1/layouts/" + l.ID, who: pScoped, ctype: "application/json", body: string(b)}); rec.Code != forb {
		t.Fatalf("a non-owner changed it: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do(req{method: "PUT", path: "/api/v1/layouts/" + l.ID, who: pAdmin, ctype: "application/json", body: string(b)}); rec.Code != ok {
		t.Fatalf("the owner's change of what they read: %d %s", rec.Code, rec.Body)
	}

	// A display of flood-control.
	d, code, err := f.reg.CreateDisplay(context.Background(), "Lobby", []string{"flood-control"}, pAdmin)
	if err != nil {
		t.Fatal(err)
	}
	rec = f.do(req{method: "POST", path: "/api/v1/displays/signin", ctype: "application/json", body: fmt.Sprintf(`{"code":%q}`, code)})
	if rec.Code != ok {
		t.Fatalf("display sign-in: %d %s", rec.Code, rec.Body)
	}
	ck := sessionCookie(rec)
	var sess sessionBody
	json.Unmarshal(rec.Body.Bytes(), &sess)
	rec = f.do(req{method: "GET", path: "/api/v1/layouts/" + l.ID, cookie: ck})
	if rec.Code != ok || strings.Contains(rec.Body.String(), "police-1") {
		t.Fatalf("display %s opens the layout: %d %s", d.ID, rec.Code, rec.Body)
	}
	rec = f.do(req{method: "DELETE", path: "/api/v1/layouts/" + l.ID, cookie: ck, header: map[string]string{CSRFHeader: sess.CSRFToken}})
	if rec.Code != forb {
		t.Fatalf("a display deleted a layout: %d %s", rec.Code, rec.Body)
	}
	rec = f.do(req{method: "PUT", path: "/api/v1/session/password", cookie: ck, ctype: "application/json",
		header: map[string]string{CSRFHeader: sess.CSRFToken}, body: `{"currentPassword":"x-password-1","newPassword":"y-password-2"}`})
	if rec.Code != forb || !strings.Contains(rec.Body.String(), "display has no password") {
		t.Fatalf("a display changed a password: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do(req{method: "DELETE", path: "/api/v1/layouts/" + l.ID, who: pScopedAdmin}); rec.Code != nc {
		t.Fatalf("an admin of the department deletes it: %d %s", rec.Code, rec.Body)
	}
	for action, want := range map[string]int{"layout.create": 1, "layout.update": 2, "layout.delete": 2} {
		if n := f.auditRows(action); n != want {
			t.Errorf("%d audit rows %s, want %d", n, action, want)
		}
	}
	es, _ := f.reg.AuditEntries(context.Background(), registry.AuditFilter{Limit: 100})
	for _, e := range es {
		if e.Action == "layout.delete" && e.Result == "ok" && !strings.Contains(e.Detail, `"Levee north" owner admin grid 6 shared with flood-control`) {
			t.Errorf("delete audited as %q", e.Detail)
		}
	}
}

// Changing one's own password: the wrong current one is refused (and
// counts as a failed login), a short new one is refused as at creation;
// then the caller's browser gets a fresh session, while their other
// session and their tokens end and the old password no longer logs in.
func TestChangeOwnPassword(t *testing.T) {
	f := newFixture(t, Options{LoginFailures: 3})
	ck, csrf := f.login(pViewer, userPassword)
	other, _ := f.login(pViewer, userPassword)
	put := func(body string, ck *http.Cookie, csrf string) *httptest.ResponseRecorder {
		return f.do(req{method: "PUT", path: "/api/v1/session/password", ctype: "application/json", body: body,
			cookie: ck, header: map[string]string{CSRFHeader: csrf}})
	}
	if rec := put(`{"currentPassword":"`+userPassword+`","newPassword":"short"}`, ck, csrf); rec.Code != bad {
		t.Fatalf("short: %d %s", rec.Code, rec.Body)
	}
	if rec := put(`{"currentPassword":"`+userPassword+`","newPassword":"`+userPassword+`"}`, ck, csrf); rec.Code != bad {
		t.Fatalf("same: %d %s", rec.Code, rec.Body)
	}
	if rec := put(`{"currentPassword":"`+userPassword+`","newPassword":"x-new-password"}`, ck, ""); rec.Code != forb {
		t.Fatalf("without the CSRF token: %d %s", rec.Code, rec.Body)
	}
	for i := range 3 {
		rec := put(`{"currentPassword":"guess-`+fmt.Sprint(i)+`","newPassword":"x-new-password"}`, ck, csrf)
		if rec.Code != forb || !strings.Contains(rec.Body.String(), "current password is wrong") {
			t.Fatalf("guess %d: %d %s", i, rec.Code, rec.Body)
		}
	}
	if rec := put(`{"currentPassword":"`+userPassword+`","newPassword":"x-new-password"}`, ck, csrf); rec.Code != http.StatusTooManyRequests {
		t.Fatalf("after 3 wrong guesses: %d %s", rec.Code, rec.Body)
	}
	f.srv.limit = newLimiter(3, f.srv.opts.LoginWindow) // the window passed

	rec := put(`{"currentPassword":"`+userPassword+`","newPassword":"x-new-password"}`, ck, csrf)
	if rec.Code != ok {
		t.Fatalf("change: %d %s", rec.Code, rec.Body)
	}
	fresh := sessionCookie(rec)
	var sess sessionBody
	if err := json.Unmarshal(rec.Body.Bytes(), &sess); err != nil || fresh == nil || sess.CSRFToken == "" || sess.Username != pViewer {
		t.Fatalf("no fresh session: %s %v", rec.Body, err)
	}
	for name, c := range map[string]*http.Cookie{"the old cookie": ck, "the other session": other} {
		if rec := f.do(req{method: "GET", path: "/api/v1/session", cookie: c}); rec.Code != unau {
			t.Errorf("%s still works: %d", name, rec.Code)
		}
	}
	if rec := f.do(req{method: "GET", path: "/api/v1/session", cookie: fresh}); rec.Code != ok {
		t.Errorf("the fresh session: %d %s", rec.Code, rec.Body)
	}
	if rec := f.do(req{method: "GET", path: "/api/v1/session", who: pViewer}); rec.Code != unau {
		t.Errorf("the viewer's token still works: %d", rec.Code)
	}
	if code := loginFrom(f, pViewer, userPassword, "10.1.1.1:1"); code != unau {
		t.Errorf("the old password logs in: %d", code)
	}
	if code := loginFrom(f, pViewer, "x-new-password", "10.1.1.1:1"); code != ok {
		t.Errorf("the new password: %d", code)
	}
	es, _ := f.reg.AuditEntries(context.Background(), registry.AuditFilter{Limit: 100})
	var results []string
	for _, e := range es {
		if e.Action == "password.change" {
			results = append(results, e.Result)
			if strings.Contains(e.Detail, userPassword) || strings.Contains(e.Detail, "x-new-password") {
				t.Errorf("a password is in the audit log: %s", e.Detail)
			}
		}
	}
	if got := strings.Join(results, ","); !strings.HasPrefix(got, "ok,") || strings.Count(got, "denied") != 4 {
		t.Errorf("audit results (newest first) %s", got)
	}
}

// Incidents: a partial update keeps the rest, notes append with author
// and time, filters select by status and words; a limited user neither
// edits nor annotates an incident that also covers cameras they do not
// see, nor finds it by words of its hidden title.
func TestIncidentLifecycle(t *testing.T) {
	f := newFixture(t, Options{})
	rec := f.do(req{method: "PUT", path: fmt.Sprintf("/api/v1/incidents/%d", f.incident), who: pResponder, ctype: "application/json",
		body: `{"status":"closed","title":"Flooding at Station Rd","createdBy":"someone","notes":[]}`})
	var in registry.Incident
	if err := json.Unmarshal(rec.Body.Bytes(), &in); rec.Code != ok || err != nil || in.Status != "closed" ||
		in.Title != "Flooding at Station Rd" || len(in.Cameras) != 1 || in.CreatedBy != pAdmin {
		t.Fatalf("update: %d %s", rec.Code, rec.Body)
	}
	rec = f.do(req{method: "PUT", path: fmt.Sprintf("/api/v1/incidents/%d", f.incident), who: pResponder, ctype: "application/json",
		body: `{"cameras":["police-1","ghost"]}`})
	if rec.Code != nf {
		t.Fatalf("a missing camera: %d %s", rec.Code, rec.Body)
	}
	rec = f.do(req{method: "POST", path: fmt.Sprintf("/api/v1/incidents/%d/notes", f.incident), who: pResponder, ctype: "application/json",
		body: `{"text":"pump 3 failed"}`})
	if err := json.Unmarshal(rec.Body.Bytes(), &in); rec.Code != cr || err != nil || len(in.Notes) != 1 || in.Notes[0].Author != pResponder {
		t.Fatalf("note: %d %s", rec.Code, rec.Body)
	}
	shared, err := f.reg.CreateIncident(context.Background(), registry.Incident{Title: "Police raid", Cameras: []string{"police-1", "flood-1"},
		Start: fixtureT0, End: fixtureT0.Add(60e9), CreatedBy: pAdmin})
	if err != nil {
		t.Fatal(err)
	}
	f.reg.AddIncidentNote(context.Background(), shared.ID, registry.IncidentNote{Author: pAdmin, Text: "informant J. Doe"})
	for _, tc := range []struct {
		who, query string
		want       []int64
	}{
		{pResponder, "status=closed", []int64{f.incident}},
		{pResponder, "status=open", []int64{shared.ID}},
		{pResponder, "q=PUMP", []int64{f.incident}},
		{pResponder, "q=doe", []int64{shared.ID}},
		{pResponder, "camera=flood-1&from=2026-11-26T07:00:00Z&to=2026-11-26T09:00:00Z", []int64{shared.ID}},
		{pResponder, "from=2026-11-27T07:00:00Z&to=2026-11-27T09:00:00Z", nil},
		{pScoped, "", []int64{shared.ID}},
		{pScoped, "q=raid", nil},
		{pScoped, "q=doe", nil},
	} {
		rec := f.do(req{method: "GET", path: "/api/v1/incidents?" + tc.query, who: tc.who})
		var got []registry.Incident
		if err := json.Unmarshal(rec.Body.Bytes(), &got); rec.Code != ok || err != nil {
			t.Fatalf("%s: %d %s", tc.query, rec.Code, rec.Body)
		}
		var ids []int64
		for _, in := range got {
			ids = append(ids, in.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("%s %s: %v, want %v", tc.who, tc.query, ids, tc.want)
		}
		if tc.who == pScoped && (strings.Contains(rec.Body.String(), "Doe") || strings.Contains(rec.Body.String(), "raid")) {
			t.Errorf("the scoped user reads the hidden notes: %s", rec.Body)
		}
	}
	if rec := f.do(req{method: "GET", path: "/api/v1/incidents?status=maybe", who: pResponder}); rec.Code != bad {
		t.Errorf("status=maybe: %d", rec.Code)
	}
	for _, r := range []req{
		{method: "PUT", path: fmt.Sprintf("/api/v1/incidents/%d", shared.ID), body: `{"status":"closed"}`},
		{method: "POST", path: fmt.Sprintf("/api/v1/incidents/%d/notes", shared.ID), body: `{"text":"x"}`},
	} {
		r.who, r.ctype = pScoped, "application/json"
		if rec := f.do(r); rec.Code != forb {
			t.Errorf("%s %s by the scoped user: %d %s", r.method, r.path, rec.Code, rec.Body)
		}
	}
	for action, want := range map[string]int{"incident.update": 3, "incident.note": 2} {
		if n := f.auditRows(action); n != want {
			t.Errorf("%d audit rows %s, want %d", n, action, want)
		}
	}
}
