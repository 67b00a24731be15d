package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/pgtest"
)

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, io.Discard, nil); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "vigil ") || !strings.Contains(out.String(), "gortsplib/v4 v4.16.2") {
		t.Fatalf("version output: %q", out.String())
	}
}

func TestUnknownCommand(t *testing.T) {
	err := run(context.Background(), []string{"frobnicate"}, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "frobnicate") {
		t.Fatalf("err = %v", err)
	}
}

// A bad configuration stops start-up with one line naming the key.
func TestServeBadConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(path, []byte("recording:\n  segment: 1s\n"), 0o600)
	err := run(context.Background(), []string{"serve", "--config", path}, io.Discard, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "recording.segment") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("err = %v", err)
	}
}

// The demo starts simulated cameras in every department, registers them,
// prints a URL and a working admin login, and the cameras come online.
func TestDemo(t *testing.T) {
	dir := t.TempDir()
	cfgPath := writeLocalConfig(t, dir, "4s")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"demo", "--config", cfgPath}, pw, io.Discard, nil)
		pw.Close()
	}()
	urlRE := regexp.MustCompile(`open\s+(http://\S+)`)
	loginRE := regexp.MustCompile(`login\s+admin / (\S+)`)
	var base, password string
	sc := bufio.NewScanner(pr)
	for sc.Scan() && (base == "" || password == "") {
		if m := urlRE.FindStringSubmatch(sc.Text()); m != nil {
			base = strings.TrimSuffix(m[1], "/")
		}
		if m := loginRE.FindStringSubmatch(sc.Text()); m != nil {
			password = m[1]
		}
	}
	go io.Copy(io.Discard, pr)
	if base == "" || password == "" {
		t.Fatalf("demo printed no URL or login (err: %v)", <-done)
	}

	jar, _ := cookiejar.New(nil)
	hc := &http.Client{Jar: jar, Timeout: 10 * time.Second}
	body, _ := json.Marshal(map[string]string{"username": "admin", "password": password})
	resp, err := hc.Post(base+"/api/v1/session", "application/json", bytes.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login with the printed password: %v %v", resp, err)
	}
	resp.Body.Close()

	var cams []struct{ ID, Department, SubURL, Source string }
	resp, err = hc.Get(base + "/api/v1/cameras")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&cams)
	resp.Body.Close()
	depts := map[string]int{}
	gb := 0
	for _, c := range cams {
		depts[c.Department]++
		if c.Source == "gb28181" {
			// the simulated GB/T 28181 device's channels: one stream each
			if c.Department == demoGBDepartment {
				gb++
			}
			continue
		}
		if c.SubURL == "" {
			t.Errorf("demo camera %s has no sub-stream", c.ID)
		}
	}
	if gb != len(demoGBChannels) {
		t.Errorf("demo has %d GB/T 28181 cameras in %s, want %d: %+v", gb, demoGBDepartment, len(demoGBChannels), cams)
	}
	if len(cams) < 8 || len(depts) < 4 {
		t.Fatalf("demo registered %d cameras in %d departments, want at least 8 in 4", len(cams), len(depts))
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		var sts []struct{ ID, State string }
		resp, err := hc.Get(base + "/api/v1/status")
		if err != nil {
			t.Fatal(err)
		}
		json.NewDecoder(resp.Body).Decode(&sts)
		resp.Body.Close()
		online := 0
		for _, s := range sts {
			if s.State == "online" {
				online++
			}
		}
		if online == len(cams) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d demo cameras online after 30 s: %+v", online, len(cams), sts)
		}
		time.Sleep(200 * time.Millisecond)
	}
	cancel()
	testkit.Returned(t, done, 15*time.Second, "demo")
}

// writeLocalConfig writes dir/vigil.yaml: a server on 127.0.0.1 with any free
// ports, recording segments of the given length to a local store, with every
// file (store, spool, database) under dir. It returns the file's path.
func writeLocalConfig(t *testing.T, dir, segment string) string {
	t.Helper()
	return writeConfig(t, dir, fmt.Sprintf("local: { dir: %q }", filepath.Join(dir, "rec")),
		fmt.Sprintf("spoolDir: %q, segment: %s", filepath.Join(dir, "spool"), segment), filepath.Join(dir, "vigil.db"))
}

// writeConfig writes dir/vigil.yaml, listening on free ports, with the
// storage and recording sections given (the insides of YAML flow maps) and
// the database at dbPath, and returns its path.
func writeConfig(t *testing.T, dir, storage, recording, dbPath string) string {
	t.Helper()
	path := filepath.Join(dir, "vigil.yaml")
	err := os.WriteFile(path, []byte(fmt.Sprintf(`
http: { listen: "127.0.0.1:0" }
webrtc: { udpPort: 0 }
storage: { %s }
recording: { %s }
database: { path: %q }
`, storage, recording, dbPath)), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// TestMain lets a test run this binary's main as a subprocess (serveCmd),
// and stops the PostgreSQL server the tests may have started (pgtest).
func TestMain(m *testing.M) {
	if os.Getenv("VIGIL_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	pgtest.Main(m)
}

// serveCmd is `vigil serve --config cfgPath`, run by this test binary
// (TestMain), with env added to its environment.
func serveCmd(cfgPath string, env ...string) *exec.Cmd {
	cmd := exec.Command(os.Args[0], "serve", "--config", cfgPath)
	cmd.Env = append(append(os.Environ(), "VIGIL_TEST_RUN_MAIN=1"), env...)
	return cmd
}

// awaitLog reads r, a process's log, until n of its lines contain want, and
// fails the test with the log read so far when that takes longer than
// timeout. It goes on reading r to its end.
func awaitLog(t *testing.T, r io.Reader, want string, n int, timeout time.Duration) {
	t.Helper()
	logs := &testkit.SyncBuffer{Max: 1 << 20}
	found := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(r)
		seen := 0
		for sc.Scan() {
			fmt.Fprintln(logs, sc.Text())
			if strings.Contains(sc.Text(), want) {
				if seen++; seen == n {
					close(found)
				}
			}
		}
	}()
	select {
	case <-found:
	case <-time.After(timeout):
		t.Fatalf("no %d log lines with %q within %s; log:\n%s", n, want, timeout, logs.String())
	}
}

// `vigil camsim --gb28181` is the simulated GB/T 28181 device, not camsim's RTSP cameras.
func TestCamsimGB28181Flags(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"camsim", "--gb28181", "--id", "123", "--sip", "127.0.0.1:5060"}, &out, io.Discard, nil)
	if err == nil || !strings.Contains(err.Error(), "--id \"123\"") {
		t.Fatalf("err = %v", err)
	}
}
