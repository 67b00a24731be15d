// Package s3test starts a real S3 server (versitygw) for tests, on
// 127.0.0.1 with a temporary directory.
//
// The binary is looked up in $VIGIL_VERSITYGW, then on PATH, then in the
// module's .tools directory and /work/tools. When it is missing the test is
// skipped, unless VIGIL_REQUIRE_S3=1 (CI), which makes it fail.
package s3test

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

// Credentials of the server's root user.
const (
	AccessKey = "vigiltest"
	SecretKey = "vigiltestsecret123"
	Bucket    = "vigil-test"
)

// Binary returns the path of versitygw, or "" when it is not installed.
func Binary() string {
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

// Start runs versitygw for the test and returns its endpoint (host:port, plain
// http), the root credentials and a bucket name that does not exist yet (the
// store under test creates it). stop kills the server (the data stay);
// restart starts it again on the same port and directory. Both wait until the
// server is down or answering. The server is killed at the end of the test.
// extraArgs are more versitygw flags, such as "--readonly".
func Start(t testing.TB, extraArgs ...string) (endpoint, accessKey, secretKey, bucket string, stop, restart func()) {
	t.Helper()
	bin := Binary()
	if bin == "" {
		if os.Getenv("VIGIL_REQUIRE_S3") == "1" {
			t.Fatal("versitygw not found (set VIGIL_VERSITYGW or put it on PATH) and VIGIL_REQUIRE_S3=1")
		}
		t.Skip("versitygw not found: set VIGIL_VERSITYGW or put it on PATH to run the S3 tests")
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("s3test: pick a port: %v", err)
	}
	endpoint = ln.Addr().String()
	ln.Close()

	var mu sync.Mutex
	var cmd *exec.Cmd
	var waitDone chan struct{}
	var stderr syncBuffer
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
		c.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+AccessKey, "ROOT_SECRET_KEY="+SecretKey)
		c.Stdout = &stderr
		c.Stderr = &stderr
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
		t.Fatalf("s3test: %v", err)
	}
	t.Cleanup(kill)
	restart = func() {
		if err := launch(); err != nil {
			// restart may be called from the test goroutine only
			t.Errorf("s3test: restart: %v", err)
		}
	}
	return endpoint, AccessKey, SecretKey, Bucket, kill, restart
}

// syncBuffer collects the server's output; written by exec's copier, read by the test.
type syncBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) < 64<<10 {
		b.buf = append(b.buf, p...)
	}
	return len(p), nil
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
