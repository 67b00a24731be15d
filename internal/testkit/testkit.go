// Package testkit holds the helpers that tests across Vigil share: waiting
// for a condition, a goroutine-safe buffer, a logger into the test's log, a
// service run for the length of a test, and a real S3 server (versitygw).
//
// It sits at the bottom of the house: it imports none of Vigil's packages,
// so that every package's own (internal) tests may use it, camsim's and
// ingest's included. Helpers that need a simulated camera live in
// testkit/simcam.
package testkit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
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
