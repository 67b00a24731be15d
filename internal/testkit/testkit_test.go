package testkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// fakeT records what a helper reports instead of ending the test. Fatalf and
// Skipf panic with the fake (where the real ones end the goroutine); catch
// recovers that. Cleanups are kept for runCleanups.
type fakeT struct {
	testing.TB
	msg      string // the last Fatalf or Skipf
	errs     string // every Errorf and Error
	cleanups []func()
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}
func (f *fakeT) Skipf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	panic(f)
}
func (f *fakeT) Errorf(format string, args ...any) { f.errs += fmt.Sprintf(format, args...) }
func (f *fakeT) Error(args ...any)                 { f.errs += fmt.Sprint(args...) }
func (f *fakeT) Cleanup(fn func())                 { f.cleanups = append(f.cleanups, fn) }

func (f *fakeT) runCleanups() {
	for i := len(f.cleanups) - 1; i >= 0; i-- {
		f.cleanups[i]()
	}
}

// catch runs fn and recovers the fake's Fatalf or Skipf.
func (f *fakeT) catch(fn func()) {
	defer func() {
		if r := recover(); r != nil && r != f {
			panic(r)
		}
	}()
	fn()
}

func TestWaitFor(t *testing.T) {
	var n atomic.Int32
	WaitFor(t, 2*time.Second, "the third call", func() bool { return n.Add(1) >= 3 })
	if n.Load() != 3 {
		t.Fatalf("cond called %d times, want 3", n.Load())
	}

	ft := &fakeT{TB: t}
	ft.catch(func() { WaitFor(ft, 30*time.Millisecond, "never", func() bool { return false }) })
	if ft.msg != "timed out after 30ms waiting for never" {
		t.Fatalf("Fatalf %q", ft.msg)
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
	ft := &fakeT{TB: t}
	stop := Run(ft, func(ctx context.Context) error { return errors.New("boom") })
	stop()
	if !strings.Contains(ft.errs, "boom") {
		t.Fatalf("error not reported: %q", ft.errs)
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
		ft := &fakeT{TB: t}
		ft.catch(func() { Returned(ft, ch, 20*time.Millisecond, "late") })
		if ft.msg != tc.want {
			t.Errorf("%s: Fatalf %q, want %q", tc.name, ft.msg, tc.want)
		}
	}
}

func TestTool(t *testing.T) {
	if p := Tool(t, "go", ""); !strings.HasSuffix(p, "go") {
		t.Fatalf("Tool(go) = %q", p)
	}
	const missing = "vigil-no-such-tool"
	t.Setenv("VIGIL_TEST_REQUIRE", "1")
	for _, tc := range []struct{ env, want string }{
		{"VIGIL_TEST_REQUIRE", "VIGIL_TEST_REQUIRE=1 but " + missing + " is not installed"}, // Fatalf
		{"", missing + " is not installed"},                                                 // Skipf
	} {
		ft := &fakeT{TB: t}
		ft.catch(func() { Tool(ft, missing, tc.env) })
		if !strings.HasPrefix(ft.msg, tc.want) {
			t.Errorf("env %q: %q, want it to begin %q", tc.env, ft.msg, tc.want)
		}
	}
}

func TestCheckLeaks(t *testing.T) {
	stop := make(chan struct{})
	ft := &fakeT{TB: t}
	CheckLeaks(ft)
	go func() { <-stop }() // still running when the check runs
	ft.runCleanups()
	close(stop)
	if !strings.Contains(ft.errs, "found unexpected goroutines") {
		t.Errorf("a leaked goroutine was not reported: %q", ft.errs)
	}
	CheckLeaks(t) // and a test without leaks passes
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

// Four seconds with a keyframe every second, cut every 2 s, are two
// segments, each an fMP4 file of its own (ftyp, moov, then fragments).
func TestFFmpegSegments(t *testing.T) {
	segs := FFmpegSegments(t, 2, "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-t", "4",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-sc_threshold", "0")
	if len(segs) != 2 {
		t.Fatalf("%d segments, want 2", len(segs))
	}
	for i, s := range segs {
		if len(s) < 8 || string(s[4:8]) != "ftyp" || !bytes.Contains(s, []byte("moof")) {
			t.Errorf("segment %d is not fragmented MP4: % x", i, s[:min(16, len(s))])
		}
	}
}

// FFprobeJSON reads what ffprobe says of a segment FFmpegSegments made.
func TestFFprobeJSON(t *testing.T) {
	segs := FFmpegSegments(t, 2, "-f", "lavfi", "-i", "testsrc2=size=160x90:rate=25", "-t", "2",
		"-c:v", "libx264", "-preset", "veryfast", "-g", "25")
	file := TempFile(t, "seg.mp4", segs[0])
	var probe struct {
		Streams []struct {
			CodecName string `json:"codec_name"`
			Width     int
			Height    int
		}
	}
	FFprobeJSON(t, &probe, "-show_entries", "stream=codec_name,width,height", file)
	if len(probe.Streams) != 1 || probe.Streams[0].CodecName != "h264" || probe.Streams[0].Width != 160 || probe.Streams[0].Height != 90 {
		t.Fatalf("ffprobe: %+v", probe)
	}
}

// ListenUDPTCP's socket and listener answer on loopback, and are closed
// when the test ends.
func TestListenUDPTCP(t *testing.T) {
	var pc net.PacketConn
	var ln net.Listener
	t.Run("open", func(t *testing.T) {
		pc, ln = ListenUDPTCP(t)
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		if a := pc.LocalAddr().(*net.UDPAddr); !a.IP.IsLoopback() || a.Port == 0 {
			t.Fatalf("UDP on %v", a)
		}
	})
	if _, err := ln.Accept(); err == nil {
		t.Error("the listener is open after the test")
	}
	if _, err := pc.WriteTo([]byte("x"), pc.LocalAddr()); err == nil {
		t.Error("the UDP socket is open after the test")
	}
}
