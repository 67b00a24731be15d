package registry

import (
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func ptr(s string) *string { return &s }

// layoutFixture: cameras police-1 and flood-1; ann (police and
// flood-control responder), bob (police viewer), cat (flood-control
// viewer), root (admin of every department).
func layoutFixture(t *testing.T) (context.Context, *Registry, map[string]User) {
	t.Helper()
	ctx := context.Background()
	r := openTest(t)
	flood := goodCamera("flood-1")
	flood.Department = "flood-control"
	for _, c := range []string{"police-1", "flood-1"} {
		cam := goodCamera(c)
		if c == "flood-1" {
			cam = flood
		}
		if _, err := r.CreateCamera(ctx, cam); err != nil {
			t.Fatal(err)
		}
	}
	us := map[string]User{}
	for _, u := range []User{
		{Username: "ann", Role: RoleResponder, Departments: []string{"police", "flood-control"}},
		{Username: "bob", Role: RoleViewer, Departments: []string{"police"}},
		{Username: "cat", Role: RoleViewer, Departments: []string{"flood-control"}},
		{Username: "root", Role: RoleAdmin},
	} {
		got, err := r.CreateUser(ctx, u, "password1")
		if err != nil {
			t.Fatal(err)
		}
		us[u.Username] = got
	}
	return ctx, r, us
}

func cellIDs(l Layout) []string {
	out := make([]string, len(l.Cells))
	for i, c := range l.Cells {
		if c != nil {
			out[i] = *c
		}
	}
	return out
}

func TestLayoutsSharedPrivateAndHidden(t *testing.T) {
	ctx, r, us := layoutFixture(t)
	shared, err := r.CreateLayout(ctx, us["ann"], Layout{Name: " Both ", Grid: 4,
		Cells: []*string{ptr("police-1"), nil, ptr("flood-1"), nil}, Shared: ptr("police")})
	if err != nil {
		t.Fatal(err)
	}
	if shared.ID == "" || shared.Name != "Both" || shared.Owner != "ann" || shared.Updated.IsZero() {
		t.Fatalf("created %+v", shared)
	}
	private, err := r.CreateLayout(ctx, us["ann"], Layout{Name: "Mine", Grid: 1, Cells: []*string{ptr("flood-1")}})
	if err != nil {
		t.Fatal(err)
	}

	// bob (police) sees the shared layout, without the flood-control camera,
	// and not the private one; cat (flood-control) sees neither.
	got, err := r.Layout(ctx, us["bob"], shared.ID)
	if err != nil || !slices.Equal(cellIDs(got), []string{"police-1", "", "", ""}) {
		t.Fatalf("bob sees %v %v", cellIDs(got), err)
	}
	b, _ := json.Marshal(got)
	if want := `"cells":["police-1",null,null,null]`; !json.Valid(b) || !strings.Contains(string(b), want) {
		t.Fatalf("JSON %s lacks %s", b, want)
	}
	_, err = r.Layout(ctx, us["bob"], private.ID)
	wantStatus(t, err, http.StatusNotFound)
	_, err = r.Layout(ctx, us["cat"], shared.ID)
	wantStatus(t, err, http.StatusNotFound)
	for who, want := range map[string]int{"ann": 2, "bob": 1, "cat": 0, "root": 1} {
		ls, err := r.Layouts(ctx, us[who])
		if err != nil || len(ls) != want {
			t.Errorf("%s lists %d layouts (%v), want %d", who, len(ls), err, want)
		}
	}

	// Only the owner or an admin changes it; bob cannot.
	_, err = r.UpdateLayout(ctx, us["bob"], Layout{ID: shared.ID, Name: "X", Grid: 1, Cells: []*string{nil}})
	wantStatus(t, err, http.StatusForbidden)
	_, err = r.DeleteLayout(ctx, us["cat"], shared.ID)
	wantStatus(t, err, http.StatusNotFound)

	// An admin limited to police edits it as they see it: the flood-control
	// camera they were shown as empty stays in its cell.
	pa, err := r.CreateUser(ctx, User{Username: "pa", Role: RoleAdmin, Departments: []string{"police"}}, "password1")
	if err != nil {
		t.Fatal(err)
	}
	seen, _ := r.Layout(ctx, pa, shared.ID)
	seen.Cells[0], seen.Cells[1] = seen.Cells[1], seen.Cells[0] // swap police-1 into cell 1
	if _, err := r.UpdateLayout(ctx, pa, seen); err != nil {
		t.Fatal(err)
	}
	full, _ := r.Layout(ctx, us["ann"], shared.ID)
	if !slices.Equal(cellIDs(full), []string{"", "police-1", "flood-1", ""}) || full.Owner != "ann" {
		t.Fatalf("after the limited admin's edit: %v owner %s", cellIDs(full), full.Owner)
	}

	// A camera deleted later is an empty cell.
	if _, err := r.DeleteCamera(ctx, "police-1"); err != nil {
		t.Fatal(err)
	}
	full, _ = r.Layout(ctx, us["ann"], shared.ID)
	if !slices.Equal(cellIDs(full), []string{"", "", "flood-1", ""}) {
		t.Fatalf("after deleting police-1: %v", cellIDs(full))
	}
	if _, err := r.DeleteLayout(ctx, us["root"], shared.ID); err != nil {
		t.Fatal(err)
	}
	_, err = r.Layout(ctx, us["ann"], shared.ID)
	wantStatus(t, err, http.StatusNotFound)
}

func TestLayoutValidation(t *testing.T) {
	ctx, r, us := layoutFixture(t)
	ann := us["ann"]
	for name, tc := range map[string]struct {
		l    Layout
		want int
	}{
		"grid 5":             {Layout{Name: "x", Grid: 5, Cells: make([]*string, 5)}, http.StatusBadRequest},
		"cells short":        {Layout{Name: "x", Grid: 4, Cells: make([]*string, 3)}, http.StatusBadRequest},
		"no name":            {Layout{Name: " ", Grid: 1, Cells: make([]*string, 1)}, http.StatusBadRequest},
		"camera twice":       {Layout{Name: "x", Grid: 4, Cells: []*string{ptr("flood-1"), ptr("flood-1"), nil, nil}}, http.StatusBadRequest},
		"not an id":          {Layout{Name: "x", Grid: 1, Cells: []*string{ptr("Cam 1")}}, http.StatusBadRequest},
		"missing camera":     {Layout{Name: "x", Grid: 1, Cells: []*string{ptr("ghost")}}, http.StatusNotFound},
		"shared elsewhere":   {Layout{Name: "x", Grid: 1, Cells: make([]*string, 1), Shared: ptr("cold-storage")}, http.StatusBadRequest},
		"dwell 1s":           {Layout{Name: "x", Grid: 4, Tour: &Tour{Dwell: Dwell(time.Second)}}, http.StatusBadRequest},
		"tour of a ghost":    {Layout{Name: "x", Grid: 4, Tour: &Tour{Layouts: []string{"nope"}, Dwell: Dwell(10 * time.Second)}}, http.StatusBadRequest},
		"six":                {Layout{Name: "x", Grid: 6, Cells: make([]*string, 6)}, 0},
		"tour of pages":      {Layout{Name: "x", Grid: 9, Tour: &Tour{Dwell: Dwell(5 * time.Second)}}, 0},
		"shared with a dept": {Layout{Name: "x", Grid: 1, Cells: make([]*string, 1), Shared: ptr("flood-control")}, 0},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := r.CreateLayout(ctx, ann, tc.l)
			wantStatus(t, err, tc.want)
		})
	}
	// bob (police only) cannot put a flood-control camera in a layout: it
	// does not exist for him.
	_, err := r.CreateLayout(ctx, us["bob"], Layout{Name: "x", Grid: 1, Cells: []*string{ptr("flood-1")}})
	wantStatus(t, err, http.StatusNotFound)
}

func TestTours(t *testing.T) {
	ctx, r, us := layoutFixture(t)
	ann := us["ann"]
	a, _ := r.CreateLayout(ctx, ann, Layout{Name: "A", Grid: 1, Cells: []*string{ptr("police-1")}, Shared: ptr("police")})
	b, _ := r.CreateLayout(ctx, ann, Layout{Name: "B", Grid: 1, Cells: []*string{ptr("flood-1")}})
	var in Layout
	if err := json.Unmarshal([]byte(`{"name":"Tour","grid":1,"cells":[],"shared":"police","tour":{"layouts":["`+a.ID+`","`+b.ID+`"],"dwell":"7s"}}`), &in); err != nil {
		t.Fatal(err)
	}
	tour, err := r.CreateLayout(ctx, ann, in)
	if err != nil {
		t.Fatal(err)
	}
	if time.Duration(tour.Tour.Dwell) != 7*time.Second || len(tour.Tour.Layouts) != 2 {
		t.Fatalf("tour %+v", tour.Tour)
	}
	// bob does not see the private layout B: the tour shows him A only.
	got, err := r.Layout(ctx, us["bob"], tour.ID)
	if err != nil || !slices.Equal(got.Tour.Layouts, []string{a.ID}) {
		t.Fatalf("bob's tour %+v %v", got.Tour, err)
	}
	b2, _ := json.Marshal(got.Tour)
	if string(b2) != `{"layouts":["`+a.ID+`"],"dwell":"7s"}` {
		t.Fatalf("tour JSON %s", b2)
	}
	// A tour of tours is refused; a deleted layout leaves the tour.
	_, err = r.CreateLayout(ctx, ann, Layout{Name: "T2", Grid: 1, Tour: &Tour{Layouts: []string{tour.ID}, Dwell: Dwell(10 * time.Second)}})
	wantStatus(t, err, http.StatusBadRequest)
	if _, err := r.DeleteLayout(ctx, ann, a.ID); err != nil {
		t.Fatal(err)
	}
	got, _ = r.Layout(ctx, ann, tour.ID)
	if !slices.Equal(got.Tour.Layouts, []string{b.ID}) {
		t.Fatalf("after deleting A: %v", got.Tour.Layouts)
	}
	// Seconds are a dwell too.
	var d Dwell
	if err := json.Unmarshal([]byte(`12`), &d); err != nil || time.Duration(d) != 12*time.Second {
		t.Fatalf("12 → %v %v", d, err)
	}
	wantStatus(t, json.Unmarshal([]byte(`"soon"`), &d), http.StatusBadRequest)
	// Deleting the owner deletes their layouts.
	if err := r.DeleteUser(ctx, "ann"); err != nil {
		t.Fatal(err)
	}
	if n := count(t, r, "layouts"); n != 0 {
		t.Fatalf("%d layouts left after deleting their owner", n)
	}
}

func TestIncidentEditNotesStatus(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	for _, id := range []string{"cam-1", "cam-2"} {
		if _, err := r.CreateCamera(ctx, goodCamera(id)); err != nil {
			t.Fatal(err)
		}
	}
	t0 := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	in, err := r.CreateIncident(ctx, Incident{Title: "Flooding", Cameras: []string{"cam-1"}, Start: t0, End: t0.Add(time.Hour), CreatedBy: "resp"})
	if err != nil || in.Status != IncidentOpen || in.Notes == nil {
		t.Fatalf("%+v %v", in, err)
	}
	in.Title, in.Status, in.Cameras, in.End = "Flood at the levee", IncidentClosed, []string{"cam-2"}, t0.Add(2*time.Hour)
	up, err := r.UpdateIncident(ctx, in)
	if err != nil || up.Title != "Flood at the levee" || up.Status != IncidentClosed || !slices.Equal(up.Cameras, []string{"cam-2"}) || up.Updated.IsZero() {
		t.Fatalf("%+v %v", up, err)
	}
	// A closed incident still holds its recordings; cam-1 left it.
	if h, _ := r.Holds(ctx, "cam-2"); len(h) != 1 || !h[0][1].Equal(t0.Add(2*time.Hour)) {
		t.Fatalf("holds of cam-2 %v", h)
	}
	if h, _ := r.Holds(ctx, "cam-1"); len(h) != 0 {
		t.Fatalf("holds of cam-1 %v", h)
	}
	in.Status = "pending"
	_, err = r.UpdateIncident(ctx, in)
	wantStatus(t, err, http.StatusBadRequest)
	in.ID = 999
	in.Status = IncidentOpen
	_, err = r.UpdateIncident(ctx, in)
	wantStatus(t, err, http.StatusNotFound)

	for _, text := range []string{"water at 1.2 m", "pump 3 started"} {
		if _, err := r.AddIncidentNote(ctx, up.ID, IncidentNote{Author: "resp", Text: text}); err != nil {
			t.Fatal(err)
		}
	}
	_, err = r.AddIncidentNote(ctx, up.ID, IncidentNote{Author: "resp", Text: "  "})
	wantStatus(t, err, http.StatusBadRequest)
	_, err = r.AddIncidentNote(ctx, 999, IncidentNote{Author: "resp", Text: "x"})
	wantStatus(t, err, http.StatusNotFound)
	got, _ := r.IncidentByID(ctx, up.ID)
	if len(got.Notes) != 2 || got.Notes[0].Text != "water at 1.2 m" || got.Notes[1].Author != "resp" || got.Notes[0].Time.IsZero() {
		t.Fatalf("notes %+v", got.Notes)
	}
	if _, err := r.db.Exec(ctx, `UPDATE incident_notes SET text = 'x'`); err == nil {
		t.Fatal("a note was changed")
	}
	if !got.Matches("PUMP") || got.Matches("fire") {
		t.Fatal("Matches does not search the notes")
	}
	if _, err := r.CreateIncident(ctx, Incident{Title: "Theft", Cameras: []string{"cam-1"}, Start: t0, End: t0.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for status, want := range map[string]string{IncidentOpen: "Theft", IncidentClosed: "Flood at the levee"} {
		ls, err := r.FindIncidents(ctx, IncidentFilter{Status: status})
		if err != nil || len(ls) != 1 || ls[0].Title != want {
			t.Errorf("status %s: %+v %v", status, ls, err)
		}
	}
	_, err = r.FindIncidents(ctx, IncidentFilter{Status: "x"})
	wantStatus(t, err, http.StatusBadRequest)
	wantStatus(t, r.DeleteIncident(ctx, up.ID), 0)
	if n := count(t, r, "incident_notes"); n != 0 {
		t.Fatalf("%d notes left after the incident was deleted", n)
	}
}

// dwellCases are the dwell table of TestDwellJSON and the seeds of FuzzDwellJSON.
var dwellCases = []struct {
	in   string
	want time.Duration // -1: refused
}{
	{`"30s"`, 30 * time.Second},
	{`"1m30s"`, 90 * time.Second},
	{`"7"`, 7 * time.Second},
	{`12`, 12 * time.Second},
	{`2.5`, 2500 * time.Millisecond},
	{`"soon"`, -1},
	{`true`, -1},
	{`null`, 0},
}

func TestDwellJSON(t *testing.T) {
	for _, tc := range dwellCases {
		var d Dwell
		err := json.Unmarshal([]byte(tc.in), &d)
		if tc.want < 0 {
			if err == nil {
				t.Errorf("%s: accepted as %v", tc.in, d)
			}
			continue
		}
		if err != nil || time.Duration(d) != tc.want {
			t.Errorf("%s: %v %v, want %v", tc.in, d, err, tc.want)
		}
	}
}

// FuzzDwellJSON: whatever a dwell reads as, it writes back as a string
// that reads as the same dwell.
func FuzzDwellJSON(f *testing.F) {
	for _, tc := range dwellCases {
		f.Add(tc.in)
	}
	f.Fuzz(func(t *testing.T, in string) {
		var d Dwell
		if json.Unmarshal([]byte(in), &d) != nil {
			return
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		var back Dwell
		if err := json.Unmarshal(b, &back); err != nil || back != d {
			t.Fatalf("%s → %v → %s → %v %v", in, d, b, back, err)
		}
	})
}
