package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/availability"
)

// fakeEvents reports one offline period of the camera within the range asked for.
func fakeEvents(_ context.Context, camera string, from, to time.Time) ([]availability.Event, error) {
	end := from.Add(time.Minute)
	return []availability.Event{{Type: availability.EventOffline, Start: from, End: &end, Message: camera + " offline"}}, nil
}

// The events of a camera: the range passed through, a camera outside the
// user's departments is not found (as a missing one), a bad range is 400.
func TestEvents(t *testing.T) {
	f := newFixture(t, Options{})
	const q = "?start=2026-11-26T07:00:00Z&end=2026-11-26T10:00:00Z"
	rec := f.do(req{method: "GET", path: "/api/v1/cameras/flood-1/events" + q, who: pScoped})
	var res struct {
		Events []struct {
			Type    string     `json:"type"`
			Start   time.Time  `json:"start"`
			End     *time.Time `json:"end"`
			Message string     `json:"message"`
		} `json:"events"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &res) != nil || len(res.Events) != 1 {
		t.Fatalf("events: %d %s", rec.Code, rec.Body)
	}
	e := res.Events[0]
	if e.Type != "offline" || !e.Start.Equal(time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC)) || e.End == nil || e.Message != "flood-1 offline" {
		t.Fatalf("event: %+v", e)
	}
	hidden := f.do(req{method: "GET", path: "/api/v1/cameras/police-1/events" + q, who: pScoped})
	missing := f.do(req{method: "GET", path: "/api/v1/cameras/ghost/events" + q, who: pScoped})
	if hidden.Code != http.StatusNotFound || missing.Code != http.StatusNotFound || strings.Contains(hidden.Body.String(), "offline") {
		t.Fatalf("outside the departments: %d %s; missing: %d", hidden.Code, hidden.Body, missing.Code)
	}
	for _, bad := range []string{"?start=2026-11-26T07:00:00Z", "?start=yesterday&end=2026-11-26T10:00:00Z",
		"?start=2026-11-26T10:00:00Z&end=2026-11-26T07:00:00Z"} {
		if rec := f.do(req{method: "GET", path: "/api/v1/cameras/flood-1/events" + bad, who: pAdmin}); rec.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s", bad, rec.Code, rec.Body)
		}
	}
}
