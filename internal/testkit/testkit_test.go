package testkit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeT records a Fatalf instead of ending the test, so WaitFor's failure
// path can be checked.
type fakeT struct {
	testing.TB
	fatal string
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.fatal = format
	panic(f)
}

func TestWaitFor(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, 2*time.Second, "the third call", func() bool { return n.Add(1) >= 3 })
	if n.Load() != 3 {
		t.Fatalf("cond called %d times, want 3", n.Load())
	}

	ft := &fakeT{TB: t}
	func() {
		defer func() {
			if r := recover(); r != ft {
				t.Fatalf("recovered %v, want the fake's Fatalf", r)
			}
		}()
		WaitFor(ft, 30*time.Millisecond, "never", func() bool { return false })
	}()
	if !strings.Contains(ft.fatal, "timed out") {
		t.Fatalf("Fatalf format %q", ft.fatal)
	}
}

func TestSyncBufferMax(t *testing.T) {
	b := &SyncBuffer{Max: 5}
	for _, s := range []string{"abc", "defg", "h"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", s, n, err)
		}
	}
	if got := b.String(); got != "abcde" {
		t.Fatalf("String() = %q, want %q", got, "abcde")
	}
	var u SyncBuffer
	u.Write([]byte("no "))
	u.Write([]byte("limit"))
	if got := u.String(); got != "no limit" {
		t.Fatalf("String() = %q", got)
	}
}

func TestRunStopsAtStop(t *testing.T) {
	var ended atomic.Bool
	stop := Run(t, func(ctx context.Context) error {
		<-ctx.Done()
		ended.Store(true)
		return ctx.Err()
	})
	stop()
	if !ended.Load() {
		t.Fatal("stop returned before run did")
	}
	stop() // a second call is fine
}

func TestRunReportsError(t *testing.T) {
	ft := &errT{TB: t}
	stop := Run(ft, func(ctx context.Context) error { return errors.New("boom") })
	stop()
	if !strings.Contains(ft.errs, "boom") {
		t.Fatalf("error not reported: %q", ft.errs)
	}
}

type errT struct {
	testing.TB
	errs string
}

func (e *errT) Helper()        {}
func (e *errT) Cleanup(func()) {}
func (e *errT) Errorf(format string, args ...any) {
	e.errs += fmt.Sprintf(format, args...)
}

// TestStartS3 starts versitygw, sees it answer, stops and restarts it.
func TestStartS3(t *testing.T) {
	endpoint, _, _, bucket, stop, restart := StartS3(t)
	get := func() error {
		resp, err := http.Get("http://" + endpoint + "/")
		if err == nil {
			resp.Body.Close()
		}
		return err
	}
	if err := get(); err != nil || bucket == "" {
		t.Fatalf("server not answering: %v (bucket %q)", err, bucket)
	}
	stop()
	if err := get(); err == nil {
		t.Fatal("server still answering after stop")
	}
	restart()
	if err := get(); err != nil {
		t.Fatalf("server not answering after restart: %v", err)
	}
}

func TestReturned(t *testing.T) {
	done := make(chan error, 1)
	done <- nil
	Returned(t, done, time.Second, "nil result")

	for _, tc := range []struct {
		name   string
		result error
		want   string
	}{
		{"error", errors.New("boom"), "late: boom"},
		{"timeout", nil, "late did not return within 20ms"},
	} {
		ch := make(chan error, 1)
		if tc.result != nil {
			ch <- tc.result
		}
		ft := &fatalT{TB: t}
		func() {
			defer func() { recover() }()
			Returned(ft, ch, 20*time.Millisecond, "late")
		}()
		if ft.msg != tc.want {
			t.Errorf("%s: Fatalf %q, want %q", tc.name, ft.msg, tc.want)
		}
	}
}

type fatalT struct {
	testing.TB
	msg string
}

func (f *fatalT) Helper() {}
func (f *fatalT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}
