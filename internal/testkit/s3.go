package testkit

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
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
	bin := VersitygwBinary()
	if bin == "" {
		if os.Getenv("VIGIL_REQUIRE_S3") == "1" {
			t.Fatal("versitygw not found (set VIGIL_VERSITYGW or put it on PATH) and VIGIL_REQUIRE_S3=1")
		}
		t.Skip("versitygw not found: set VIGIL_VERSITYGW or put it on PATH to run the S3 tests")
	}
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
		client := &http.Client{Timeout: time.Second}
		deadline := time.Now().Add(20 * time.Second)
		for {
			resp, err := client.Get("http://" + endpoint + "/")
			if err == nil {
				resp.Body.Close()
				return nil
			}
			select {
			case <-done:
				cmd = nil
				return fmt.Errorf("versitygw exited: %s", stderr.String())
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("versitygw did not answer on %s within 20s: %s", endpoint, stderr.String())
			}
		}
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
