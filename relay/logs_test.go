package relay

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// Viewers that come and go write at most one line each at info level or
// above (the connect); their leaving, and pion's complaints about a peer
// that went away, are debug (issue 13 item 8: 471 of 807 lines were pion
// warnings about viewers leaving).
func TestViewersLeavingAreQuiet(t *testing.T) {
	buf := &testkit.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := startEnv(t, Options{Log: log}, nil)
	e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
	const sessions = 4
	for i := range sessions {
		c := e.watch(t, "H264", "/whep/cam1", 3)
		if i%2 == 0 {
			c.delete(t) // the page says goodbye (WHEP DELETE), then closes
		}
		c.close() // or the tab just closes: DTLS close_notify
		testkit.WaitFor(t, 20*time.Second, "the session to end", func() bool { return e.relay.Sessions() == 0 })
	}
	// pion's teardown runs on after the session is gone: give it a moment
	time.Sleep(500 * time.Millisecond)
	var loud []string
	ended := 0
	for _, line := range strings.Split(buf.String(), "\n") {
		if strings.Contains(line, "session=") && strings.Contains(line, "viewer session ended") {
			ended++
		}
		if strings.Contains(line, "level=INFO") || strings.Contains(line, "level=WARN") || strings.Contains(line, "level=ERROR") {
			if strings.Contains(line, "webrtc relay listening") {
				continue
			}
			loud = append(loud, line)
		}
	}
	if len(loud) > sessions {
		t.Errorf("%d lines at info or above for %d viewers, want at most one each:\n%s", len(loud), sessions, strings.Join(loud, "\n"))
	}
	if ended != sessions {
		t.Errorf("%d lines say a viewer left, want one for each of %d:\n%s", ended, sessions, buf.String())
	}
}

// fakeTimer is a timer of the rate limiter that the test fires.
type fakeTimer struct {
	f       func()
	stopped bool
}

func (t *fakeTimer) Stop() bool { t.stopped = true; return true }

func TestRateLimitedLog(t *testing.T) {
	buf := &testkit.SyncBuffer{}
	out := slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelInfo,
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}}))
	r := newRateLimitedLog(out, time.Minute)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	var timers []*fakeTimer
	var waits []time.Duration
	r.after = func(d time.Duration, f func()) stopper {
		ft := &fakeTimer{f: f}
		timers = append(timers, ft)
		waits = append(waits, d)
		return ft
	}
	lines := func() []string {
		s := strings.TrimSpace(buf.String())
		if s == "" {
			return nil
		}
		return strings.Split(s, "\n")
	}
	// five of one kind in 10 s, one of another, one below the level
	for i := range 5 {
		r.log(slog.LevelWarn, "a", fmt.Sprintf("read failed (%d)", i), "pion", "ice")
		now = now.Add(2 * time.Second)
	}
	r.log(slog.LevelError, "b", "other", "pion", "pc")
	r.log(slog.LevelDebug, "c", "quiet")
	if got := lines(); len(got) != 2 || got[0] != `level=WARN msg="read failed (0)" pion=ice` || got[1] != `level=ERROR msg=other pion=pc` {
		t.Fatalf("lines %q", got)
	}
	// the window of "a" ends a minute after its first line: one timer, then one sum
	if len(timers) != 1 || waits[0] != 58*time.Second {
		t.Fatalf("%d timers, waits %v; want one of 58 s", len(timers), waits)
	}
	now = now.Add(50 * time.Second)
	timers[0].f()
	if got := lines(); len(got) != 3 || got[2] != `level=WARN msg="4 more like this in the last minute" like="read failed (0)" pion=ice` {
		t.Fatalf("after the minute: %q", lines())
	}
	// a new window: the next one is written again
	r.log(slog.LevelWarn, "a", "read failed (5)", "pion", "ice")
	r.log(slog.LevelWarn, "a", "read failed (6)", "pion", "ice")
	if got := lines(); len(got) != 4 || !strings.Contains(got[3], "read failed (5)") || len(timers) != 2 {
		t.Fatalf("a new minute: %q, %d timers", got, len(timers))
	}
	// closing writes what is held back and stops the timer; a late timer writes nothing twice
	r.close()
	if got := lines(); len(got) != 5 || got[4] != `level=WARN msg="1 more like this in the last minute" like="read failed (5)" pion=ice` || !timers[1].stopped {
		t.Fatalf("close: %q", got)
	}
	timers[1].f()
	if got := lines(); len(got) != 5 {
		t.Fatalf("a timer after close wrote again: %q", got)
	}
}

// pion's teardown warnings are debug; another warning stays a warning.
func TestPionRoutineWarnings(t *testing.T) {
	for _, tc := range []struct {
		format string
		args   []any
		want   bool
	}{
		{"Failed to accept RTP %v", []any{errors.New("stream is already closed")}, true},
		{"Failed to read from candidate %s: %v", []any{"udp4 host 127.0.0.1:1", fmt.Errorf("read: %w", io.ErrClosedPipe)}, true},
		{"Failed to ping without candidate pairs. Connection is not possible yet.", nil, true},
		{"Remote mDNS candidate added, but mDNS is disabled: (%s)", []any{"488ba5b3-d072-455a-9b45-523e1ba8d080.local"}, true},
		{"Incoming unhandled RTCP ssrc(%d), OnTrack will not be fired", []any{3380849715}, true},
		{"Warning: mux: no endpoint for packet starting with %d, adding to queue size(%d)", []any{21, 0}, true},
		{"Discarding remote candidate: %s", []any{errors.New("bad candidate")}, false},
		{"Failed to start SRTP: %s", []any{errors.New("no such profile")}, false},
	} {
		if got := routine(fmt.Sprintf(tc.format, tc.args...), tc.args); got != tc.want {
			t.Errorf("%q: routine %v, want %v", tc.format, got, tc.want)
		}
	}
}
