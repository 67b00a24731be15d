package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/health"
)

// fakeHealth reports the system's checks and one per fixture camera.
type fakeHealth struct{}

func (fakeHealth) Report(context.Context) health.Report {
	since := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	return health.Report{Status: health.Degraded, Checks: []health.Check{
		{Name: "camera/flood-1", Status: health.OK, Since: since, Camera: "flood-1", Department: "flood-control"},
		{Name: "camera/police-1", Status: health.Degraded, Message: "offline", Since: since, Camera: "police-1", Department: "police"},
		{Name: "storage", Status: health.OK, Since: since},
		{Name: "gb28181/" + gbPolice, Status: health.Degraded, Message: "offline", Since: since, Department: "police"},
	}}
}

type fakeAlerts struct{}

func (fakeAlerts) SendTest(_ context.Context, by string) []alerts.TestResult {
	return []alerts.TestResult{{URL: "https://hooks.example/x", Delivered: true}, {URL: "http://down.example/", Error: "503 by " + by}}
}

// A user limited to departments sees the system's checks and their own
// cameras' and GB/T 28181 devices', the status recomputed from those.
func TestHealthScope(t *testing.T) {
	f := newFixture(t, Options{})
	for who, want := range map[string][]string{
		pAdmin:       {"camera/flood-1", "camera/police-1", "storage", "gb28181/" + gbPolice},
		pOperator:    {"camera/flood-1", "camera/police-1", "storage", "gb28181/" + gbPolice},
		pScopedAdmin: {"camera/flood-1", "storage"},
	} {
		rec := f.do(req{method: "GET", path: "/api/v1/health", who: who})
		var rep health.Report
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &rep) != nil {
			t.Fatalf("%s: %d %s", who, rec.Code, rec.Body)
		}
		var got []string
		for _, c := range rep.Checks {
			got = append(got, c.Name)
		}
		wantStatus := health.Degraded
		if len(want) == 2 {
			wantStatus = health.OK
		}
		if len(got) != len(want) || rep.Status != wantStatus {
			t.Errorf("%s sees %v (%s), want %v (%s)", who, got, rep.Status, want, wantStatus)
		}
	}
	rec := f.do(req{method: "POST", path: "/api/v1/alerts/test", who: pAdmin})
	var res struct{ Webhooks []alerts.TestResult }
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &res) != nil || len(res.Webhooks) != 2 || res.Webhooks[1].Error != "503 by admin" {
		t.Fatalf("alerts/test: %d %s", rec.Code, rec.Body)
	}
	if f.auditRows("alerts.test") != 1 {
		t.Error("the test event is not in the audit log")
	}
}
