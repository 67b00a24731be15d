//go:build linux

package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/review"
)

// bigReview stores a 10 s segment of camera flood-1 from fixtureT0 whose
// frames carry payload bytes each (250 frames), and returns a review over it.
func bigReview(t *testing.T, payload int) *review.Review {
	t.Helper()
	local, ix := storedSegment(t, "flood-1", recordedSegment(t, payload))
	rv := review.NewReview(local, ix, nil)
	rv.TempDir = t.TempDir()
	return rv
}

const exportPath = "/api/v1/cameras/flood-1/export?start=2026-11-26T08:00:00Z&end=2026-11-26T08:00:10Z"

// slowDownload starts an export download that reads one byte a second
// through a 4 KiB receive buffer, until the test ends.
func slowDownload(t *testing.T, addr, token string) {
	t.Helper()
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		close(done)
		conn.Close()
	})
	if _, err := io.WriteString(conn, "GET "+exportPath+" HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "+token+"\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReaderSize(conn, 16)
	line, err := br.ReadString('\n')
	if err != nil || !strings.Contains(line, " 200 ") {
		t.Fatalf("slow download: %q %v", line, err)
	}
	go func() {
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				if _, err := br.ReadByte(); err != nil {
					return
				}
			}
		}
	}()
}

// Two slow downloads (one byte a second) of exports do not block a third
// user's export; a user past the per-user cap is answered 429 with a JSON
// error.
func TestSlowExportDownloadsDoNotBlockOthers(t *testing.T) {
	rv := bigReview(t, 32000) // a clip of 8 MB, more than the socket buffers hold
	f := newFixtureReview(t, Options{}, rv)
	addr := serveTCP(t, f.h, 10*time.Second)
	slowDownload(t, addr, f.tokens[pAdmin])
	slowDownload(t, addr, f.tokens[pResponder])

	get := func(who string) (*http.Response, []byte) {
		t.Helper()
		return getBody(t, &http.Client{Timeout: 10 * time.Second}, "http://"+addr+exportPath, f.tokens[who])
	}
	res, b := get(pScoped)
	if res.StatusCode != http.StatusOK || len(b) < 7<<20 {
		t.Fatalf("a third user's export while two slow downloads run: %d, %d bytes %.200s", res.StatusCode, len(b), b)
	}

	// the admin's second download, then a third one: past the per-user cap
	slowDownload(t, addr, f.tokens[pAdmin])
	res, b = get(pAdmin)
	var body struct{ Error string }
	if err := json.Unmarshal(b, &body); err != nil || res.StatusCode != http.StatusTooManyRequests ||
		!strings.Contains(body.Error, "exports being prepared or downloaded") {
		t.Fatalf("a user's third export: %d %s", res.StatusCode, b)
	}
	if res, _ := get(pScopedAdmin); res.StatusCode != http.StatusOK {
		t.Fatalf("another user meanwhile: %d", res.StatusCode)
	}
}

// failingStore fails every read as an unreachable S3 server does.
type failingStore struct{ archive.Store }

func (failingStore) Get(context.Context, string, int64, int64) (io.ReadCloser, error) {
	return nil, &archive.S3Error{Op: "get x", Reason: "S3 server 10.0.0.9:9000 is unreachable", Err: errors.New("dial tcp: connection refused")}
}

// Playback and export of indexed video while the store is unreachable
// answer 503 with the reason, not 500.
func TestReviewStoreDown(t *testing.T) {
	_, ix, st := realReview(t)
	f := newFixtureReview(t, Options{}, review.NewReview(failingStore{st}, ix, nil))
	for _, path := range []string{
		"/api/v1/cameras/police-1/playback?start=2026-11-26T08:00:02Z&duration=5",
		"/api/v1/cameras/police-1/export?start=2026-11-26T08:00:00Z&end=2026-11-26T08:00:05Z",
	} {
		rec := f.do(req{method: "GET", path: path, who: pAdmin})
		if rec.Code != http.StatusServiceUnavailable ||
			!strings.Contains(rec.Body.String(), `"error":"the object store cannot be reached: S3 server 10.0.0.9:9000 is unreachable"`) {
			t.Errorf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
}
