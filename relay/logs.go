package relay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/pion/logging"
)

// pionLogs routes pion's log lines to slog: its errors and warnings as such,
// its info as debug, its debug and trace not at all. The warnings pion writes
// while a viewer's connection is set up or torn down in the normal way (a
// read from a closed pipe, a stream already closed, a ping before the
// viewer's candidates are known) are debug too: a viewer leaving is one debug
// line of our own, not five warnings. The other warnings and errors are
// rate-limited per kind (pion's format string): the first of a minute is
// written, the rest are counted and summed up once the minute ends.
type pionLogs struct {
	log   *slog.Logger
	limit *rateLimitedLog
}

func newPionLogs(log *slog.Logger) *pionLogs {
	return &pionLogs{log: log, limit: newRateLimitedLog(log, time.Minute)}
}

func (f *pionLogs) NewLogger(scope string) logging.LeveledLogger {
	return &pionLogger{log: f.log.With("pion", scope), scope: scope, limit: f.limit}
}

type pionLogger struct {
	log   *slog.Logger
	scope string
	limit *rateLimitedLog
}

func (l *pionLogger) emit(level slog.Level, msg string) {
	if l.log.Enabled(context.Background(), level) {
		l.log.Log(context.Background(), level, msg)
	}
}

// complain writes a warning or an error of pion: as debug when it is part of
// a connection's normal life, else limited in rate by kind.
func (l *pionLogger) complain(level slog.Level, kind, msg string, args []any) {
	if routine(msg, args) {
		l.emit(slog.LevelDebug, msg)
		return
	}
	l.limit.log(level, l.scope+"\x00"+kind, msg, "pion", l.scope)
}

func (l *pionLogger) Trace(string)          {}
func (l *pionLogger) Tracef(string, ...any) {}
func (l *pionLogger) Debug(string)          {}
func (l *pionLogger) Debugf(string, ...any) {}
func (l *pionLogger) Info(msg string)       { l.emit(slog.LevelDebug, msg) }
func (l *pionLogger) Infof(format string, args ...any) {
	l.emit(slog.LevelDebug, fmt.Sprintf(format, args...))
}
func (l *pionLogger) Warn(msg string) { l.complain(slog.LevelWarn, msg, msg, nil) }
func (l *pionLogger) Warnf(format string, args ...any) {
	l.complain(slog.LevelWarn, format, fmt.Sprintf(format, args...), args)
}
func (l *pionLogger) Error(msg string) { l.complain(slog.LevelError, msg, msg, nil) }
func (l *pionLogger) Errorf(format string, args ...any) {
	l.complain(slog.LevelError, format, fmt.Sprintf(format, args...), args)
}

// routineText are parts of pion's warnings while a viewer connects or after
// it went away, as seen in the demo, the browser tests (a Chromium viewer) and
// TestViewersLeavingAreQuiet.
var routineText = []string{
	"closed pipe",                // ice: read from a candidate whose connection was closed
	"already closed",             // pc: accept RTP/RTCP on a stream that was closed
	"use of closed network",      // a socket closed under a reader
	"Connection is not possible", // ice: ping before any candidate pair: the viewer's candidates are still coming
	"DTLS CloseNotify",           // the viewer closed the connection
	"mDNS is disabled",           // ice: a browser hides its host candidates behind mDNS names; the others serve
	"Incoming unhandled RTCP",    // pc: reports about the browser's own (unused) sending side
	"no endpoint for packet",     // mux: the viewer's DTLS came before the relay's was set up (it is queued)
}

// routine says whether a warning of pion is part of a connection's normal
// setup or teardown.
func routine(msg string, args []any) bool {
	for _, a := range args {
		if err, ok := a.(error); ok && (errors.Is(err, io.ErrClosedPipe) || errors.Is(err, net.ErrClosed) ||
			errors.Is(err, io.EOF) || errors.Is(err, context.Canceled)) {
			return true
		}
	}
	for _, s := range routineText {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// rateLimitedLog writes the first line of each kind in a window and counts
// the others; when the window ends, one line says how many more there were
// ("N more like this in the last minute"). A window ends by a timer, so the
// sum is written even when no line of the kind follows.
type rateLimitedLog struct {
	out    *slog.Logger
	window time.Duration
	now    func() time.Time
	// after runs f after d (time.AfterFunc; a test may run it at will).
	after func(d time.Duration, f func()) stopper

	mu     sync.Mutex
	kinds  map[string]*rateWindow
	closed bool
}

type stopper interface{ Stop() bool }

// rateWindow is one kind's current window.
type rateWindow struct {
	start  time.Time
	level  slog.Level
	msg    string
	attrs  []any
	more   int
	ending stopper // set when the first line is held back
}

// maxIdleKinds bounds the memory for kinds that came once and not again.
const maxIdleKinds = 256

func newRateLimitedLog(out *slog.Logger, window time.Duration) *rateLimitedLog {
	return &rateLimitedLog{out: out, window: window, now: time.Now, kinds: map[string]*rateWindow{},
		after: func(d time.Duration, f func()) stopper { return time.AfterFunc(d, f) }}
}

// log writes msg at level with attrs, or counts it when a line of the same
// kind was written less than a window ago.
func (r *rateLimitedLog) log(level slog.Level, kind, msg string, attrs ...any) {
	if !r.out.Enabled(context.Background(), level) {
		return
	}
	now := r.now()
	r.mu.Lock()
	w := r.kinds[kind]
	if w != nil && now.Sub(w.start) < r.window && !r.closed {
		w.more++
		if w.ending == nil {
			w.ending = r.after(w.start.Add(r.window).Sub(now), func() { r.end(kind, w) })
		}
		r.mu.Unlock()
		return
	}
	if len(r.kinds) >= maxIdleKinds {
		for k, old := range r.kinds {
			if old.ending == nil && now.Sub(old.start) >= r.window {
				delete(r.kinds, k)
			}
		}
	}
	if !r.closed {
		r.kinds[kind] = &rateWindow{start: now, level: level, msg: msg, attrs: attrs}
	}
	r.mu.Unlock()
	r.out.Log(context.Background(), level, msg, attrs...)
}

// end closes kind's window w and writes how many lines it held back.
func (r *rateLimitedLog) end(kind string, w *rateWindow) {
	r.mu.Lock()
	if r.kinds[kind] != w {
		r.mu.Unlock()
		return // already ended (close)
	}
	delete(r.kinds, kind)
	more := w.more
	r.mu.Unlock()
	r.sum(w, more)
}

func (r *rateLimitedLog) sum(w *rateWindow, more int) {
	if more == 0 {
		return
	}
	r.out.Log(context.Background(), w.level, fmt.Sprintf("%d more like this in the last %s", more, r.windowText()),
		append([]any{"like", w.msg}, w.attrs...)...)
}

func (r *rateLimitedLog) windowText() string {
	if r.window == time.Minute {
		return "minute"
	}
	return r.window.String()
}

// close writes the sums held back and lets every later line through.
func (r *rateLimitedLog) close() {
	r.mu.Lock()
	r.closed = true
	var held []*rateWindow
	for k, w := range r.kinds {
		delete(r.kinds, k)
		if w.ending != nil {
			w.ending.Stop()
			held = append(held, w)
		}
	}
	r.mu.Unlock()
	for _, w := range held {
		r.sum(w, w.more)
	}
}
