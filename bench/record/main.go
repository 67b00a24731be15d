// Command record is the recording load harness over real processes: it
// starts `vigil camsim` with N cameras and `vigil serve` (local store), each
// in its own process, registers the cameras through the API (CSV import,
// all recorded), waits until every one records, and then reads the server's
// /proc over the measuring window: CPU (utime+stime) per camera-second,
// resident memory per camera, OS threads, and the bytes the server wrote to
// and read from the disk (/proc/PID/io) against the media it ingested.
// Finally it sends SIGTERM and measures how long the server takes to exit,
// against its shutdown grace (8 s), and how many segments it left in the
// spool for the next start.
//
//	go run ./bench/record -cameras 200 -duration 40s
//	go run ./bench/record -cameras 200 -server /path/to/other/vigil   # compare two builds
//	go run ./bench/record -cameras 200 -sub=false   # main streams only (the server pulls every registered sub-stream)
package main

import (
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
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/vigil-vms/vigil/internal/benchkit"
	"github.com/vigil-vms/vigil/internal/procstat"
)

func main() { benchkit.Main("bench/record", run) }

const password = "bench-password-1"

func run() error {
	common := benchkit.CommonFlags(40*time.Second, "recording")
	server := flag.String("server", "", "vigil binary to run the server with (default: the -vigil binary, or ./cmd/vigil built)")
	segment := flag.Duration("segment", 60*time.Second, "recording.segment of the server")
	stagger := flag.Bool("stagger", true, "camsim --stagger: the cameras' keyframes apart, as with real cameras (false: all at the same instant)")
	keepLog := flag.String("log", "", "copy the server's log (stdout and stderr) to this file at the end")
	withSub := flag.Bool("sub", true, "register each camera's sub-stream too (the server pulls it, ~0.34 Mbit/s, as for a real install); false: main streams only")
	flag.Parse()
	ctx, dir, done, err := common.Start()
	if err != nil {
		return err
	}
	defer done()
	if *common.Vigil == "" {
		bin, err := benchkit.BuildVigil(ctx, dir)
		if err != nil {
			return err
		}
		*common.Vigil = bin
	}
	if *server == "" {
		*server = *common.Vigil
	}
	simFlags := []string{"--codec", "h264", "--bitrate", "high"}
	if *stagger {
		simFlags = append(simFlags, "--stagger")
	}
	sim, err := common.StartSim(ctx, dir, simFlags...)
	if err != nil {
		return err
	}
	defer sim.Stop()

	addr, err := freePort("tcp")
	if err != nil {
		return err
	}
	udp, err := freePort("udp")
	if err != nil {
		return err
	}
	_, udpPort, _ := net.SplitHostPort(udp)
	cfg := filepath.Join(dir, "vigil.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`http:
  listen: %q
webrtc:
  udpPort: %s
storage:
  backend: local
  local:
    dir: %q
recording:
  segment: %s
  spoolDir: %q
database:
  path: %q
log:
  level: debug
`, addr, udpPort, filepath.Join(dir, "recordings"), *segment, filepath.Join(dir, "spool"), filepath.Join(dir, "vigil.db"))), 0o600); err != nil {
		return err
	}
	srv := exec.Command(*server, "serve", "--config", cfg)
	srv.Env = append(os.Environ(), "VIGIL_ADMIN_PASSWORD="+password)
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	srv.Stdout, srv.Stderr = logf, logf
	if err := srv.Start(); err != nil {
		return fmt.Errorf("start vigil serve: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- srv.Wait() }()
	defer func() {
		if srv.ProcessState == nil {
			srv.Process.Kill()
			<-exited
		}
	}()
	pid := strconv.Itoa(srv.Process.Pid)

	base := "http://" + addr
	cl, err := login(ctx, base, exited)
	if err != nil {
		return err
	}
	baseRSS, err := rssKB(pid) // the server without cameras
	if err != nil {
		return err
	}
	var csv strings.Builder
	csv.WriteString("id,name,department,mainUrl,subUrl,transport,record,enabled\n")
	for i, u := range sim.URLs {
		sub := u[1]
		if !*withSub {
			sub = ""
		}
		fmt.Fprintf(&csv, "bench-%d,bench %d,police,%s,%s,tcp,true,true\n", i+1, i+1, u[0], sub)
	}
	if err := cl.call(ctx, "POST", "/api/v1/cameras/import", "text/csv", []byte(csv.String()), nil); err != nil {
		return fmt.Errorf("import cameras: %w", err)
	}
	n := len(sim.URLs)
	took, err := benchkit.AwaitCount(ctx, n, 120*time.Second, "recording", func() int {
		var sts []struct {
			Recording bool `json:"recording"`
		}
		if cl.call(ctx, "GET", "/api/v1/status", "", nil, &sts) != nil {
			return 0
		}
		c := 0
		for _, s := range sts {
			if s.Recording {
				c++
			}
		}
		return c
	})
	if err != nil {
		return err
	}
	time.Sleep(5 * time.Second) // past the start: every camera in its first segment
	fmt.Printf("%d cameras recording after %s; measuring vigil serve (pid %s) for %s\n", n, took.Round(time.Millisecond), pid, *common.Duration)

	cpu0, err := procstat.CPU(pid)
	if err != nil {
		return err
	}
	sim0, _ := procstat.CPU(strconv.Itoa(sim.Cmd.Process.Pid))
	io0, err := readIO(pid)
	if err != nil {
		return err
	}
	mach0, _ := procstat.ReadMachine()
	kbps0, err := ingestKbps(ctx, cl)
	if err != nil {
		return err
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case err := <-exited:
		return fmt.Errorf("vigil serve exited: %v", err)
	case <-time.After(*common.Duration):
	}
	wall := time.Since(t0)
	cpu1, err := procstat.CPU(pid)
	if err != nil {
		return err
	}
	sim1, _ := procstat.CPU(strconv.Itoa(sim.Cmd.Process.Pid))
	io1, err := readIO(pid)
	if err != nil {
		return err
	}
	mach1, _ := procstat.ReadMachine()
	kbps1, err := ingestKbps(ctx, cl)
	if err != nil {
		return err
	}
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return err
	}
	rss, _ := procstat.ParseStatusKB(string(status), "VmRSS")
	hwm, _ := procstat.ParseStatusKB(string(status), "VmHWM")
	threads, _ := procstat.ParseStatusKB(string(status), "Threads")

	camSeconds := float64(n) * wall.Seconds()
	cpu := cpu1 - cpu0
	ingestBytes := (kbps0 + kbps1) / 2 * 1000 / 8 * wall.Seconds()
	wrote, read := io1.write-io0.write, io1.read-io0.read
	load, _ := os.ReadFile("/proc/loadavg")
	fmt.Printf("CPU (vigil serve): %.1f %% of one core; %.2f CPU-ms per camera-second\n",
		cpu.Seconds()/wall.Seconds()*100, float64(cpu.Milliseconds())/camSeconds)
	fmt.Printf("memory: RSS %.1f MiB (%.1f MiB without cameras; peak %.1f MiB), %.0f KiB per camera; OS threads %d\n",
		float64(rss)/1024, float64(baseRSS)/1024, float64(hwm)/1024, float64(rss-baseRSS)/float64(n), threads)
	fmt.Printf("ingest %.0f kbit/s per camera (the cameras' status); disk: wrote %.1f MB = %.2f× the media ingested, read %.1f MB (%.1f Mbit/s)\n",
		(kbps0+kbps1)/2/float64(n), float64(wrote)/1e6, float64(wrote)/ingestBytes, float64(read)/1e6, float64(read)*8/1e6/wall.Seconds())
	fmt.Printf("system calls of vigil serve: %.0f reads/s, %.0f writes/s (sockets and files)\n",
		float64(io1.syscr-io0.syscr)/wall.Seconds(), float64(io1.syscw-io0.syscw)/wall.Seconds())
	fmt.Printf("apart (not counted above): camsim %.1f %% of one core; the whole machine %.1f %% of one core busy, %.1f %% stolen by the hypervisor; load average %s",
		(sim1-sim0).Seconds()/wall.Seconds()*100, (mach1.Busy-mach0.Busy).Seconds()/wall.Seconds()*100,
		(mach1.Steal-mach0.Steal).Seconds()/wall.Seconds()*100, load)

	losses, err := lossCounts(ctx, cl)
	if err != nil {
		return err
	}
	fmt.Printf("losses since start: %s\n", losses)

	// SIGTERM: the time to exit, and what waits in the spool for the next start
	stopAt := time.Now()
	if err := srv.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	select {
	case err = <-exited:
	case <-time.After(30 * time.Second):
		return errors.New("vigil serve did not exit 30 s after SIGTERM")
	}
	stopTook := time.Since(stopAt)
	left := 0
	filepath.WalkDir(filepath.Join(dir, "spool"), func(p string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			left++
		}
		return nil
	})
	fmt.Printf("SIGTERM: exited after %s (%v), grace 8s; segments left in the spool %d\n", stopTook.Round(time.Millisecond), err, left)
	logb, _ := os.ReadFile(logf.Name())
	if *keepLog != "" {
		if err := os.WriteFile(*keepLog, logb, 0o644); err != nil {
			return err
		}
	}
	warn, errs, lost := 0, 0, 0
	for _, l := range strings.Split(string(logb), "\n") {
		if strings.Contains(l, "units lost") {
			lost++
		}
		switch {
		case strings.Contains(l, "level=WARN"):
			warn++
		case strings.Contains(l, "level=ERROR"):
			errs++
		default:
			continue
		}
		if warn+errs <= 3 {
			fmt.Println("  " + l)
		}
	}
	fmt.Printf("server log (level debug): %d warnings, %d errors, %d segments closed on units lost (a gap)\n", warn, errs, lost)
	return nil
}

// lossCounts sums what the server reports lost: units dropped by slow
// subscribers and reconnections (status API), units not recorded, segments
// dropped and failed uploads (its metrics).
func lossCounts(ctx context.Context, cl *client) (string, error) {
	var sts []struct {
		Dropped    uint64 `json:"dropped"`
		Reconnects int    `json:"reconnects"`
		Sub        *struct {
			Reconnects int `json:"reconnects"`
		} `json:"sub"`
	}
	if err := cl.call(ctx, "GET", "/api/v1/status", "", nil, &sts); err != nil {
		return "", err
	}
	var dropped uint64
	var reconnects int
	for _, s := range sts {
		dropped += s.Dropped
		reconnects += s.Reconnects
		if s.Sub != nil {
			reconnects += s.Sub.Reconnects
		}
	}
	req, err := http.NewRequestWithContext(ctx, "GET", cl.base+"/metrics", nil)
	if err != nil {
		return "", err
	}
	resp, err := cl.hc.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	metric := func(name string) string {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[0] == name {
				return f[1]
			}
		}
		return "?"
	}
	return fmt.Sprintf("units dropped by slow subscribers %d, reconnects %d, units not recorded %s, segments dropped %s, upload errors %s",
		dropped, reconnects, metric("vigil_recording_lost_units_total"), metric("vigil_spool_dropped_segments_total"),
		metric("vigil_upload_errors_total")), nil
}

// ingestKbps sums the cameras' video bitrates from the status API.
func ingestKbps(ctx context.Context, cl *client) (float64, error) {
	var sts []struct {
		Video *struct {
			BitrateKbps float64 `json:"bitrateKbps"`
		} `json:"video"`
	}
	if err := cl.call(ctx, "GET", "/api/v1/status", "", nil, &sts); err != nil {
		return 0, err
	}
	var sum float64
	for _, s := range sts {
		if s.Video != nil {
			sum += s.Video.BitrateKbps
		}
	}
	return sum, nil
}

type client struct {
	base string
	hc   *http.Client
	csrf string
}

// login waits for the server to answer and logs in as admin.
func login(ctx context.Context, base string, exited <-chan error) (*client, error) {
	jar, _ := cookiejar.New(nil)
	cl := &client{base: base, hc: &http.Client{Jar: jar, Timeout: 30 * time.Second}}
	for deadline := time.Now().Add(60 * time.Second); ; {
		resp, err := cl.hc.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		select {
		case err := <-exited:
			return nil, fmt.Errorf("vigil serve exited: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return nil, errors.New("vigil serve did not answer /healthz within 60 s")
		}
	}
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": password})
	if err := cl.call(ctx, "POST", "/api/v1/session", "application/json", body, nil); err != nil {
		return nil, fmt.Errorf("login: %w", err)
	}
	var s struct {
		CSRF string `json:"csrfToken"`
	}
	if err := cl.call(ctx, "GET", "/api/v1/session", "", nil, &s); err != nil {
		return nil, err
	}
	cl.csrf = s.CSRF
	return cl, nil
}

func (c *client) call(ctx context.Context, method, path, ctype string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if c.csrf != "" {
		req.Header.Set("X-CSRF-Token", c.csrf)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(b))
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

type ioCounts struct{ read, write, syscr, syscw int64 }

// readIO reads read_bytes and write_bytes of /proc/PID/io (what the process
// caused to be read from and written to the storage), and syscr and syscw
// (its read and write system calls: sockets and files).
func readIO(pid string) (ioCounts, error) {
	b, err := os.ReadFile("/proc/" + pid + "/io")
	if err != nil {
		return ioCounts{}, err
	}
	r, err1 := procstat.ParseStatusKB(string(b), "read_bytes")
	w, err2 := procstat.ParseStatusKB(string(b), "write_bytes")
	sr, err3 := procstat.ParseStatusKB(string(b), "syscr")
	sw, err4 := procstat.ParseStatusKB(string(b), "syscw")
	return ioCounts{r, w, sr, sw}, errors.Join(err1, err2, err3, err4)
}

// freePort returns a free 127.0.0.1 address of the network ("tcp", "udp").
func freePort(network string) (string, error) {
	if network == "udp" {
		c, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.LocalAddr().String(), nil
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func rssKB(pid string) (int64, error) {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0, err
	}
	return procstat.ParseStatusKB(string(b), "VmRSS")
}
