package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/hookrecv"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
	"github.com/vigil-vms/vigil/registry"
)

type healthReport struct {
	Status string
	Checks []struct {
		Name, Status, Message string
		Since                 time.Time
	}
}

func (r healthReport) check(name string) (status, message string) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c.Status, c.Message
		}
	}
	return "", ""
}

// startApp builds and runs a server; stop stops it gracefully and closes it.
func startApp(t *testing.T, cfg config.Config) (a *app.App, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{AdminPassword: adminPassword})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("run: %v", err)
			}
			a.Close()
		})
	}
	t.Cleanup(stop)
	<-a.Ready()
	return a, stop
}

// A wrong S3 configuration shows as degraded in /api/v1/health within 10 s
// of start, naming the cause; only admin and operator may read the report.
func TestHealthShowsS3Misconfiguration(t *testing.T) {
	endpoint, ak, sk, bucket, _, _ := testkit.StartS3(t)
	roEndpoint, _, _, _, _, _ := testkit.StartS3(t, "--readonly") // a bucket that cannot be created
	for _, tc := range []struct {
		name string
		s3   config.S3
		want string
	}{
		{"wrong secret", config.S3{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk + "x", Region: "us-east-1"},
			"rejected the secret key (storage.s3.secretKey)"},
		{"unknown access key", config.S3{Endpoint: endpoint, Bucket: bucket, AccessKey: "nobody", SecretKey: sk, Region: "us-east-1"},
			"does not know the access key (storage.s3.accessKey)"},
		{"tls against plain http", config.S3{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, Region: "us-east-1", TLS: true},
			"storage.s3.tls is true but the S3 server " + endpoint + " speaks plain HTTP"},
		{"missing bucket", config.S3{Endpoint: roEndpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, Region: "us-east-1"},
			"bucket \"" + bucket + "\" does not exist and could not be created"},
		{"no keys", config.S3{Endpoint: endpoint, Bucket: bucket, Region: "us-east-1"},
			"no credentials: storage.s3.accessKey and storage.s3.secretKey are empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig(t, t.TempDir())
			cfg.Storage.Backend = "s3"
			cfg.Storage.S3 = tc.s3
			started := time.Now()
			a, _ := startApp(t, cfg)
			c := login(t, "http://"+a.Addr(), "admin", adminPassword)
			var rep healthReport
			for {
				code, body := c.do("GET", "/api/v1/health", nil)
				if code != http.StatusOK {
					t.Fatalf("health: %d %s", code, body)
				}
				rep = healthReport{}
				if err := json.Unmarshal(body, &rep); err != nil {
					t.Fatal(err)
				}
				if st, msg := rep.check("storage"); st == "degraded" && msg != "not checked yet" {
					break
				}
				if time.Since(started) > 10*time.Second {
					t.Fatalf("storage not degraded 10 s after start: %s", body)
				}
				time.Sleep(200 * time.Millisecond)
			}
			_, msg := rep.check("storage")
			if rep.Status != "degraded" || !strings.Contains(msg, tc.want) {
				t.Fatalf("status %s, storage %q: want degraded naming %q", rep.Status, msg, tc.want)
			}
			t.Logf("after %s: %s", time.Since(started).Round(time.Millisecond), msg)
		})
	}

	t.Run("roles", func(t *testing.T) {
		cfg := testConfig(t, t.TempDir())
		a, _ := startApp(t, cfg)
		ctx := context.Background()
		for _, role := range []string{registry.RoleOperator, registry.RoleViewer, registry.RoleResponder} {
			if _, err := a.Registry.CreateUser(ctx, registry.User{Username: role + "1", Role: role}, "pw-"+role+"-12345"); err != nil {
				t.Fatal(err)
			}
		}
		base := "http://" + a.Addr()
		for role, want := range map[string]int{registry.RoleOperator: 200, registry.RoleViewer: 403, registry.RoleResponder: 403} {
			c := login(t, base, role+"1", "pw-"+role+"-12345")
			if code, body := c.do("GET", "/api/v1/health", nil); code != want {
				t.Errorf("%s: %d %s, want %d", role, code, body, want)
			}
			if code, _ := c.do("POST", "/api/v1/alerts/test", nil); code != 403 {
				t.Errorf("%s may send a test event: %d", role, code)
			}
		}
		// an operator limited to a department sees the system's checks and their own cameras'
		for _, cam := range []ingest.Camera{
			{ID: "p-1", Name: "P", Department: "police", MainURL: "rtsp://127.0.0.1:1/x", Enabled: true},
			{ID: "f-1", Name: "F", Department: "flood-control", MainURL: "rtsp://127.0.0.1:1/y", Enabled: true},
		} {
			if _, err := a.Registry.CreateCamera(ctx, cam); err != nil {
				t.Fatal(err)
			}
			a.Cameras.Apply(cam)
		}
		if _, err := a.Registry.CreateUser(ctx, registry.User{Username: "op-police", Role: registry.RoleOperator,
			Departments: []string{"police"}}, "pw-op-police-123"); err != nil {
			t.Fatal(err)
		}
		names := func(c *client) map[string]bool {
			code, body := c.do("GET", "/api/v1/health", nil)
			var rep healthReport
			if code != http.StatusOK || json.Unmarshal(body, &rep) != nil {
				t.Fatalf("health: %d %s", code, body)
			}
			out := map[string]bool{}
			for _, ch := range rep.Checks {
				out[ch.Name] = true
			}
			return out
		}
		if got := names(login(t, base, "op-police", "pw-op-police-123")); !got["camera/p-1"] || got["camera/f-1"] || !got["storage"] {
			t.Errorf("scoped operator sees %v", got)
		}
		if got := names(login(t, base, "admin", adminPassword)); !got["camera/p-1"] || !got["camera/f-1"] {
			t.Errorf("admin sees %v", got)
		}
		for _, id := range []string{"p-1", "f-1"} {
			if _, err := a.Registry.DeleteCamera(ctx, id); err != nil {
				t.Fatal(err)
			}
			a.Cameras.Remove(id)
		}

		resp, err := http.Get(base + "/api/v1/health")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("without login: %d", resp.StatusCode)
		}
		// a healthy local server: ok once every probe ran
		c := login(t, base, "admin", adminPassword)
		testkit.WaitFor(t, 10*time.Second, "health ok", func() bool {
			_, body := c.do("GET", "/api/v1/health", nil)
			var rep healthReport
			json.Unmarshal(body, &rep)
			db, _ := rep.check("database")
			st, _ := rep.check("storage")
			sp, _ := rep.check("spool")
			return rep.Status == "ok" && db == "ok" && st == "ok" && sp == "ok"
		})
	})
}

// newHookReceiver is a webhook receiver that checks every signature and
// can be taken down (it answers 503 then).
func newHookReceiver(t *testing.T, secret string) *hookrecv.Receiver[alerts.Event] {
	return hookrecv.New[alerts.Event](t, func(r *http.Request, body []byte) bool {
		return r.Header.Get("X-Vigil-Signature") == alerts.Sign(secret, body)
	})
}

// waitEvent returns the next event of the given kind within timeout, skipping
// other kinds (the test event, spool and storage events of other steps).
func waitEvent(t *testing.T, h *hookrecv.Receiver[alerts.Event], event, camera string, timeout time.Duration) alerts.Event {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case e := <-h.Events:
			if e.Event == event && e.Camera == camera {
				return e
			}
			t.Logf("(skipped %s %s: %s)", e.Event, e.Camera, e.Message)
		case <-deadline:
			t.Fatalf("no %s %s within %s", event, camera, timeout)
		}
	}
}

// The whole path with real parts: a camsim camera, the real S3 server, a
// webhook receiver. camera.offline comes within offlineAfter + 5 s of the
// camera stopping, camera.online after it returns; storage.failing and
// storage.recovered around an S3 outage; every event signed; events queued
// while the receiver is down arrive when it returns, also across a restart.
func TestAlertsEndToEnd(t *testing.T) {
	endpoint, ak, sk, bucket, stopS3, restartS3 := testkit.StartS3(t)
	sim := simcam.Start(t, camsim.Options{Count: 1, Codec: "h264"})
	simAddr := sim.Addr()

	rcv := newHookReceiver(t, "hook-secret")
	other := newHookReceiver(t, "other-secret")
	other.SetDown(true) // a dead receiver must not hold back the first one

	dir := t.TempDir()
	cfg := testConfig(t, dir)
	cfg.Storage.Backend = "s3"
	cfg.Storage.S3 = config.S3{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, Region: "us-east-1"}
	const offlineAfter = 3 * time.Second
	cfg.Alerts.OfflineAfter = config.Duration(offlineAfter)
	cfg.Alerts.Webhooks = []config.Webhook{
		{URL: rcv.URL + "/hook", Secret: "hook-secret"},
		{URL: other.URL, Secret: "other-secret", Events: []string{alerts.CameraOffline}},
	}
	a, stop := startApp(t, cfg)
	ctx := context.Background()
	cam := ingest.Camera{ID: "police-1", Name: "Gate", Department: "police", MainURL: sim.URL(1, false),
		Transport: "tcp", Enabled: true, Record: true}
	if _, err := a.Registry.CreateCamera(ctx, cam); err != nil {
		t.Fatal(err)
	}
	a.Cameras.Apply(cam)
	c := login(t, "http://"+a.Addr(), "admin", adminPassword)
	testkit.WaitFor(t, 20*time.Second, "camera online", func() bool { return a.Cameras.Status(cam).State == ingest.StateOnline })

	// the test event: delivered to one, not to the other
	code, body := c.do("POST", "/api/v1/alerts/test", nil)
	var res struct{ Webhooks []alerts.TestResult }
	if code != http.StatusOK || json.Unmarshal(body, &res) != nil || len(res.Webhooks) != 2 ||
		!res.Webhooks[0].Delivered || res.Webhooks[1].Delivered || !strings.Contains(res.Webhooks[1].Error, "503") {
		t.Fatalf("alerts/test: %d %s", code, body)
	}
	waitEvent(t, rcv, alerts.Test, "", 5*time.Second)

	// camera offline
	sim.Close()
	stoppedAt := time.Now()
	e := waitEvent(t, rcv, alerts.CameraOffline, "police-1", offlineAfter+5*time.Second)
	if took := time.Since(stoppedAt); took < offlineAfter {
		t.Fatalf("camera.offline after %s, before offlineAfter", took)
	}
	if e.Department != "police" || e.Severity == "" || e.ID == "" || !strings.Contains(e.Message, "police-1") {
		t.Fatalf("camera.offline: %+v", e)
	}
	// the health report names the camera
	_, body = c.do("GET", "/api/v1/health", nil)
	var rep healthReport
	json.Unmarshal(body, &rep)
	if st, _ := rep.check("camera/police-1"); st != "degraded" || rep.Status != "degraded" {
		t.Fatalf("health while the camera is offline: %s", body)
	}

	// camera back
	sim = simcam.Start(t, camsim.Options{Addr: simAddr, Count: 1, Codec: "h264"})
	waitEvent(t, rcv, alerts.CameraOnline, "police-1", 30*time.Second)

	// S3 outage
	stopS3()
	e = waitEvent(t, rcv, alerts.StorageFailing, "", 15*time.Second)
	if !strings.Contains(e.Message, "unreachable") {
		t.Errorf("storage.failing says %q", e.Message)
	}
	restartS3()
	waitEvent(t, rcv, alerts.StorageRecovered, "", 15*time.Second)

	// figures in /metrics
	// (the receiver has the event a moment before the sender counts it)
	testkit.WaitFor(t, 5*time.Second, "vigil_alert_events_delivered_total >= 4 (offline, online, failing, recovered)", func() bool {
		v, _ := gauge(c.metrics(), "vigil_alert_events_delivered_total", nil)
		return v >= 4
	})
	f := c.metrics()
	if v, _ := gauge(f, "vigil_alert_events_failed_total", nil); v < 1 {
		t.Errorf("vigil_alert_events_failed_total = %v: the dead receiver's attempts are not counted", v)
	}

	// the receiver is down: events wait in the queue and arrive when it returns
	rcv.SetDown(true)
	queued, refused := a.Alerts.Stats().Queued, rcv.Refused()
	sim.Close()
	testkit.WaitFor(t, offlineAfter+10*time.Second, "camera.offline queued and refused", func() bool {
		return a.Alerts.Stats().Queued >= queued+2 && rcv.Refused() > refused // to both receivers
	})
	rcv.SetDown(false)
	waitEvent(t, rcv, alerts.CameraOffline, "police-1", 10*time.Second)

	// ... also across a restart of Vigil on the same data directory
	rcv.SetDown(true)
	queued, refused = a.Alerts.Stats().Queued, rcv.Refused()
	sim = simcam.Start(t, camsim.Options{Addr: simAddr, Count: 1, Codec: "h264"})
	testkit.WaitFor(t, 30*time.Second, "camera.online queued and refused", func() bool {
		return a.Alerts.Stats().Queued > queued && rcv.Refused() > refused
	})
	stop()
	rcv.SetDown(false)
	startApp(t, cfg)
	waitEvent(t, rcv, alerts.CameraOnline, "police-1", 10*time.Second)
	if bad := rcv.Bad(); bad != 0 {
		t.Fatalf("%d events with a bad signature", bad)
	}
}
