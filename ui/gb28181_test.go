package ui

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/gb28181/device"
	"github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/internal/sqldb"
)

// The fixture's GB/T 28181 devices: one in police, one in flood-control.
const (
	gbPolice = "44011300001320000001"
	gbFlood  = "44011300001320000002"
)

func fixtureGB28181(t testing.TB, db *sqldb.DB) *GB28181 {
	t.Helper()
	ctx := context.Background()
	st, err := device.Open(ctx, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	pw := "device-secret"
	for id, dep := range map[string]string{gbPolice: "police", gbFlood: "flood-control"} {
		if _, err := st.Create(ctx, device.Input{ID: id, Name: "NVR " + dep, Department: dep, Password: &pw}); err != nil {
			t.Fatal(err)
		}
	}
	// A SIP server that is not serving: every device "never", no refusals.
	return &GB28181{Devices: st, SIP: &sip.Server{}, PTZ: newPTZRecorder().send}
}

func TestGB28181Devices(t *testing.T) {
	f := newFixture(t, Options{})
	rec := f.do(req{method: "POST", path: "/api/v1/gb28181/devices", who: pAdmin, ctype: "application/json",
		body: `{"id":"44011300001320000003","name":"River 3","department":"flood-control","password":"pw-3"}`})
	if rec.Code != cr {
		t.Fatalf("create: %d %s", rec.Code, rec.Body)
	}
	var d gbDevice
	if err := json.Unmarshal(rec.Body.Bytes(), &d); err != nil {
		t.Fatal(err)
	}
	if d.State != sip.StateNever || d.Since != nil || d.Channels == nil || d.Department != "flood-control" {
		t.Fatalf("created %+v", d)
	}
	if strings.Contains(rec.Body.String(), "pw-3") || strings.Contains(rec.Body.String(), "password") {
		t.Fatalf("the password is shown: %s", rec.Body)
	}
	for _, tc := range []struct{ body, want string }{
		{`{"id":"4401","name":"x","department":"police"}`, "not 20 digits"},
		{`{"id":"44011300001320000004","name":"x","department":"nowhere"}`, "does not exist"},
		{`{"id":"44011300001320000004","department":"police"}`, "name is required"},
		{`{"id":"44011300001320000003","name":"x","department":"police"}`, "exists already"},
	} {
		rec := f.do(req{method: "POST", path: "/api/v1/gb28181/devices", who: pAdmin, ctype: "application/json", body: tc.body})
		if rec.Code < 400 || !strings.Contains(rec.Body.String(), tc.want) {
			t.Errorf("%s: %d %s, want %q", tc.body, rec.Code, rec.Body, tc.want)
		}
	}
	// The limited admin lists only flood-control's devices.
	rec = f.do(req{method: "GET", path: "/api/v1/gb28181/devices", who: pScopedAdmin})
	var list []gbDevice
	if err := json.Unmarshal(rec.Body.Bytes(), &list); err != nil || len(list) != 2 {
		t.Fatalf("scoped list: %d %s", rec.Code, rec.Body)
	}
	for _, d := range list {
		if d.Department != "flood-control" {
			t.Errorf("the limited admin sees %s of %s", d.ID, d.Department)
		}
	}
	rec = f.do(req{method: "PUT", path: "/api/v1/gb28181/devices/" + gbFlood, who: pScopedAdmin, ctype: "application/json",
		body: `{"name":"moved","department":"police"}`})
	if rec.Code != forb {
		t.Fatalf("limited admin moves a device out: %d %s", rec.Code, rec.Body)
	}
	rec = f.do(req{method: "GET", path: "/api/v1/gb28181/refused", who: pAdmin})
	if rec.Code != ok || strings.TrimSpace(rec.Body.String()) != "[]" {
		t.Fatalf("refused: %d %s", rec.Code, rec.Body)
	}
}
