package e2e

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
)

// startS3Vigil starts a second Vigil that stores on a real S3 server (the
// shared one stores on a local directory), with one webhook, and returns
// its base URL and the S3 server's stop and restart.
func startS3Vigil(t *testing.T, hook string) (base string, stopS3, restartS3 func()) {
	t.Helper()
	endpoint, ak, sk, bucket, stopS3, restartS3 := testkit.StartS3(t)
	logFile, err := os.Create(filepath.Join(e2e.outDir, "e2e-s3-server.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { logFile.Close() })
	base = startSecondVigil(t, func(cfg *config.Config) {
		cfg.Recording.Segment = config.Duration(4 * time.Second)
		cfg.Storage.Backend = "s3"
		cfg.Storage.S3 = config.S3{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, Region: "us-east-1"}
		cfg.Alerts.OfflineAfter = config.Duration(2 * time.Second)
		cfg.Alerts.Webhooks = []config.Webhook{{URL: hook, Secret: "e2e-secret"}}
	}, app.Options{Log: slog.New(slog.NewTextHandler(logFile, nil))})
	return base, stopS3, restartS3
}

// healthStatus reads the overall status and the storage check's.
func healthStatus(c *apiClient) (overall, storage string) {
	b, err := c.do("GET", "/api/v1/health", nil, http.StatusOK)
	if err != nil {
		return "", ""
	}
	var rep struct {
		Status string
		Checks []struct{ Name, Status string }
	}
	json.Unmarshal(b, &rep)
	for _, ch := range rep.Checks {
		if ch.Name == "storage" {
			storage = ch.Status
		}
	}
	return rep.Status, storage
}

// The health banner appears on every page when the S3 server is stopped,
// naming the object store and since when, links to the health page, and goes
// when the S3 server returns; the health page lists the checks and sends a
// test event to the webhook. A camera that was offline for a few seconds
// shows an offline band on its playback timeline.
func TestHealthBannerAndOfflineBand(t *testing.T) {
	if e2e.skip != "" {
		t.Skip(e2e.skip)
	}
	hooked := make(chan struct{}, 16)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case hooked <- struct{}{}:
		default:
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	base, stopS3, restartS3 := startS3Vigil(t, hook.URL)

	sim := simcam.Start(t, camsim.Options{Count: 1})
	simAddr := sim.Addr()

	c, err := login(base, "admin", adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	const cam = "blink-1"
	if _, err := c.do("POST", "/api/v1/cameras", map[string]any{"id": cam, "name": "Blinking gate", "department": "police",
		"mainUrl": sim.URL(1, false), "transport": "tcp", "record": false, "enabled": true}, http.StatusCreated, http.StatusOK); err != nil {
		t.Fatal(err)
	}
	if err := waitOnline(c, []string{cam}, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 30*time.Second, "health ok", func() bool { st, _ := healthStatus(c); return st == "ok" })

	// The camera blinks: offline for a few samples, then back on the same address.
	sim.Close()
	blinkStart := time.Now()
	testkit.WaitFor(t, 20*time.Second, "camera offline", func() bool {
		b, _ := c.do("GET", "/api/v1/cameras/"+cam+"/status", nil, http.StatusOK)
		var st struct{ State string }
		json.Unmarshal(b, &st)
		return st.State == "offline"
	})
	time.Sleep(7 * time.Second) // the camera stays away for more than a sample interval (5 s)
	sim = simcam.Start(t, camsim.Options{Addr: simAddr, Count: 1})
	if err := waitOnline(c, []string{cam}, 60*time.Second); err != nil {
		t.Fatal(err)
	}
	rangeQ := fmt.Sprintf("?start=%s&end=%s", rfc(blinkStart.Add(-time.Minute)), rfc(time.Now().Add(time.Minute)))
	testkit.WaitFor(t, 20*time.Second, "a closed offline period in the events", func() bool {
		b, _ := c.do("GET", "/api/v1/cameras/"+cam+"/events"+rangeQ, nil, http.StatusOK)
		var res struct{ Events []struct{ Type, End string } }
		json.Unmarshal(b, &res)
		return len(res.Events) == 1 && res.Events[0].Type == "offline" && res.Events[0].End != ""
	})
	testkit.WaitFor(t, 30*time.Second, "health ok again", func() bool { st, _ := healthStatus(c); return st == "ok" })

	ctx := tab(t, true) // its own cookies: this is another server on the same host
	do(t, ctx, "log in", chromedp.Navigate(base+"/#/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-username]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-username]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-password]`), adminPassword),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=current-user]`)))

	// The timeline shows the blink as an offline band with a tooltip.
	do(t, ctx, "open playback", chromedp.Navigate(base+"/#/playback?camera="+cam+"&t="+rfc(blinkStart)))
	waitFor(t, ctx, "an offline band on the timeline",
		`[...document.querySelectorAll('.tl-track[data-camera-id="`+cam+`"] [data-testid=timeline-event][data-type=offline]')]
			.some((e) => e.dataset.end && e.title.includes('Offline') && e.getBoundingClientRect().width >= 2)`, 20*time.Second)
	shot(t, ctx, "timeline-offline-band")

	// The health page: every check, ok; the test event reaches the webhook.
	do(t, ctx, "open health", chromedp.Navigate(base+"/#/health"))
	waitFor(t, ctx, "the storage check ok", `document.querySelector('[data-testid=health-check][data-check=storage]').dataset.status === 'ok'`, 20*time.Second)
	if hidden := eval[bool](t, ctx, `document.querySelector('[data-testid=health-banner]').hidden`); !hidden {
		t.Fatal("the health banner shows while everything is ok")
	}
	do(t, ctx, "send a test event", chromedp.Click(chromedp.CSS(`[data-testid=alerts-test]`)))
	waitFor(t, ctx, "the webhook delivered", `document.querySelector('[data-testid=alerts-test-row] [data-delivered]').dataset.delivered === 'true'`, 20*time.Second)
	select {
	case <-hooked:
	case <-time.After(5 * time.Second):
		t.Fatal("the webhook received nothing")
	}
	shot(t, ctx, "health-page")

	// The S3 server goes away: the banner names the object store, on another page too.
	do(t, ctx, "open the reports", chromedp.Navigate(base+"/#/reports"))
	stopS3()
	stopped := time.Now()
	waitFor(t, ctx, "the health banner naming the object store",
		`(() => { const b = document.querySelector('[data-testid=health-banner]');
			return !b.hidden && b.textContent.includes('Object store') && b.textContent.includes('since') &&
				b.querySelector('[data-testid=health-banner-link]').getAttribute('href') === '#/health'; })()`, 45*time.Second)
	t.Logf("banner after %s: %s", time.Since(stopped).Round(time.Second), eval[string](t, ctx, `document.querySelector('[data-testid=health-banner]').textContent`))
	shot(t, ctx, "health-banner")

	// A viewer may not read the report: no banner, and the app does not ask.
	if _, err := c.do("POST", "/api/v1/users", map[string]any{"username": "watcher", "password": "e2e-Viewer-pass-1", "role": "viewer"},
		http.StatusCreated, http.StatusOK); err != nil {
		t.Fatal(err)
	}
	vctx := tab(t, true)
	do(t, vctx, "log in as a viewer", chromedp.Navigate(base+"/#/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-username]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-username]`), "watcher"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-password]`), "e2e-Viewer-pass-1"),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=current-user]`)))
	time.Sleep(2 * time.Second) // time for a poll that must not happen
	if shown := eval[bool](t, vctx, `!document.querySelector('[data-testid=health-banner]').hidden ||
		performance.getEntriesByType('resource').some((e) => e.name.includes('/api/v1/health'))`); shown {
		t.Fatal("a viewer sees the health banner or the app asks for the report")
	}
	if st, _ := healthStatus(c); st == "ok" {
		t.Fatal("the report is ok while the S3 server is stopped")
	}

	restartS3()
	waitFor(t, ctx, "the health banner gone", `document.querySelector('[data-testid=health-banner]').hidden`, 45*time.Second)
}
