// Command relay is the live relay's load harness: it runs real processes — a
// camera simulator (`vigil camsim`, one 2 Mbit/s H.264 camera), the server
// (`vigil serve`, the camera registered without recording) and a load client
// (this program again, with -load) holding N WHEP viewers made with pion —
// and reads the CPU time (utime+stime) and resident memory of the server
// only, from /proc. It reports CPU-ms per viewer-second and MB per viewer for
// each viewer count, each on a fresh server:
//
//	go run ./bench/relay -viewers 100,300,1000 -duration 30s
//	go run ./bench/relay -viewers 300 -vigil /tmp/before/vigil   # another build
//
// With several counts it also prints the marginal memory per viewer between
// consecutive counts (from the final RSS of each), which the RSS before any
// viewer, different from server to server, does not blur.
//
// The machines are shared: alternate builds, repeat, and read the load
// average printed with each run.
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-vms/vigil/internal/benchkit"
	"github.com/vigil-vms/vigil/internal/procstat"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-load" {
		benchkit.Main("bench/relay load", runLoad)
		return
	}
	benchkit.Main("bench/relay", run)
}

const (
	adminPassword = "bench-relay-admin-pw"
	userPassword  = "bench-relay-viewer-pw"
	// perUser is the live sessions the harness opens per user: the server
	// caps them (ui.Options.LivePerUser, 32).
	perUser = 30
)

func run() error {
	viewersFlag := flag.String("viewers", "300", "viewer counts, comma-separated: each runs on a fresh server")
	duration := flag.Duration("duration", 30*time.Second, "measuring window once every viewer plays (at most 60s)")
	vigil := flag.String("vigil", "", "vigil binary of the server and camsim (default: go build ./cmd/vigil)")
	keep := flag.Bool("keep", false, "keep the run's directory (server logs) and print its path")
	settle := flag.Duration("settle", 3*time.Second, "wait after the last viewer connected before measuring")
	light := flag.Bool("light", false, "viewers that count RTP packets by their headers without decrypting them (one shared socket): a load client that holds 1000 viewers")
	flag.Parse()
	var counts []int
	for f := range strings.SplitSeq(*viewersFlag, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return fmt.Errorf("-viewers: %q is not a positive number", f)
		}
		counts = append(counts, n)
	}
	if *duration <= 0 || *duration > 60*time.Second {
		return errors.New("-duration must be within (0, 60s]: the machines are shared")
	}
	one := 1
	ctx, dir, done, err := benchkit.Flags{Cameras: &one, Duration: duration}.Start()
	if err != nil {
		return err
	}
	// a SIGTERM (timeout(1)) ends the run like an interrupt: the server,
	// camsim and the load client are stopped with it
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGTERM)
	defer stop()
	if *keep {
		fmt.Println("run directory:", dir)
	} else {
		defer done()
	}
	if *vigil == "" {
		if *vigil, err = benchkit.BuildVigil(ctx, dir); err != nil {
			return err
		}
	}
	sim, err := benchkit.StartSim(ctx, *vigil, dir, 1, "--bitrate", "high")
	if err != nil {
		return err
	}
	defer sim.Stop()
	var prev *result
	for i, n := range counts {
		r, err := runOne(ctx, *vigil, filepath.Join(dir, strconv.Itoa(i)), sim.URLs[0][0], n, *duration, *settle, *light)
		if err != nil {
			return fmt.Errorf("%d viewers: %w", n, err)
		}
		r.print()
		if prev != nil && r.connected != prev.connected {
			// the RSS before any viewer varies by tens of MiB between
			// servers (what the start left resident), and viewers first
			// fill that: the difference of the final RSS of two counts is
			// the steadier figure
			fmt.Printf("  marginal memory from %d to %d viewers: %.3f MB per viewer (final RSS %.1f → %.1f MiB)\n",
				prev.connected, r.connected, float64(r.rssKB-prev.rssKB)*1024/1e6/float64(r.connected-prev.connected),
				float64(prev.rssKB)/1024, float64(r.rssKB)/1024)
		}
		prev = &r
	}
	return nil
}

type result struct {
	viewers, connected     int
	wall                   time.Duration
	serverCPU, loadCPU     time.Duration
	baseRSSKB, rssKB       int64
	packets                loadStats
	load0, load1, sessions string
	refused                int
	stepDowns              int // the server's log lines saying it stepped its viewers down
}

func (r result) print() {
	// per viewer playing: a viewer that did not connect costs (almost) nothing
	vs := float64(max(r.connected, 1)) * r.wall.Seconds()
	fmt.Printf("viewers %d (connected %d, 503 answers retried %d): server CPU %.2f CPU-ms per viewer-second (%.0f %% of one core), "+
		"RSS %.1f MiB → %.1f MiB, %.3f MB per viewer (per viewer connected)\n",
		r.viewers, r.connected, r.refused, float64(r.serverCPU.Microseconds())/1000/vs, 100*r.serverCPU.Seconds()/r.wall.Seconds(),
		float64(r.baseRSSKB)/1024, float64(r.rssKB)/1024, float64(r.rssKB-r.baseRSSKB)*1024/1e6/float64(max(r.connected, 1)))
	fmt.Printf("  viewers received %.0f packets/s each (min %.0f, max %.0f), %.1f frames/s each (min %.1f, max %.1f); "+
		"load client CPU %.0f %% of one core; load average %s → %s; window %s\n",
		r.packets.avg(r.wall), float64(r.packets.MinPackets)/r.wall.Seconds(), float64(r.packets.MaxPackets)/r.wall.Seconds(),
		float64(r.packets.Frames)/float64(max(r.connected, 1))/r.wall.Seconds(),
		float64(r.packets.MinFrames)/r.wall.Seconds(), float64(r.packets.MaxFrames)/r.wall.Seconds(),
		100*r.loadCPU.Seconds()/r.wall.Seconds(), r.load0, r.load1, r.wall.Round(time.Millisecond))
	if r.stepDowns > 0 {
		fmt.Printf("  the server stepped its viewers down to keyframes %d times (overloaded; see its log)\n", r.stepDowns)
	}
}

// runOne starts a server, registers the camera, connects n viewers from a
// load process and measures the server over the window.
func runOne(ctx context.Context, vigil, dir, camURL string, n int, window, settle time.Duration, light bool) (result, error) {
	var res result
	res.viewers = n
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return res, err
	}
	port, err := freePort()
	if err != nil {
		return res, err
	}
	cfg := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, `http: { listen: "127.0.0.1:%d" }
webrtc: { udpPort: 0 }
storage: { backend: local, local: { dir: %q } }
recording: { spoolDir: %q }
database: { path: %q }
log: { level: info }
`, port, filepath.Join(dir, "rec"), filepath.Join(dir, "spool"), filepath.Join(dir, "vigil.db")), 0o600); err != nil {
		return res, err
	}
	sctx, scancel := context.WithCancel(ctx)
	defer scancel()
	srv := exec.CommandContext(sctx, vigil, "serve", "--config", cfg)
	srv.Env = append(os.Environ(), "VIGIL_ADMIN_PASSWORD="+adminPassword)
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		return res, err
	}
	defer logf.Close()
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		return res, fmt.Errorf("start vigil serve: %w", err)
	}
	defer func() { _ = srv.Process.Signal(os.Interrupt); _ = srv.Wait() }()
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := awaitHealthy(ctx, base, srv); err != nil {
		return res, fmt.Errorf("%w (log: %s)", err, logf.Name())
	}
	admin, err := login(ctx, base, "admin", adminPassword)
	if err != nil {
		return res, err
	}
	if err := admin.call(ctx, "POST", "/api/v1/cameras", map[string]any{
		"id": "cam1", "name": "bench", "department": "police", "mainUrl": camURL,
		"transport": "tcp", "record": false, "enabled": true,
	}, nil); err != nil {
		return res, fmt.Errorf("register the camera: %w", err)
	}
	var users []string
	for i := range (n + perUser - 1) / perUser {
		name := fmt.Sprintf("viewer%d", i+1)
		if err := admin.call(ctx, "POST", "/api/v1/users", map[string]any{
			"username": name, "password": userPassword, "role": "viewer",
		}, nil); err != nil {
			return res, fmt.Errorf("add user %s: %w", name, err)
		}
		users = append(users, name)
	}
	if _, err := benchkit.AwaitCount(ctx, 1, 30*time.Second, "online", func() int {
		var st struct {
			State string `json:"state"`
		}
		if admin.call(ctx, "GET", "/api/v1/cameras/cam1/status", nil, &st) == nil && st.State == "online" {
			return 1
		}
		return 0
	}); err != nil {
		return res, err
	}
	time.Sleep(2 * time.Second) // a GOP in the hub's cache
	pid := strconv.Itoa(srv.Process.Pid)
	if res.baseRSSKB, err = rssKB(pid); err != nil {
		return res, err
	}

	self, err := os.Executable()
	if err != nil {
		return res, err
	}
	args := []string{"-load", base, strconv.Itoa(n), strings.Join(users, ","), userPassword}
	if light {
		args = append(args, "light")
	}
	load := exec.CommandContext(sctx, self, args...)
	stdin, err := load.StdinPipe()
	if err != nil {
		return res, err
	}
	out, err := load.StdoutPipe()
	if err != nil {
		return res, err
	}
	load.Stderr = os.Stderr
	if err := load.Start(); err != nil {
		return res, fmt.Errorf("start the load client: %w", err)
	}
	defer func() { _ = load.Process.Kill(); _ = load.Wait() }()
	lines := bufio.NewScanner(out)
	fmt.Printf("connecting %d viewers ...\n", n)
	t0 := time.Now()
	for lines.Scan() {
		if v, ok := strings.CutPrefix(lines.Text(), "ready "); ok {
			fmt.Sscanf(v, "%d %d", &res.connected, &res.refused)
			break
		}
		fmt.Println("  load:", lines.Text())
	}
	if res.connected == 0 {
		return res, fmt.Errorf("the load client connected no viewer (server log: %s)", logf.Name())
	}
	fmt.Printf("%d viewers playing after %s (%d offers refused and retried); measuring for %s\n", res.connected, time.Since(t0).Round(time.Millisecond), res.refused, window)
	time.Sleep(settle)
	res.load0 = loadavg()
	if _, err := io.WriteString(stdin, "start\n"); err != nil {
		return res, err
	}
	cpu0, err := procstat.CPU(pid)
	if err != nil {
		return res, err
	}
	lcpu0, _ := procstat.CPU(strconv.Itoa(load.Process.Pid))
	w0 := time.Now()
	select {
	case <-ctx.Done():
		return res, ctx.Err()
	case <-time.After(window):
	}
	if _, err := io.WriteString(stdin, "stop\n"); err != nil {
		return res, err
	}
	cpu1, err := procstat.CPU(pid)
	if err != nil {
		return res, err
	}
	lcpu1, _ := procstat.CPU(strconv.Itoa(load.Process.Pid))
	res.wall = time.Since(w0)
	res.serverCPU, res.loadCPU = cpu1-cpu0, lcpu1-lcpu0
	res.load1 = loadavg()
	if res.rssKB, err = rssKB(pid); err != nil {
		return res, err
	}
	for lines.Scan() {
		if v, ok := strings.CutPrefix(lines.Text(), "stats "); ok {
			if err := json.Unmarshal([]byte(v), &res.packets); err != nil {
				return res, fmt.Errorf("load client stats: %w", err)
			}
			break
		}
	}
	_ = stdin.Close()
	if b, err := os.ReadFile(logf.Name()); err == nil {
		res.stepDowns = strings.Count(string(b), "cannot keep up")
	}
	return res, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func awaitHealthy(ctx context.Context, base string, srv *exec.Cmd) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if srv.ProcessState != nil {
			return errors.New("vigil serve exited")
		}
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return errors.New("vigil serve not healthy after 30s")
}

func rssKB(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	return procstat.ParseStatusKB(string(b), "VmRSS")
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// apiClient is a logged-in session of the JSON API.
type apiClient struct {
	base string
	http *http.Client
	csrf string
}

func login(ctx context.Context, base, user, password string) (*apiClient, error) {
	jar, _ := cookiejar.New(nil)
	c := &apiClient{base: base, http: &http.Client{Jar: jar, Timeout: 60 * time.Second}}
	if err := c.call(ctx, "POST", "/api/v1/session", map[string]string{"username": user, "password": password}, nil); err != nil {
		return nil, fmt.Errorf("log in as %s: %w", user, err)
	}
	var s struct {
		CSRF string `json:"csrfToken"`
	}
	if err := c.call(ctx, "GET", "/api/v1/session", nil, &s); err != nil {
		return nil, err
	}
	c.csrf = s.CSRF
	return c, nil
}

func (c *apiClient) call(ctx context.Context, method, path string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}
