// Package testkit holds the helpers that tests across Vigil share, so that
// each is written once: waiting for a condition (WaitFor) or a goroutine's
// result (Returned), a service run for the length of a test (Run), a logger
// into the test's log (Log), a goroutine-safe buffer (SyncBuffer), an outside
// program or a skip (Tool), fMP4 segments encoded by ffmpeg (FFmpegSegments)
// and ffprobe's JSON (FFprobeJSON), loopback UDP and TCP ports for a server
// (ListenUDPTCP), bytes in a temporary file (TempFile), a goroutine-leak
// check (CheckLeaks) and a real S3 server (StartS3, versitygw).
//
// It sits at the bottom of the house: it imports none of Vigil's packages,
// so that every package's own (internal) tests may use it, camsim's and
// ingest's included. Helpers that need a simulated camera live in
// testkit/simcam, and one that opens a test database in testkit/testdb.
package testkit

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// WaitFor polls cond until it holds, and fails the test when timeout passes
// first, naming what it waited for. It polls every 10 ms at first and less
// often (up to every 100 ms) as the wait grows, so a long wait on a slow
// condition (an HTTP round trip, a database query) does not keep a core busy.
// Call it from the test's goroutine only.
func WaitFor(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	pause := 10 * time.Millisecond
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(pause)
		if pause < 100*time.Millisecond {
			pause += pause / 4
		}
	}
}

// SyncBuffer is a bytes.Buffer safe for a writer goroutine (a logger, a
// child process's output) and the test reading it. With Max > 0 it keeps only
// the first Max bytes; the rest is counted as written and dropped.
type SyncBuffer struct {
	Max int

	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Max > 0 {
		if room := s.Max - s.b.Len(); room < len(p) {
			s.b.Write(p[:max(room, 0)])
			return len(p), nil
		}
	}
	return s.b.Write(p)
}

// String returns what was written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Log returns a debug-level text logger that writes into t's log, so that a
// failing test shows what the code under test said, and a passing one stays
// quiet (without -v).
func Log(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(b)))
	return len(b), nil
}

// Run starts run (a service's Run method) in its own goroutine with a context
// that is cancelled when the test ends, and waits for it to return before the
// test's later-registered cleanups are done. A return other than nil or
// context.Canceled is reported as a test error. The returned stop ends it
// earlier (and waits); calling it more than once is fine.
func Run(t testing.TB, run func(context.Context) error) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return stop
}

// Returned waits up to timeout for done, where a goroutine the test started
// (a service's Run, a command's Wait) sends its result. An error, or no
// result within timeout, fails the test, naming what.
func Returned(t testing.TB, done <-chan error, timeout time.Duration, what string) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	case <-time.After(timeout):
		t.Fatalf("%s did not return within %v", what, timeout)
	}
}

// Tool returns the path of the program name (ffmpeg, chromium) on PATH. When
// it is missing the test is skipped, or fails when the environment variable
// requireEnv (such as VIGIL_REQUIRE_BROWSER; "" for none) is "1", as in CI.
func Tool(t testing.TB, name, requireEnv string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if requireEnv != "" && os.Getenv(requireEnv) == "1" {
		t.Fatalf("%s=1 but %s is not installed: %v", requireEnv, name, err)
	}
	if requireEnv != "" {
		t.Skipf("%s is not installed (apt-get install -y %s); set %s=1 to make this a failure", name, name, requireEnv)
	}
	t.Skipf("%s is not installed (apt-get install -y %s)", name, name)
	return ""
}

// SkipShort skips the test with -short, saying why (it runs in real time,
// say).
func SkipShort(t testing.TB, why string) {
	t.Helper()
	if testing.Short() {
		t.Skip(why)
	}
}

// pgServer are the goroutines of the throw-away PostgreSQL server that
// pgtest starts at the first test asking for a database and keeps for the
// whole test binary: not the test's own.
var pgServer = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/vigil-vms/vigil/internal/testkit/pgtest.(*Server).start.func1"),
	goleak.IgnoreAnyFunction("github.com/vigil-vms/vigil/internal/testkit/pgtest.(*Server).start.func2"),
	// and of the S3 server SharedS3 starts at the first test asking for it
	goleak.IgnoreAnyFunction("github.com/vigil-vms/vigil/internal/testkit.startSharedS3.func1"),
}

// CheckLeaks fails the test when goroutines started during it are still
// running after it and its cleanups end. Call it first in the test, so that
// its check, registered first, runs after every other cleanup.
func CheckLeaks(t testing.TB) {
	t.Helper()
	before := goleak.IgnoreCurrent()
	t.Cleanup(func() { goleak.VerifyNone(t, append([]goleak.Option{before}, pgServer...)...) })
}

// StartPiped starts cmd (another process a test drives, such as this test
// binary re-run as a helper) with its standard error on ours, and returns
// its standard output to read; a failure to start fails the test.
func StartPiped(t testing.TB, cmd *exec.Cmd) io.ReadCloser {
	t.Helper()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return stdout
}

// TempFile writes b to a file called name in a directory of the test's own
// (removed when it ends) and returns its path, for a tool that reads files.
func TempFile(t testing.TB, name string, b []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
