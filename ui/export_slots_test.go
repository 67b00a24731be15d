//go:build linux

package ui

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4/seekablebuffer"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/mp4"

	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/review"
)

// bigReview stores a 10 s segment of camera flood-1 from fixtureT0 whose
// frames carry payload bytes each (250 frames), and returns a review over it.
func bigReview(t *testing.T, payload int) *review.Review {
	t.Helper()
	var buf seekablebuffer.Buffer
	init := fmp4.Init{Tracks: []*fmp4.InitTrack{{ID: 1, TimeScale: 90000,
		Codec: &mp4.CodecH264{SPS: testSPS, PPS: []byte{0x08}}}}}
	if err := init.Marshal(&buf); err != nil {
		t.Fatal(err)
	}
	const fps, gop, frames = 25, 50, 250
	for f, seq := 0, uint32(1); f < frames; f, seq = f+fps, seq+1 {
		part := fmp4.Part{SequenceNumber: seq, Tracks: []*fmp4.PartTrack{{ID: 1, BaseTime: uint64(f) * 90000 / fps}}}
		for i := f; i < f+fps; i++ {
			p := make([]byte, payload)
			binary.BigEndian.PutUint32(p, uint32(len(p)-4))
			p[4] = 0x01
			if i%gop == 0 {
				p[4] = 0x65
			}
			part.Tracks[0].Samples = append(part.Tracks[0].Samples, &fmp4.Sample{
				Duration: 90000 / fps, IsNonSyncSample: i%gop != 0, Payload: p})
		}
		if err := part.Marshal(&buf); err != nil {
			t.Fatal(err)
		}
	}
	b := buf.Bytes()
	dir := t.TempDir()
	local, err := archive.NewLocalStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := local.Put(ctx, archive.SegmentKey("flood-1", fixtureT0), bytes.NewReader(b), int64(len(b)), nil); err != nil {
		t.Fatal(err)
	}
	ix, err := archive.OpenIndex(ctx, testdb.Open(t, filepath.Join(dir, "index.db")))
	if err != nil {
		t.Fatal(err)
	}
	if n, err := archive.Reindex(ctx, local, ix); err != nil || n != 1 {
		t.Fatalf("reindex: %d segments, %v", n, err)
	}
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
		r, err := http.NewRequest("GET", "http://"+addr+exportPath, nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+f.tokens[who])
		c := &http.Client{Timeout: 10 * time.Second}
		res, err := c.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err != nil {
			t.Fatal(err)
		}
		return res, b
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
