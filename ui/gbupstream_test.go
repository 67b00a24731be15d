package ui

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/gb28181/upstream"
)

func TestGBUpstream(t *testing.T) {
	f := newFixture(t, Options{})
	// without upper platforms: an empty list
	rec := f.do(req{method: "GET", path: "/api/v1/gb28181/upstream", who: pAdmin})
	if rec.Code != 200 || rec.Body.String() != "[]\n" && rec.Body.String() != "[]" {
		t.Fatalf("no platforms: %d %q", rec.Code, rec.Body)
	}
	since := time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)
	f.srv.deps.GB28181.Upstream = func() []upstream.Status {
		return []upstream.Status{{ID: "44010000002000000001", Address: "10.0.0.1:5060", Transport: "udp",
			Departments: []string{"police"}, State: upstream.StateFailing, Since: since,
			LastError: "3 keepalives unanswered", Viewers: 2}}
	}
	rec = f.do(req{method: "GET", path: "/api/v1/gb28181/upstream", who: pAdmin})
	var got []map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil || rec.Code != 200 || len(got) != 1 {
		t.Fatalf("%d %s %v", rec.Code, rec.Body, err)
	}
	g := got[0]
	if g["state"] != "failing" || g["since"] != "2026-11-29T08:00:00Z" || g["lastError"] != "3 keepalives unanswered" || g["viewers"] != 2.0 {
		t.Fatalf("platform %v", g)
	}
}
