package ui

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/cluster"
)

type fakeCluster []cluster.NodeInfo

func (f fakeCluster) Nodes(context.Context) ([]cluster.NodeInfo, error) { return f, nil }

// GET /api/v1/cluster lists the nodes as the contract shapes them; a single
// node has none.
func TestClusterNodes(t *testing.T) {
	f := newFixture(t, Options{})
	rec := f.do(req{method: "GET", path: "/api/v1/cluster", who: pOperator})
	if rec.Code != http.StatusOK || rec.Body.String() != "{\"nodes\":[]}\n" {
		t.Fatalf("single node: %d %q", rec.Code, rec.Body)
	}
	since := time.Date(2026, 11, 29, 20, 0, 0, 0, time.UTC)
	f.srv.deps.Cluster = fakeCluster{{Name: "node-a", Advertise: "http://a:8080", State: "up", Since: since, Cameras: 3},
		{Name: "node-b", Advertise: "http://b:8080", State: "down", Since: since}}
	rec = f.do(req{method: "GET", path: "/api/v1/cluster", who: pAdmin})
	var got struct {
		Nodes []map[string]any `json:"nodes"`
	}
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &got) != nil || len(got.Nodes) != 2 {
		t.Fatalf("cluster: %d %s", rec.Code, rec.Body)
	}
	want := map[string]any{"name": "node-a", "advertise": "http://a:8080", "state": "up", "since": "2026-11-29T20:00:00Z", "cameras": 3.0}
	for k, v := range want {
		if got.Nodes[0][k] != v {
			t.Errorf("%s: %v, want %v", k, got.Nodes[0][k], v)
		}
	}
	if len(got.Nodes[0]) != len(want) || got.Nodes[1]["state"] != "down" {
		t.Errorf("nodes %v", got.Nodes)
	}
}
