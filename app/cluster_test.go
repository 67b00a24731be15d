package app

import (
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/app/config"
)

// GB/T 28181 with database.url is refused at start with a clear error; a
// single node or a cluster without it is not.
func TestClusterConfigError(t *testing.T) {
	var cfg config.Config
	cfg.GB28181.Enabled = true
	if err := clusterConfigError(cfg); err != nil {
		t.Fatalf("single node with GB/T 28181: %v", err)
	}
	cfg.Database.URL = "postgres://vigil@db/vigil"
	err := clusterConfigError(cfg)
	if err == nil || !strings.Contains(err.Error(), "gb28181.enabled") || !strings.Contains(err.Error(), "database.url") {
		t.Fatalf("cluster with GB/T 28181: %v", err)
	}
	cfg.GB28181.Enabled = false
	if err := clusterConfigError(cfg); err != nil {
		t.Fatalf("cluster without GB/T 28181: %v", err)
	}
}

func TestDefaultAdvertise(t *testing.T) {
	for _, c := range []struct {
		host, listen string
		tls          bool
		want         string
	}{
		{"node-a", ":8080", false, "http://node-a:8080"},
		{"node-b", "0.0.0.0:9443", true, "https://node-b:9443"},
		{"node-c", "10.1.2.3:8080", false, "http://10.1.2.3:8080"},
		{"node-d", "127.0.0.1:41234", false, "http://127.0.0.1:41234"},
		{"node-e", "bad", false, "http://node-e:8080"},
	} {
		if got := defaultAdvertise(c.host, c.listen, c.tls); got != c.want {
			t.Errorf("%+v: %s", c, got)
		}
	}
}
