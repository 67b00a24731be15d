package ui

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/dispatch"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/review"
	"github.com/vigil-vms/vigil/registry"
)

// streamReview plays an endless clip: 32 KiB chunks until the client stops
// reading, or, with failAfter, a store error after that many chunks.
type streamReview struct {
	fakeReview
	failAfter int
}

type chunkWriter struct {
	ctx       context.Context
	failAfter int
}

func (c chunkWriter) WriteTo(w io.Writer) (int64, error) {
	chunk := bytes.Repeat([]byte{0x42}, 32<<10)
	var n int64
	for i := 0; ; i++ {
		if c.failAfter > 0 && i == c.failAfter {
			return n, errors.New("store: read segment: connection reset by the object store")
		}
		if err := c.ctx.Err(); err != nil {
			return n, err
		}
		m, err := w.Write(chunk)
		n += int64(m)
		if err != nil {
			return n, err
		}
	}
}

func (s streamReview) Open(ctx context.Context, camera string, start time.Time, dur time.Duration) (review.Playback, error) {
	if err := s.inRange(start); err != nil {
		return review.Playback{}, err
	}
	return review.Playback{Start: start, WriterTo: chunkWriter{ctx: ctx, failAfter: s.failAfter}}, nil
}

// lastAudit is the newest audit row of an action, once there is one.
func (f *fixture) lastAudit(action string) registry.AuditEntry {
	f.t.Helper()
	var e registry.AuditEntry
	testkit.WaitFor(f.t, 5*time.Second, "an audit row of "+action, func() bool {
		es, err := f.reg.AuditEntries(context.Background(), registry.AuditFilter{Action: action, Limit: 1})
		if err != nil || len(es) == 0 {
			return false
		}
		e = es[0]
		return true
	})
	return e
}

// A playback the client ends (a seek, leaving the page) is "ended", not
// "failed"; one the server cannot finish stays "failed".
func TestPlaybackAuditEndedOrFailed(t *testing.T) {
	for _, tc := range []struct {
		name       string
		failAfter  int
		result     string
		detailPart string
	}{
		{name: "client aborts", result: "ended", detailPart: "ended by the client after"},
		{name: "store fails", failAfter: 3, result: "failed", detailPart: "connection reset by the object store"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureReview(t, Options{}, streamReview{failAfter: tc.failAfter})
			ts := httptest.NewServer(f.h)
			defer ts.Close()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			hr, _ := http.NewRequestWithContext(ctx, "GET", ts.URL+"/api/v1/cameras/police-1/playback?start="+fixtureT0.Add(time.Minute).Format(time.RFC3339), nil)
			hr.Header.Set("Authorization", "Bearer "+f.tokens[pOperator])
			res, err := http.DefaultClient.Do(hr)
			if err != nil {
				t.Fatal(err)
			}
			if res.StatusCode != http.StatusOK {
				t.Fatalf("playback: %d", res.StatusCode)
			}
			if _, err := io.ReadFull(res.Body, make([]byte, 64<<10)); err != nil {
				t.Fatal(err)
			}
			if tc.failAfter == 0 {
				cancel() // the client goes away mid-stream
			} else {
				io.Copy(io.Discard, res.Body)
			}
			res.Body.Close()
			e := f.lastAudit("playback")
			if e.Result != tc.result || !strings.Contains(e.Detail, tc.detailPart) {
				t.Errorf("audit row: result %q detail %q, want %q with %q", e.Result, e.Detail, tc.result, tc.detailPart)
			}
		})
	}
}

// The audit log as CSV: filtered like the JSON, admin only, an admin
// limited to departments sees only their cameras' rows, and a cell a user
// could choose cannot become a spreadsheet formula.
func TestAuditCSV(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	for _, e := range []registry.AuditEntry{
		{User: "operator", Action: "export", Camera: "police-1", Result: "ok", Detail: "sha256 ab12 bytes 10",
			Start: fixtureT0, End: fixtureT0.Add(time.Minute)},
		{User: "operator", Action: "export", Camera: "flood-1", Result: "ok", Detail: "sha256 cd34 bytes 20"},
		{User: "=HYPERLINK(\"x\")", Action: "login", Result: "denied"},
	} {
		if err := f.reg.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	read := func(who, query string) (int, [][]string, http.Header) {
		rec := f.do(req{method: "GET", path: "/api/v1/audit?format=csv" + query, who: who})
		if rec.Code != http.StatusOK {
			return rec.Code, nil, rec.Header()
		}
		rows, err := csv.NewReader(rec.Body).ReadAll()
		if err != nil {
			t.Fatalf("%s: not CSV: %v", who, err)
		}
		return rec.Code, rows, rec.Header()
	}
	code, rows, h := read(pAdmin, "&action=export")
	if code != http.StatusOK || !strings.HasPrefix(h.Get("Content-Type"), "text/csv") {
		t.Fatalf("admin: %d %q", code, h.Get("Content-Type"))
	}
	want := []string{"time", "user", "address", "action", "camera", "start", "end", "result", "detail"}
	if len(rows) != 3 || strings.Join(rows[0], ",") != strings.Join(want, ",") {
		t.Fatalf("admin export rows: %q", rows)
	}
	got := map[string][]string{}
	for _, r := range rows[1:] {
		got[r[4]] = r
	}
	if r := got["police-1"]; r == nil || r[3] != "export" || r[8] != "sha256 ab12 bytes 10" || r[5] != fixtureT0.Format(time.RFC3339Nano) {
		t.Errorf("police-1 row: %q", r)
	}
	if _, rows, _ := read(pAdmin, "&action=login"); len(rows) != 2 || !strings.HasPrefix(rows[1][1], "'=") {
		t.Errorf("a formula-like user name is not defused: %q", rows)
	}
	if _, rows, _ := read(pScopedAdmin, "&action=export"); len(rows) != 2 || rows[1][4] != "flood-1" {
		t.Errorf("scoped admin sees %q, want only flood-1", rows)
	}
	if code, _, _ := read(pOperator, ""); code != http.StatusForbidden {
		t.Errorf("operator: %d, want 403", code)
	}
	if rec := f.do(req{method: "GET", path: "/api/v1/audit?format=xml", who: pAdmin}); rec.Code != http.StatusBadRequest {
		t.Errorf("format=xml: %d, want 400", rec.Code)
	}
}

// A wall that re-offers its tiles (a layout change) writes one live view
// row per camera and login, not one per offer; another login, or another
// stream, is another row; a refused offer is always written.
func TestLiveViewAuditOncePerView(t *testing.T) {
	f := newFixture(t, Options{})
	offer := func(who, cam, stream string) int {
		rec := f.do(req{method: "POST", path: "/api/v1/cameras/" + cam + "/whep?stream=" + stream, who: who,
			ctype: "application/sdp", body: "v=0\r\n"})
		if rec.Code == http.StatusCreated {
			f.do(req{method: "DELETE", path: rec.Header().Get("Location"), who: who})
		}
		return rec.Code
	}
	for range 5 {
		if code := offer(pOperator, "police-1", "sub"); code != http.StatusCreated {
			t.Fatalf("offer: %d", code)
		}
	}
	if n := f.auditRows("live"); n != 1 {
		t.Errorf("5 offers of the same view wrote %d live rows, want 1", n)
	}
	offer(pOperator, "police-1", "main")
	offer(pViewer, "police-1", "sub")
	if n := f.auditRows("live"); n != 3 {
		t.Errorf("main stream and another login: %d live rows, want 3", n)
	}
	offer(pScoped, "police-1", "sub") // outside the department: 404, written
	offer(pScoped, "police-1", "sub")
	if n := f.auditRows("live"); n != 5 {
		t.Errorf("refused offers: %d live rows, want 5", n)
	}
}

// subFailing is the camera owner with a camera whose sub-stream failed.
type subFailing struct {
	Cameras
	mainState ingest.State
}

func (s subFailing) Status(c ingest.Camera) dispatch.Status {
	st := s.Cameras.Status(c)
	st.State = s.mainState
	st.Sub = &ingest.StreamStatus{State: ingest.StateOffline, LastError: "404 Not Found"}
	return st
}

// WHEP stream=sub serves main when the sub-stream is failing (and says so
// in X-Vigil-Stream), unless the main stream fails as well.
func TestWHEPSubFallsBackWhenFailing(t *testing.T) {
	for _, tc := range []struct {
		name      string
		mainState ingest.State
		stream    string
		want      string
	}{
		{"sub failing", ingest.StateOnline, "sub", "main"},
		{"main asked", ingest.StateOnline, "main", "main"},
		{"both failing", ingest.StateOffline, "sub", "sub"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, Options{})
			f.srv.deps.Cameras = subFailing{Cameras: f.srv.deps.Cameras, mainState: tc.mainState}
			rec := f.do(req{method: "POST", path: "/api/v1/cameras/police-1/whep?stream=" + tc.stream, who: pOperator,
				ctype: "application/sdp", body: "v=0\r\n"})
			if rec.Code != http.StatusCreated {
				t.Fatalf("offer: %d %s", rec.Code, rec.Body)
			}
			if got := rec.Header().Get(StreamHeader); got != tc.want {
				t.Errorf("%s = %q, want %q", StreamHeader, got, tc.want)
			}
			if !strings.Contains(rec.Body.String(), "answer "+tc.want) {
				t.Errorf("the relay was asked for another stream: %q", rec.Body)
			}
		})
	}
}
