// Package e2e drives the Vigil web app in real headless Chromium against a
// real Vigil (package app) pulling simulated cameras (camsim), all on
// 127.0.0.1 with temporary directories. One browser serves every test.
//
// The tests skip when /usr/bin/chromium (or $VIGIL_CHROMIUM) is missing,
// unless VIGIL_REQUIRE_BROWSER=1, which turns that into a failure. Each page
// the tests visit is saved as a screenshot under test-output/ at the
// repository root.
package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
)

const (
	adminPassword = "e2e-Admin-pass-1"
	cameraCount   = 16
	// recordedCameras are recorded (the first ones); the others are live only,
	// to keep the load of the test bounded.
	recordedCameras = 4
	// stepTimeout bounds one browser step (navigate, click, type...).
	stepTimeout = 30 * time.Second
)

var departments = []string{"flood-control", "police", "cold-storage", "rental-housing"}

// env is what TestMain starts for every test.
type env struct {
	skip    string // why the tests skip, when they do
	baseURL string
	sim     *camsim.Server
	app     *app.App
	browser context.Context // a chromedp context with the browser running
	outDir  string          // screenshots
	admin   *apiClient
}

var e2e env

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	chromium := os.Getenv("VIGIL_CHROMIUM")
	if chromium == "" {
		chromium = "/usr/bin/chromium"
	}
	if _, err := os.Stat(chromium); err != nil {
		if os.Getenv("VIGIL_REQUIRE_BROWSER") == "1" {
			fmt.Fprintf(os.Stderr, "e2e: chromium not found at %s and VIGIL_REQUIRE_BROWSER=1\n", chromium)
			return 1
		}
		e2e.skip = fmt.Sprintf("chromium not found at %s (set VIGIL_REQUIRE_BROWSER=1 to fail instead)", chromium)
		return m.Run()
	}
	code, err := setUp(m, chromium)
	if err != nil {
		fmt.Fprintf(os.Stderr, "e2e: %v\n", err)
		return 1
	}
	if code == 0 {
		// Everything the tests and the server started must be gone.
		if err := goleak.Find(goleak.IgnoreTopFunction("internal/poll.runtime_pollWait")); err != nil {
			fmt.Fprintf(os.Stderr, "e2e: goroutines left behind: %v\n", err)
			return 1
		}
	}
	return code
}

// setUp starts camsim, Vigil and the browser, runs the tests and stops all.
func setUp(m *testing.M, chromium string) (code int, err error) {
	tmp, err := os.MkdirTemp("", "vigil-e2e-")
	if err != nil {
		return 0, err
	}
	defer os.RemoveAll(tmp)
	e2e.outDir, err = filepath.Abs(filepath.Join("..", "test-output"))
	if err != nil {
		return 0, err
	}
	if err := os.MkdirAll(e2e.outDir, 0o755); err != nil {
		return 0, err
	}

	logFile, err := os.Create(filepath.Join(e2e.outDir, "e2e-server.log"))
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	log := slog.New(slog.NewTextHandler(logFile, &slog.HandlerOptions{Level: slog.LevelInfo}))

	sim, err := camsim.New(camsim.Options{Addr: "127.0.0.1:0", Count: cameraCount, Log: log.With("part", "camsim")})
	if err != nil {
		return 0, fmt.Errorf("camsim: %w", err)
	}
	if err := sim.Start(); err != nil {
		return 0, fmt.Errorf("camsim start: %w", err)
	}
	defer sim.Close()
	e2e.sim = sim

	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.WebRTC.UDPPort = 0
	cfg.Storage.Local.Dir = filepath.Join(tmp, "recordings")
	cfg.Recording.SpoolDir = filepath.Join(tmp, "spool")
	cfg.Recording.Segment = config.Duration(6 * time.Second)
	cfg.Database.Path = filepath.Join(tmp, "vigil.db")
	if testdb.Postgres() {
		// stopped after the tests (and the server, by the defers below)
		defer pgtest.Shutdown()
		defer testkit.StopSharedS3()
		url, drop, perr := pgtest.Database()
		if errors.Is(perr, pgtest.ErrNoBinaries) && os.Getenv(pgtest.EnvRequire) != "1" {
			e2e.skip = fmt.Sprintf("%s=postgres: %v", testdb.EnvDatabase, perr)
			return m.Run(), nil
		}
		if perr != nil {
			return 0, fmt.Errorf("postgres: %w", perr)
		}
		defer func() {
			if derr := drop(); derr != nil && err == nil {
				err = fmt.Errorf("postgres: %w", derr)
			}
		}()
		bin := testkit.VersitygwBinary()
		if bin == "" {
			if os.Getenv("VIGIL_REQUIRE_S3") == "1" {
				return 0, errors.New("versitygw not found (set VIGIL_VERSITYGW) and VIGIL_REQUIRE_S3=1")
			}
			e2e.skip = testdb.EnvDatabase + "=postgres: versitygw not found (set VIGIL_VERSITYGW): a cluster stores in S3"
			return m.Run(), nil
		}
		endpoint, ak, sk, bucket, serr := testkit.SharedS3Bucket(bin)
		if serr != nil {
			return 0, serr
		}
		cluster(&cfg, url, config.S3{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, Region: "us-east-1"})
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	a, err := app.New(ctx, cfg, app.Options{Log: log, AdminPassword: adminPassword})
	if err != nil {
		return 0, fmt.Errorf("vigil: %w", err)
	}
	defer a.Close()
	runDone := make(chan error, 1)
	go func() { runDone <- a.Run(ctx) }()
	defer func() {
		stop()
		if rerr := <-runDone; rerr != nil && !errors.Is(rerr, context.Canceled) && err == nil {
			err = fmt.Errorf("vigil run: %w", rerr)
		}
	}()
	e2e.app = a
	e2e.baseURL = "http://" + a.Addr()

	if e2e.admin, err = login(e2e.baseURL, "admin", adminPassword); err != nil {
		return 0, err
	}
	if err := registerFleet(e2e.admin, sim); err != nil {
		return 0, err
	}

	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(),
		chromedp.ExecPath(chromium),
		chromedp.Headless,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(filepath.Join(tmp, "chromium")),
		chromedp.WindowSize(1600, 1000),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
	)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(browser); err != nil {
		return 0, fmt.Errorf("start chromium: %w", err)
	}
	e2e.browser = browser

	if err := waitOnline(e2e.admin, fleetIDs(), 60*time.Second); err != nil {
		return 0, err
	}
	return m.Run(), nil
}

// startSecondVigil starts a Vigil besides the shared one, on its own ports
// and below its own temporary directory, with the configuration as edit
// leaves it, and stops it when the test ends. It returns the server's base
// URL once the server is ready.
func startSecondVigil(t *testing.T, edit func(*config.Config), opts app.Options) string {
	t.Helper()
	return "http://" + startSecondApp(t, edit, opts).Addr()
}

// startSecondApp is startSecondVigil returning the app, for a test that
// needs more of it than the HTTP address.
func startSecondApp(t *testing.T, edit func(*config.Config), opts app.Options) *app.App {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.HTTP.Listen = "127.0.0.1:0"
	cfg.WebRTC.UDPPort = 0
	cfg.Database.Path = filepath.Join(dir, "vigil.db")
	cfg.Recording.SpoolDir = filepath.Join(dir, "spool")
	cfg.Storage.Local.Dir = filepath.Join(dir, "recordings")
	edit(&cfg)
	// Under VIGIL_TEST_DATABASE=postgres, a one-node cluster as the shared
	// server is, on a database of its own. A GB/T 28181 server stays on
	// SQLite: a cluster refuses gb28181.enabled this round (its devices
	// register to one node).
	if testdb.Postgres() && !cfg.GB28181.Enabled {
		s3 := cfg.Storage.S3 // a test's own S3 server, when it gave one
		if cfg.Storage.Backend != "s3" {
			endpoint, ak, sk, bucket := testkit.SharedS3(t)
			s3 = config.S3{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, Region: "us-east-1"}
		}
		cluster(&cfg, pgtest.URL(t), s3)
	}
	opts.AdminPassword = adminPassword
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, opts)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("second vigil: %v", err)
		}
		a.Close()
	})
	<-a.Ready()
	return a
}

// cluster makes cfg a one-node cluster: its database the PostgreSQL
// database at url, its recordings in S3 (as a cluster's must be).
func cluster(cfg *config.Config, url string, s3 config.S3) {
	cfg.Database.URL = url
	cfg.Storage.Backend = "s3"
	cfg.Storage.S3 = s3
	cfg.Cluster.Node = "e2e"
}

func fleetID(i int) string { return fmt.Sprintf("cam-%02d", i) }

func fleetIDs() []string {
	ids := make([]string, cameraCount)
	for i := range ids {
		ids[i] = fleetID(i + 1)
	}
	return ids
}

func fleetDept(i int) string { return departments[(i-1)%len(departments)] }

// registerFleet registers every camsim camera through the API, spread over
// the four departments, the first ones recorded.
func registerFleet(c *apiClient, sim *camsim.Server) error {
	for i := 1; i <= sim.Count(); i++ {
		cam := map[string]any{
			"id":         fleetID(i),
			"name":       fmt.Sprintf("Gate %02d", i),
			"department": fleetDept(i),
			"location":   map[string]any{"lat": 22.9 + float64(i)/100, "lng": 113.3, "address": fmt.Sprintf("%d Riverside Rd", i)},
			"mainUrl":    sim.URL(i, false),
			"subUrl":     sim.URL(i, true),
			"transport":  "tcp",
			"record":     i <= recordedCameras,
			"enabled":    true,
		}
		if _, err := c.do("POST", "/api/v1/cameras", cam, http.StatusCreated, http.StatusOK); err != nil {
			return fmt.Errorf("register %s: %w", fleetID(i), err)
		}
	}
	return nil
}

// waitOnline polls the status until every camera is online.
func waitOnline(c *apiClient, ids []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		var st []struct{ ID, State string }
		b, err := c.do("GET", "/api/v1/status", nil, http.StatusOK)
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		online := map[string]bool{}
		for _, s := range st {
			online[s.ID] = s.State == "online"
		}
		var missing []string
		for _, id := range ids {
			if !online[id] {
				missing = append(missing, id)
			}
		}
		if err == nil && len(missing) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("cameras not online after %s: %v (last error %v)", timeout, missing, err)
		}
		time.Sleep(250 * time.Millisecond) // polling interval, not a wait for a condition
	}
}

// ---- API client (for set-up and checks the page cannot make)

type apiClient struct {
	base string
	hc   *http.Client
	csrf string
}

func login(base, user, pass string) (*apiClient, error) {
	jar, err := cookiejar.New(nil)
	if err != nil {
		return nil, err
	}
	c := &apiClient{base: base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	if _, err := c.do("POST", "/api/v1/session", map[string]string{"username": user, "password": pass}, http.StatusOK, http.StatusCreated, http.StatusNoContent); err != nil {
		return nil, fmt.Errorf("log in as %s: %w", user, err)
	}
	b, err := c.do("GET", "/api/v1/session", nil, http.StatusOK)
	if err != nil {
		return nil, err
	}
	var s struct{ CSRFToken string }
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("session: %w", err)
	}
	c.csrf = s.CSRFToken
	return c, nil
}

func (c *apiClient) do(method, path string, body any, want ...int) ([]byte, error) {
	req, err := testkit.APIRequest(method, c.base+path, body, c.csrf)
	if err != nil {
		return nil, err
	}
	res, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, err
	}
	for _, w := range want {
		if res.StatusCode == w {
			return b, nil
		}
	}
	return b, fmt.Errorf("%s %s: %s: %s", method, path, res.Status, strings.TrimSpace(string(b)))
}

// ---- browser helpers

// tab opens a new tab (in a fresh browser context when isolated: its own
// cookies and localStorage) and fails the test on any uncaught page error.
func tab(t *testing.T, isolated bool) context.Context {
	t.Helper()
	if e2e.skip != "" {
		t.Skip(e2e.skip)
	}
	var opts []chromedp.ContextOption
	if isolated {
		opts = append(opts, chromedp.WithNewBrowserContext())
	}
	ctx, cancel := chromedp.NewContext(e2e.browser, opts...)
	ctx, cancelTimeout := context.WithTimeout(ctx, 3*time.Minute)
	exceptions := chromedp.Events(ctx, runtime.ExceptionThrown)
	var mu sync.Mutex
	var errs []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range exceptions {
			if err != nil {
				return
			}
			mu.Lock()
			errs = append(errs, exceptionText(ev))
			mu.Unlock()
		}
	}()
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1600, 1000)); err != nil {
		cancelTimeout()
		cancel()
		t.Fatalf("open tab: %v", err)
	}
	t.Cleanup(func() {
		cancelTimeout()
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		for _, e := range errs {
			t.Errorf("uncaught page error: %s", e)
		}
	})
	return ctx
}

func exceptionText(ev runtime.EventExceptionThrown) string {
	d := ev.ExceptionDetails
	if d == nil {
		return "unknown exception"
	}
	s := d.Text
	if d.Exception != nil && d.Exception.Description != "" {
		s += " " + d.Exception.Description
	}
	return fmt.Sprintf("%s (%s:%d:%d)", s, d.URL, d.LineNumber, d.ColumnNumber)
}

// do runs steps, failing the test with what it was doing.
func do(t *testing.T, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, steps...); err != nil {
		shot(t, ctx, "FAILED-"+t.Name())
		t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression (promises awaited).
func eval[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor polls a JavaScript predicate until it is truthy.
func waitFor(t *testing.T, ctx context.Context, what, expr string, timeout time.Duration) {
	t.Helper()
	// A predicate that throws (an element not there yet) counts as false.
	guarded := fmt.Sprintf("(() => { try { return (%s); } catch (e) { return false; } })()", expr)
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](guarded,
		chromedp.WithPollingTimeout(timeout), chromedp.WithPollingInterval(200*time.Millisecond)))
	if err != nil {
		shot(t, ctx, "FAILED-"+t.Name())
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

// shot saves a screenshot of the tab under test-output/.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	sctx, cancel := context.WithTimeout(ctx, stepTimeout)
	defer cancel()
	png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	name = strings.NewReplacer("/", "-", " ", "_").Replace(name)
	if err := os.WriteFile(filepath.Join(e2e.outDir, name+".png"), png, 0o644); err != nil {
		t.Logf("screenshot %s: %v", name, err)
	}
}

// adminTab opens a new tab, logs in as admin and, unless route is "", opens
// that hash route of the app.
func adminTab(t *testing.T, route string) context.Context {
	t.Helper()
	ctx := tab(t, false)
	logIn(t, ctx, "admin", adminPassword)
	if route != "" {
		open(t, ctx, route)
	}
	return ctx
}

// playbackTab opens a tab as admin on the playback page of one camera at a
// moment, and waits until its video shows a picture.
func playbackTab(t *testing.T, camera string, at time.Time) context.Context {
	t.Helper()
	ctx := adminTab(t, "/playback?camera="+camera+"&t="+rfc(at))
	waitVideoReady(t, ctx)
	return ctx
}

// open navigates to a hash route of the app.
func open(t *testing.T, ctx context.Context, route string) {
	t.Helper()
	do(t, ctx, "open "+route, chromedp.Navigate(e2e.baseURL+"/#"+route))
}

// logIn logs in through the login form and waits for the top bar.
func logIn(t *testing.T, ctx context.Context, user, pass string) {
	t.Helper()
	open(t, ctx, "/login")
	do(t, ctx, "log in as "+user,
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-username]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-username]`), user),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-password]`), pass),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=current-user]`)),
	)
}

// jsString quotes s for a JavaScript expression.
// importCSV opens the import dialog of the cameras page in ctx and submits
// text.
func importCSV(t *testing.T, ctx context.Context, what, text string) {
	t.Helper()
	do(t, ctx, what,
		chromedp.Click(chromedp.CSS(`[data-testid=camera-import]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=import-text]`)),
		setText(`[data-testid=import-text]`, text),
		chromedp.Click(chromedp.CSS(`[data-testid=import-submit]`)))
}

// switchToChinese picks zh-CN in the language switch of the page in ctx.
func switchToChinese(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, "switch to Chinese", chromedp.Evaluate[chromedp.Void](`(() => {
	  const s = document.querySelector('[data-testid=lang-switch]');
	  s.value = 'zh-CN';
	  s.dispatchEvent(new Event('change'));
	})()`))
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// frameCounters installs a requestVideoFrameCallback counter on every video
// matching sel and returns an expression giving [{id, n, w}] for them.
func frameCounters(sel string) string {
	return fmt.Sprintf(`(() => [...document.querySelectorAll(%s)].map((v) => {
  if (!v.__vigilHooked) {
    v.__vigilHooked = true; v.__vigilFrames = 0;
    const cb = () => { v.__vigilFrames++; v.requestVideoFrameCallback(cb); };
    v.requestVideoFrameCallback(cb);
  }
  const host = v.closest('[data-camera-id]');
  return { id: host ? host.dataset.cameraId : '', n: v.__vigilFrames, w: v.videoWidth, h: v.videoHeight };
}))()`, jsString(sel))
}

type frameCount struct {
	ID string `json:"id"`
	N  int    `json:"n"`
	W  int    `json:"w"`
	H  int    `json:"h"`
}

// framesAdvance waits until every video matching sel (want of them) shows a
// picture and has decoded at least more frames than at the first sample.
func framesAdvance(t *testing.T, ctx context.Context, sel string, want, more int, timeout time.Duration) []frameCount {
	t.Helper()
	expr := frameCounters(sel)
	first := eval[[]frameCount](t, ctx, expr)
	if len(first) != want {
		t.Fatalf("%d videos match %s, want %d", len(first), sel, want)
	}
	base := map[string]int{}
	for _, f := range first {
		base[f.ID] = f.N
	}
	deadline := time.Now().Add(timeout)
	for {
		now := eval[[]frameCount](t, ctx, expr)
		var slow []string
		for _, f := range now {
			if f.W == 0 || f.N < base[f.ID]+more {
				slow = append(slow, fmt.Sprintf("%s(w=%d, +%d)", f.ID, f.W, f.N-base[f.ID]))
			}
		}
		if len(slow) == 0 && len(now) == want {
			return now
		}
		if time.Now().After(deadline) {
			shot(t, ctx, "FAILED-"+t.Name())
			t.Fatalf("videos not advancing after %s: %v", timeout, slow)
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
}
