package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"path/filepath"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
)

const adminPassword = "app-test-admin-pw"

// TestMain stops, after the tests, the PostgreSQL server and the S3 server
// that the tests share when they run as a one-node cluster.
func TestMain(m *testing.M) { pgtest.Main(m, testkit.StopSharedS3) }

// testConfig is a configuration on 127.0.0.1 with everything in dir. Under
// VIGIL_TEST_DATABASE=postgres (testdb.Postgres) the server is a one-node
// cluster: its database is a new PostgreSQL database of the test's own
// (database.url) and, as a cluster requires, its recordings go to a new
// bucket of its own on the S3 server the tests share; otherwise it runs on
// SQLite in dir and stores on the local disk.
func testConfig(t testing.TB, dir string) config.Config {
	t.Helper()
	cfg := baseConfig(dir)
	if testdb.Postgres() {
		endpoint, ak, sk, bucket := testkit.SharedS3(t)
		cfg.Database.URL = pgtest.URL(t)
		cfg.Storage.Backend = "s3"
		cfg.Storage.S3 = config.S3{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, Region: "us-east-1"}
		cfg.Cluster.Node = "app-test"
	}
	return cfg
}

// sqliteConfig is testConfig on SQLite and the local disk, whatever
// VIGIL_TEST_DATABASE says: for a test that cannot run in a cluster, for the
// reason why (logged on the PostgreSQL run).
func sqliteConfig(t testing.TB, dir, why string) config.Config {
	t.Helper()
	if testdb.Postgres() {
		if why == gbSQLite {
			// the very same test on the very same engine ran in the SQLite pass
			t.Skipf("on PostgreSQL: %s (this test ran in the SQLite pass)", why)
		}
		t.Logf("on SQLite, not PostgreSQL: %s", why)
	}
	return baseConfig(dir)
}

func baseConfig(dir string) config.Config {
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.WebRTC.UDPPort = 0
	cfg.Database.Path = filepath.Join(dir, "vigil.db")
	cfg.Storage.Local.Dir = filepath.Join(dir, "recordings")
	cfg.Recording.SpoolDir = filepath.Join(dir, "spool")
	cfg.Recording.Segment = config.Duration(4 * time.Second)
	cfg.GB28181.MediaPort = 0 // a free port, when a test enables GB/T 28181
	return cfg
}

// gbSQLite is why the GB/T 28181 tests run on a single node on SQLite also
// under VIGIL_TEST_DATABASE=postgres: a cluster refuses gb28181.enabled
// this round (its devices register to one node, their media comes to that
// node's port; app.clusterConfigError).
const gbSQLite = "GB/T 28181 does not run in a cluster (database.url) yet"

// client is a logged-in API client.
type client struct {
	t    *testing.T
	base string
	http *http.Client
	csrf string
}

func login(t *testing.T, base, user, password string) *client {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &client{t: t, base: base, http: &http.Client{Jar: jar, Timeout: 20 * time.Second}}
	code, body := c.do("POST", "/api/v1/session", map[string]string{"username": user, "password": password})
	if code != http.StatusOK {
		t.Fatalf("login: %d %s", code, body)
	}
	code, body = c.do("GET", "/api/v1/session", nil)
	var s struct{ CSRFToken string }
	if code != http.StatusOK || json.Unmarshal(body, &s) != nil || s.CSRFToken == "" {
		t.Fatalf("session: %d %s", code, body)
	}
	c.csrf = s.CSRFToken
	return c
}

func (c *client) do(method, path string, body any) (int, []byte) {
	c.t.Helper()
	req, err := testkit.APIRequest(method, c.base+path, body, c.csrf)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (c *client) metrics() map[string]*dto.MetricFamily {
	c.t.Helper()
	code, body := c.do("GET", "/metrics", nil)
	if code != http.StatusOK {
		c.t.Fatalf("/metrics: %d %s", code, body)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		c.t.Fatalf("/metrics does not parse: %v", err)
	}
	return fams
}

// gauge returns the value of a metric with the given labels, and whether it exists.
func gauge(fams map[string]*dto.MetricFamily, name string, labels map[string]string) (float64, bool) {
	f := fams[name]
	if f == nil {
		return 0, false
	}
next:
	for _, m := range f.Metric {
		for k, v := range labels {
			found := false
			for _, lp := range m.Label {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		switch {
		case m.Gauge != nil:
			return m.Gauge.GetValue(), true
		case m.Counter != nil:
			return m.Counter.GetValue(), true
		}
	}
	return 0, false
}

// newApp builds the server from cfg with the test's admin password; it is
// closed, and its context cancelled, when the test ends.
func newApp(t *testing.T, cfg config.Config) (*app.App, context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	a, err := app.New(ctx, cfg, app.Options{AdminPassword: adminPassword})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a, ctx, cancel
}

// runApp runs a until ctx ends; the channel receives what Run returned.
func runApp(ctx context.Context, a *app.App) <-chan error {
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	return done
}

// TestServerEndToEnd runs the whole server against simulated cameras and a
// real store: cameras added through the API come online and record, /metrics
// follows cameras as they come and go, and a graceful stop (what SIGTERM
// does) uploads the open segments and returns within 10 s.
func TestServerEndToEnd(t *testing.T) {
	for _, backend := range []string{"local", "s3"} {
		t.Run(backend, func(t *testing.T) {
			dir := t.TempDir()
			var cfg config.Config
			if backend == "local" {
				cfg = sqliteConfig(t, dir, "storage.backend local is for a single node (a cluster keeps its recordings in S3)")
			} else if cfg = testConfig(t, dir); !cfg.Clustered() { // a cluster is on S3 already
				endpoint, ak, sk, bucket, _, _ := testkit.StartS3(t)
				cfg.Storage.Backend = "s3"
				cfg.Storage.S3 = config.S3{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, Region: "us-east-1"}
			}
			runServer(t, cfg)
		})
	}
}

func runServer(t *testing.T, cfg config.Config) {
	sim := simcam.Start(t, camsim.Options{Count: 2, Codec: "h264"})

	a, ctx, cancel := newApp(t, cfg)
	runDone := runApp(ctx, a)

	base := "http://" + a.Addr()
	resp, err := http.Get(base + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()

	c := login(t, base, "admin", adminPassword)
	for i, id := range []string{"police-1", "flood-1"} {
		dept := map[string]string{"police-1": "police", "flood-1": "flood-control"}[id]
		cam := map[string]any{
			"id": id, "name": "Camera " + id, "department": dept,
			"mainUrl": sim.URL(i+1, false), "subUrl": sim.URL(i+1, true),
			"transport": "tcp", "record": true, "enabled": true,
		}
		if code, body := c.do("POST", "/api/v1/cameras", cam); code != http.StatusCreated && code != http.StatusOK {
			t.Fatalf("add camera %s: %d %s", id, code, body)
		}
	}
	status := func(id string) (st struct {
		State     string
		Recording bool
	}) {
		_, body := c.do("GET", "/api/v1/cameras/"+id+"/status", nil)
		json.Unmarshal(body, &st)
		return st
	}
	for _, id := range []string{"police-1", "flood-1"} {
		testkit.WaitFor(t, 20*time.Second, id+" online", func() bool { return status(id).State == "online" })
	}
	// on PostgreSQL the server is a one-node cluster that holds both
	// cameras; on a single node the list of nodes is empty
	wantNodes := "[]"
	if cfg.Clustered() {
		wantNodes = `[{"name":"app-test","state":"up","cameras":2}]`
	}
	testkit.WaitFor(t, 10*time.Second, "GET /api/v1/cluster shows "+wantNodes, func() bool {
		var r struct {
			Nodes []struct {
				Name    string `json:"name"`
				State   string `json:"state"`
				Cameras int    `json:"cameras"`
			} `json:"nodes"`
		}
		code, body := c.do("GET", "/api/v1/cluster", nil)
		if code != http.StatusOK || json.Unmarshal(body, &r) != nil {
			t.Fatalf("cluster: %d %s", code, body)
		}
		got, _ := json.Marshal(r.Nodes)
		return string(got) == wantNodes
	})
	testkit.WaitFor(t, 10*time.Second, "metrics show both cameras online", func() bool {
		f := c.metrics()
		v1, _ := gauge(f, "vigil_camera_state", map[string]string{"camera": "police-1", "state": "online"})
		v2, _ := gauge(f, "vigil_camera_state", map[string]string{"camera": "flood-1", "state": "online"})
		fps, _ := gauge(f, "vigil_camera_fps", map[string]string{"camera": "police-1"})
		return v1 == 1 && v2 == 1 && fps > 10
	})
	if _, ok := gauge(c.metrics(), "vigil_http_request_duration_seconds", nil); ok {
		// histograms have no gauge value; presence is enough
	} else if c.metrics()["vigil_http_request_duration_seconds"] == nil {
		t.Error("no HTTP latency histogram in /metrics")
	}

	// a first segment reaches the store and the index
	type recs struct {
		Spans    []struct{ Start, End time.Time }
		Segments []struct {
			Start, End time.Time
			Bytes      int64
		}
	}
	recordings := func(id string) recs {
		now := time.Now().UTC()
		q := fmt.Sprintf("/api/v1/cameras/%s/recordings?start=%s&end=%s", id,
			now.Add(-time.Hour).Format(time.RFC3339), now.Add(time.Minute).Format(time.RFC3339))
		code, body := c.do("GET", q, nil)
		var r recs
		if code != http.StatusOK || json.Unmarshal(body, &r) != nil {
			t.Fatalf("recordings: %d %s", code, body)
		}
		return r
	}
	testkit.WaitFor(t, 30*time.Second, "a recorded segment", func() bool { return len(recordings("police-1").Segments) > 0 })

	// removing a camera removes it from the metrics
	if code, body := c.do("DELETE", "/api/v1/cameras/flood-1", nil); code >= 300 {
		t.Fatalf("delete: %d %s", code, body)
	}
	testkit.WaitFor(t, 10*time.Second, "flood-1 gone from metrics", func() bool {
		_, ok := gauge(c.metrics(), "vigil_camera_state", map[string]string{"camera": "flood-1"})
		return !ok
	})

	// graceful stop: the open segment is closed and stored
	stopAt := time.Now()
	cancel()
	testkit.Returned(t, runDone, 10*time.Second, "server run")
	if took := time.Since(stopAt); took > 10*time.Second {
		t.Fatalf("stop took %s", took)
	}
	segs, err := a.Index.Segments(context.Background(), "police-1", stopAt.Add(-time.Hour), stopAt.Add(time.Hour), false)
	if err != nil || len(segs) == 0 {
		t.Fatalf("segments after stop: %v %v", segs, err)
	}
	last := segs[len(segs)-1]
	if gap := stopAt.Sub(last.End); gap > 3*time.Second {
		t.Fatalf("the last stored segment ends %s before the stop: the open segment was not flushed", gap)
	}
	for _, s := range segs {
		rc, err := a.Store.Get(context.Background(), s.Key, 0, 8)
		if err != nil {
			t.Fatalf("segment %s in the index but not in the store: %v", s.Key, err)
		}
		head, _ := io.ReadAll(rc)
		rc.Close()
		if !strings.Contains(string(head), "ftyp") {
			t.Fatalf("segment %s does not start with ftyp: %q", s.Key, head)
		}
	}
	_ = archive.ErrObjectNotFound
}
