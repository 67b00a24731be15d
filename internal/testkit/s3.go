package testkit

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Credentials of the S3 server's root user, and the bucket StartS3 names.
const (
	S3AccessKey = "vigiltest"
	S3SecretKey = "vigiltestsecret123"
	S3Bucket    = "vigil-test"
)

// VersitygwBinary returns the path of versitygw (looked up in
// $VIGIL_VERSITYGW, then on PATH, then in the module's .tools directory and
// /work/tools), or "" when it is not installed.
func VersitygwBinary() string {
	if p := os.Getenv("VIGIL_VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	var cands []string
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			cands = append(cands, filepath.Join(d, ".tools", "versitygw"))
			if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil || filepath.Dir(d) == d {
				break
			}
		}
	}
	cands = append(cands, "/work/tools/versitygw")
	for _, c := range cands {
		if st, err := os.Stat(c); err == nil && !st.IsDir() {
			return c
		}
	}
	return ""
}

// StartS3 runs versitygw for the test and returns its endpoint (host:port, plain
// http), the root credentials and a bucket name that does not exist yet (the
// store under test creates it). stop kills the server (the data stay);
// restart starts it again on the same port and directory. Both wait until the
// server is down or answering. The server is killed at the end of the test.
// extraArgs are more versitygw flags, such as "--readonly". When versitygw
// is missing the test is skipped, unless VIGIL_REQUIRE_S3=1 (CI), which makes
// it fail.
func StartS3(t testing.TB, extraArgs ...string) (endpoint, accessKey, secretKey, bucket string, stop, restart func()) {
	t.Helper()
	bin := versitygwOrSkip(t)
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: pick a port: %v", err)
	}
	endpoint = ln.Addr().String()
	ln.Close()

	var mu sync.Mutex
	var cmd *exec.Cmd
	var waitDone chan struct{}
	stderr := &SyncBuffer{Max: 64 << 10}
	kill := func() {
		mu.Lock()
		defer mu.Unlock()
		if cmd == nil {
			return
		}
		_ = cmd.Process.Kill()
		<-waitDone
		cmd = nil
	}
	launch := func() error {
		mu.Lock()
		defer mu.Unlock()
		if cmd != nil {
			return nil
		}
		args := append([]string{"--port", endpoint, "--region", "us-east-1", "--quiet"}, extraArgs...)
		c := exec.Command(bin, append(args, "posix", dir)...)
		c.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+S3AccessKey, "ROOT_SECRET_KEY="+S3SecretKey)
		c.Stdout = stderr
		c.Stderr = stderr
		if err := c.Start(); err != nil {
			return fmt.Errorf("start %s: %w", bin, err)
		}
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		cmd, waitDone = c, done
		err := waitS3(endpoint, done, stderr.String)
		if errors.Is(err, errS3Exited) {
			cmd = nil
		}
		return err
	}
	if err := launch(); err != nil {
		kill()
		t.Fatalf("testkit: %v", err)
	}
	t.Cleanup(kill)
	restart = func() {
		if err := launch(); err != nil {
			// restart may be called from the test goroutine only
			t.Errorf("testkit: restart: %v", err)
		}
	}
	return endpoint, S3AccessKey, S3SecretKey, S3Bucket, kill, restart
}

// The versitygw that SharedS3 starts once per test binary.
var sharedS3 struct {
	once     sync.Once
	err      error
	endpoint string
	dir      string
	cmd      *exec.Cmd
	done     chan struct{}
	seq      atomic.Int64
}

// SharedS3 returns a versitygw server shared by every test of the test
// binary (started at the first call) and a bucket name of the test's own
// that does not exist yet (the store under test creates it); the bucket and
// what it holds are removed when the test ends. For tests that need an S3
// server but never stop it (StartS3 gives a test a server of its own to stop
// and restart). The server dies with the test binary (it is its child, with
// a parent-death signal); call StopSharedS3 after m.Run to also remove its
// directory (pgtest.Main(m, testkit.StopSharedS3)). It skips or fails as
// StartS3 does when versitygw is missing.
func SharedS3(t testing.TB) (endpoint, accessKey, secretKey, bucket string) {
	t.Helper()
	bin := versitygwOrSkip(t)
	endpoint, accessKey, secretKey, bucket, err := SharedS3Bucket(bin)
	if err != nil {
		t.Fatalf("testkit: %v", err)
	}
	// the posix backend keeps a bucket as a directory of that name
	t.Cleanup(func() { os.RemoveAll(filepath.Join(sharedS3.dir, "data", bucket)) })
	return endpoint, accessKey, secretKey, bucket
}

// SharedS3Bucket is SharedS3 for a TestMain that sets up a server shared by
// all its tests: bin is versitygw (VersitygwBinary); the bucket stays until
// StopSharedS3, which the TestMain calls after the tests.
func SharedS3Bucket(bin string) (endpoint, accessKey, secretKey, bucket string, err error) {
	s := &sharedS3
	s.once.Do(func() { s.err = startSharedS3(bin) })
	if s.err != nil {
		return "", "", "", "", fmt.Errorf("shared S3 server: %w", s.err)
	}
	bucket = fmt.Sprintf("%s-%d", S3Bucket, s.seq.Add(1))
	return s.endpoint, S3AccessKey, S3SecretKey, bucket, nil
}

func startSharedS3(bin string) error {
	s := &sharedS3
	dir, err := os.MkdirTemp("", "vigil-s3-")
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	endpoint := ln.Addr().String()
	ln.Close()
	// its output goes to a file (no copying goroutine outlives the test that
	// started it) beside the buckets' directory
	data := filepath.Join(dir, "data")
	if err := os.Mkdir(data, 0o755); err != nil {
		os.RemoveAll(dir)
		return err
	}
	logPath := filepath.Join(dir, "log")
	logf, err := os.Create(logPath)
	if err != nil {
		os.RemoveAll(dir)
		return err
	}
	defer logf.Close()
	output := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	c := exec.Command(bin, "--port", endpoint, "--region", "us-east-1", "--quiet", "posix", data)
	c.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+S3AccessKey, "ROOT_SECRET_KEY="+S3SecretKey)
	c.Stdout, c.Stderr = logf, logf
	c.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := c.Start(); err != nil {
		os.RemoveAll(dir)
		return fmt.Errorf("start %s: %w", bin, err)
	}
	done := make(chan struct{})
	go func() { _ = c.Wait(); close(done) }()
	s.endpoint, s.dir, s.cmd, s.done = endpoint, dir, c, done
	return waitS3(endpoint, done, output)
}

// versitygwOrSkip is versitygw's path; without it the test is skipped, or
// failed under VIGIL_REQUIRE_S3=1.
func versitygwOrSkip(t testing.TB) string {
	t.Helper()
	bin := VersitygwBinary()
	if bin == "" {
		if os.Getenv("VIGIL_REQUIRE_S3") == "1" {
			t.Fatal("versitygw not found (set VIGIL_VERSITYGW or put it on PATH) and VIGIL_REQUIRE_S3=1")
		}
		t.Skip("versitygw not found: set VIGIL_VERSITYGW or put it on PATH to run the S3 tests")
	}
	return bin
}

// errS3Exited: the versitygw process ended before it answered.
var errS3Exited = errors.New("versitygw exited")

// waitS3 waits up to 20 s for the versitygw at endpoint to answer HTTP;
// done is closed when its process ends, output is what it printed.
func waitS3(endpoint string, done <-chan struct{}, output func() string) error {
	// no keep-alive: an idle connection's goroutines would outlive the test
	// that started the server, and CheckLeaks would count them
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := client.Get("http://" + endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("%w: %s", errS3Exited, output())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("versitygw did not answer on %s within 20s: %s", endpoint, output())
		}
	}
}

// StopSharedS3 stops the server SharedS3 started, if any, and removes its
// directory; after the tests (m.Run).
func StopSharedS3() {
	s := &sharedS3
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	<-s.done
	os.RemoveAll(s.dir)
	s.cmd = nil
}
