package ui

import (
	"context"
	"slices"
	"testing"
)

// A PUT of a user without "departments" (or with null) keeps the user's
// department limit: absent means unchanged, so a client that only sets a
// role cannot lift the limit by omission (issue 12, item 13). An empty list
// is the explicit "every department".
func TestUpdateUserKeepsDepartmentsWhenAbsent(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	depts := func() []string {
		u, err := f.reg.User(ctx, pScoped)
		if err != nil {
			t.Fatal(err)
		}
		return u.Departments
	}
	want := []string{"flood-control"}
	if got := depts(); !slices.Equal(got, want) {
		t.Fatalf("fixture: %v", got)
	}
	for _, body := range []string{`{"role":"operator"}`, `{"role":"responder","departments":null}`} {
		rec := f.do(req{method: "PUT", path: "/api/v1/users/" + pScoped, ctype: "application/json", body: body, who: pAdmin})
		if rec.Code != ok {
			t.Fatalf("%s: %d %s", body, rec.Code, rec.Body)
		}
		if got := depts(); !slices.Equal(got, want) {
			t.Fatalf("after %s: departments %v, want %v", body, got, want)
		}
	}
	rec := f.do(req{method: "PUT", path: "/api/v1/users/" + pScoped, ctype: "application/json", body: `{"role":"responder","departments":[]}`, who: pAdmin})
	if rec.Code != ok {
		t.Fatalf("explicit []: %d %s", rec.Code, rec.Body)
	}
	if got := depts(); len(got) != 0 {
		t.Fatalf("after an explicit []: %v", got)
	}
}
