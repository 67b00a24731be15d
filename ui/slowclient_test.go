package ui

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/vigil-vms/vigil/recorder/review"
	"golang.org/x/net/netutil"
)

// serveTCP serves h with NewHTTPServer on 127.0.0.1:0, its ReadTimeout
// shortened to readTimeout so that the test need not wait a minute.
func serveTCP(t *testing.T, h http.Handler, readTimeout time.Duration) string {
	t.Helper()
	return serveTCPLimit(t, h, readTimeout, nil)
}

// getBody sends GET url through c as the user of token and reads the whole
// response body.
func getBody(t *testing.T, c *http.Client, url, token string) (*http.Response, []byte) {
	t.Helper()
	r, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Authorization", "Bearer "+token)
	res, err := c.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res, b
}

// serveTCPLimit is serveTCP on a listener wrapped by limit (nil:
// LimitConnections).
func serveTCPLimit(t *testing.T, h http.Handler, readTimeout time.Duration, limit func(net.Listener) net.Listener) string {
	t.Helper()
	if limit == nil {
		limit = LimitConnections
	}
	srv := NewHTTPServer("", h)
	if srv.ReadTimeout <= 0 || srv.ReadTimeout > 2*time.Minute || srv.ReadHeaderTimeout <= 0 || srv.IdleTimeout <= 0 {
		t.Fatalf("NewHTTPServer timeouts: read %s, header %s, idle %s", srv.ReadTimeout, srv.ReadHeaderTimeout, srv.IdleTimeout)
	}
	srv.ReadTimeout = readTimeout
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(limit(ln))
	}()
	t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

// slowBody sends a request whose body trickles in one byte every 100 ms and
// returns how long the server kept the connection open.
func slowBody(t *testing.T, addr, method, path string) time.Duration {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Error(err) // not Fatal: some callers run it in a goroutine
		return 0
	}
	defer conn.Close()
	start := time.Now()
	fmt.Fprintf(conn, "%s %s HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{", method, path)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				if _, err := conn.Write([]byte(" ")); err != nil {
					return
				}
			}
		}
	}()
	conn.SetReadDeadline(time.Now().Add(8 * time.Second))
	io.Copy(io.Discard, conn) // until the server closes
	return time.Since(start)
}

// A slowly sent body cannot hold a connection (issue 12, item 9): not one
// that a handler reads (before, readBody's 60 s deadline replaced the
// server's and was then cleared, so net/http drained the rest without any),
// nor one that no handler reads.
func TestSlowBodyClosed(t *testing.T) {
	f := newFixture(t, Options{})
	addr := serveTCP(t, f.h, time.Second)
	for _, c := range []struct{ method, path string }{
		{"POST", "/api/v1/session"},
		{"POST", "/api/v1/nope"},
		{"GET", "/healthz"},
		{"GET", "/api/v1/cameras/police-1/playback"},
	} {
		if d := slowBody(t, addr, c.method, c.path); d > 3*time.Second {
			t.Errorf("%s %s with a slow body: connection held %s", c.method, c.path, d.Round(time.Millisecond))
		}
	}
}

// slowReview streams its playback for 2 s, longer than the test server's
// ReadTimeout, and notes whether the request's context ended.
type slowReview struct {
	fakeReview
	canceled chan error
}

func (s slowReview) Open(ctx context.Context, camera string, start time.Time, dur time.Duration) (review.Playback, error) {
	return review.Playback{Start: start, WriterTo: slowClip{ctx: ctx, canceled: s.canceled}}, nil
}

// slowClip writes the fake clip 20 times, 100 ms apart, under the context
// given to Open (as review.Playback's WriteTo does).
type slowClip struct {
	ctx      context.Context
	canceled chan error
}

func (c slowClip) WriteTo(w io.Writer) (int64, error) {
	var n int64
	for range 20 {
		select {
		case <-c.ctx.Done():
			c.canceled <- context.Cause(c.ctx)
			return n, c.ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		m, err := w.Write(fakeClip)
		n += int64(m)
		if err != nil {
			c.canceled <- err
			return n, err
		}
	}
	c.canceled <- nil
	return n, nil
}

// The server's ReadTimeout does not cut a playback stream that lasts longer.
func TestStreamOutlivesReadTimeout(t *testing.T) {
	rv := slowReview{canceled: make(chan error, 1)}
	f := newFixtureReview(t, Options{}, rv)
	addr := serveTCP(t, f.h, 500*time.Millisecond)
	res, b := getBody(t, http.DefaultClient, "http://"+addr+"/api/v1/cameras/police-1/playback?start="+
		fixtureT0.Add(time.Minute).Format(time.RFC3339), f.tokens[pAdmin])
	if res.StatusCode != http.StatusOK {
		t.Fatalf("playback: %d %s", res.StatusCode, b)
	}
	if err := <-rv.canceled; err != nil {
		t.Fatalf("the stream was cut: %v", err)
	}
	if n := strings.Count(string(b), string(fakeClip)); n != 20 {
		t.Fatalf("%d of 20 chunks", n)
	}
}

func TestMaxConnections(t *testing.T) {
	for nofile, want := range map[uint64]int{0: 64, 256: 64, 1024: 256, 65536: 16384, 1 << 20: 16384} {
		if got := MaxConnections(nofile); got != want {
			t.Errorf("MaxConnections(%d) = %d, want %d", nofile, got, want)
		}
	}
}

// Slow clients that fill every connection slot are dropped after the
// ReadTimeout, and /healthz answers again.
func TestSlowClientsFillingSlotsRecover(t *testing.T) {
	f := newFixture(t, Options{})
	const slots = 3
	addr := serveTCPLimit(t, f.h, time.Second, func(ln net.Listener) net.Listener { return netutil.LimitListener(ln, slots) })
	held := make(chan time.Duration, slots)
	for range slots {
		go func() { held <- slowBody(t, addr, "POST", "/api/v1/session") }()
	}
	time.Sleep(200 * time.Millisecond) // let the slow clients take the slots
	start := time.Now()
	c := &http.Client{Timeout: 6 * time.Second}
	res, err := c.Get("http://" + addr + "/healthz")
	if err != nil {
		t.Fatalf("healthz with every slot taken by slow clients: %v", err)
	}
	res.Body.Close()
	if d := time.Since(start); res.StatusCode != http.StatusOK || d > 3*time.Second {
		t.Fatalf("healthz: %d after %s", res.StatusCode, d)
	}
	for range slots {
		if d := <-held; d > 3*time.Second {
			t.Errorf("a slow client held its slot %s", d)
		}
	}
}

// A client that does not read its response — here a large file of the web
// app, which needs no login — cannot hold the connection and its goroutine
// past ResponseTimeout.
func TestSlowReaderOfResponseCut(t *testing.T) {
	f := newFixture(t, Options{ResponseTimeout: time.Second})
	f.srv.deps.WebApp = fstest.MapFS{
		"index.html": {Data: []byte("<!doctype html>")},
		"big.js":     {Data: make([]byte, 64<<20)},
	}
	served := make(chan time.Duration, 1)
	h := f.srv.Handler()
	addr := serveTCP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		served <- time.Since(start)
	}), time.Minute)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	fmt.Fprintf(conn, "GET /big.js HTTP/1.1\r\nHost: x\r\n\r\n") // and never read
	select {
	case d := <-served:
		if d > 4*time.Second {
			t.Fatalf("the handler wrote for %s", d)
		}
	case <-time.After(6 * time.Second):
		t.Fatal("a client that does not read still holds the handler after 6 s")
	}
}

// A playback stream has no such deadline, even on a connection whose
// previous response had one.
func TestStreamHasNoResponseDeadline(t *testing.T) {
	rv := slowReview{canceled: make(chan error, 1)}
	f := newFixtureReview(t, Options{ResponseTimeout: 500 * time.Millisecond}, rv)
	addr := serveTCP(t, f.h, time.Minute)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	get := func(path string) (int, []byte) {
		res, b := getBody(t, c, "http://"+addr+path, f.tokens[pAdmin])
		return res.StatusCode, b
	}
	if code, _ := get("/api/v1/session"); code != http.StatusOK {
		t.Fatalf("session: %d", code)
	}
	code, b := get("/api/v1/cameras/police-1/playback?start=" + fixtureT0.Add(time.Minute).Format(time.RFC3339))
	if code != http.StatusOK || strings.Count(string(b), string(fakeClip)) != 20 {
		t.Fatalf("playback: %d, %d bytes", code, len(b))
	}
	if err := <-rv.canceled; err != nil {
		t.Fatalf("the stream was cut: %v", err)
	}
}
