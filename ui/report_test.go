package ui

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// The availability report as CSV for a department head: one row per camera,
// as a download, limited to the user's departments like the JSON report; a
// camera without observation says no data instead of a percentage.
func TestAvailabilityCSV(t *testing.T) {
	f := newFixture(t, Options{})
	get := func(who string) [][]string {
		t.Helper()
		rec := f.do(req{method: "GET", path: "/api/v1/reports/availability?from=2026-11-22T00:00:00Z&to=2026-11-29T00:00:00Z&format=csv", who: who})
		if rec.Code != ok {
			t.Fatalf("%s: %d %s", who, rec.Code, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/csv") {
			t.Errorf("Content-Type %q", ct)
		}
		if cd := rec.Header().Get("Content-Disposition"); cd != "attachment; filename=availability-20261122T0000Z-20261129T0000Z.csv" {
			t.Errorf("Content-Disposition %q", cd)
		}
		rows, err := csv.NewReader(rec.Body).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", who, err)
		}
		if len(rows) == 0 || strings.Join(rows[0], ",") != "camera,name,department,online %,recorded %,observed %,observed seconds,note" {
			t.Fatalf("header %q", rows)
		}
		return rows[1:]
	}
	all := get(pAdmin)
	if len(all) != 3 || all[0][0] != "police-1" {
		t.Fatalf("admin rows %q", all)
	}
	scoped := get(pScoped)
	want := [][]string{
		{"flood-1", `'=Dam, "north" gate`, "flood-control", "50.0", "25.5", "50.0", "1800", ""},
		{"flood-2", "", "flood-control", "", "", "0.0", "0", "no data: not observed in the period"},
	}
	if fmt.Sprint(scoped) != fmt.Sprint(want) {
		t.Fatalf("scoped rows\n%q\nwant\n%q", scoped, want)
	}
	// the JSON says the same: null, not 0 or 100, where nothing was observed
	rec := f.do(req{method: "GET", path: "/api/v1/reports/availability", who: pScoped})
	if rec.Code != ok || !strings.Contains(rec.Body.String(), `{"id":"flood-2","name":"","department":"flood-control","observedSeconds":0,"observedPercent":0,"online":null,"record":false,"recorded":null}`) {
		t.Fatalf("JSON %d %s", rec.Code, rec.Body)
	}
	if rec := f.do(req{method: "GET", path: "/api/v1/reports/availability?format=xlsx", who: pAdmin}); rec.Code != http.StatusBadRequest {
		t.Fatalf("format=xlsx: %d %s", rec.Code, rec.Body)
	}
}
