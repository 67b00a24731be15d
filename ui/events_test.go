package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/availability"
	"github.com/vigil-vms/vigil/gb28181/alarm"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
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

// A GB/T 28181 device's alarms join a camera's events, in order of time.
func TestEventsWithAlarms(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	alarms, err := alarm.Open(ctx, testdb.OpenSQLite(t, ""), alarm.Options{Cameras: f.reg.Cameras})
	if err != nil {
		t.Fatal(err)
	}
	f.srv.deps.GB28181.Alarms = alarms.Events
	for _, a := range []alarm.Alarm{
		{Camera: "flood-1", Time: time.Date(2026, 11, 26, 6, 59, 0, 0, time.UTC), Description: "before the range"},
		{Camera: "flood-1", Time: time.Date(2026, 11, 26, 7, 30, 0, 0, time.UTC), Priority: 1, Method: 5, Description: "water over the levee"},
		{Camera: "police-1", Time: time.Date(2026, 11, 26, 7, 30, 0, 0, time.UTC), Description: "another camera"},
	} {
		if err := alarms.Record(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	rec := f.do(req{method: "GET", path: "/api/v1/cameras/flood-1/events?start=2026-11-26T07:00:00Z&end=2026-11-26T10:00:00Z", who: pScoped})
	var res struct {
		Events []availability.Event `json:"events"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &res) != nil || len(res.Events) != 2 {
		t.Fatalf("events: %d %s", rec.Code, rec.Body)
	}
	off, al := res.Events[0], res.Events[1]
	if off.Type != availability.EventOffline || al.Type != alarm.EventAlarm ||
		!al.Start.Equal(time.Date(2026, 11, 26, 7, 30, 0, 0, time.UTC)) || al.End == nil || !al.End.Equal(al.Start) ||
		!strings.Contains(al.Message, "water over the levee (priority 1, video analysis alarm)") {
		t.Fatalf("events: %+v", res.Events)
	}
	if rec := f.do(req{method: "GET", path: "/api/v1/cameras/police-1/events?start=2026-11-26T07:00:00Z&end=2026-11-26T10:00:00Z", who: pScoped}); rec.Code != http.StatusNotFound || strings.Contains(rec.Body.String(), "another camera") {
		t.Fatalf("outside the departments: %d %s", rec.Code, rec.Body)
	}
}
