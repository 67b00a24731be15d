package ui

import (
	"net/http"
	"net/url"
	"testing"
	"time"
)

// TestThumbnailEndpoint serves thumbnails of a real recording: the keyframe
// at or before t (X-Vigil-Start), a small fMP4 kept by the browser's cache,
// one audit row per look at a camera rather than per thumbnail, none where
// nothing was recorded, and a row for every refusal.
func TestThumbnailEndpoint(t *testing.T) {
	f, seg, _ := realRecording(t)
	path := func(cam string, at time.Time) string {
		return "/api/v1/cameras/" + cam + "/thumbnail?" + url.Values{"t": {at.Format(time.RFC3339Nano)}}.Encode()
	}
	audits := f.auditRows("thumbnail")
	for i, off := range []time.Duration{300 * time.Millisecond, 2500 * time.Millisecond, 5 * time.Second, 9900 * time.Millisecond} {
		at := fixtureT0.Add(off)
		rec := f.do(req{method: "GET", path: path("police-1", at), who: pOperator})
		if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "video/mp4" {
			t.Fatalf("%s: %d %v %s", off, rec.Code, rec.Header(), rec.Body)
		}
		if got, want := rec.Header().Get(StartHeader), keyframeAt(seg, at).UTC().Format(time.RFC3339Nano); got != want {
			t.Fatalf("%s: %s %s, want the keyframe at %s", off, StartHeader, got, want)
		}
		if cc := rec.Header().Get("Cache-Control"); cc != "private, max-age=3600" {
			t.Errorf("%s: Cache-Control %q", off, cc)
		}
		body := rec.Body.Bytes()
		if len(body) < 16 || string(body[4:8]) != "ftyp" || len(body) > 4096 {
			t.Fatalf("%s: a thumbnail of %d bytes beginning % x", off, len(body), body[:min(len(body), 16)])
		}
		if n := f.auditRows("thumbnail") - audits; n != 1 {
			t.Fatalf("after %d thumbnails of one camera: %d audit rows, want 1", i+1, n)
		}
	}
	// Nothing recorded: 404, no row (nothing was seen).
	rec := f.do(req{method: "GET", path: path("police-1", fixtureT0.Add(time.Hour)), who: pResponder})
	if rec.Code != http.StatusNotFound {
		t.Fatalf("where nothing was recorded: %d %s", rec.Code, rec.Body)
	}
	if n := f.auditRows("thumbnail") - audits; n != 1 {
		t.Fatalf("a thumbnail of nothing wrote a row: %d rows", n)
	}
	// Another login: its own row.
	if rec := f.do(req{method: "GET", path: path("police-1", fixtureT0), who: pResponder}); rec.Code != http.StatusOK {
		t.Fatalf("responder: %d %s", rec.Code, rec.Body)
	}
	if n := f.auditRows("thumbnail") - audits; n != 2 {
		t.Fatalf("a second user's look: %d rows, want 2", n)
	}
	// A refusal is always written; a bad time is a 400.
	for _, who := range []string{pViewer, pViewer} {
		if rec := f.do(req{method: "GET", path: path("police-1", fixtureT0), who: who}); rec.Code != http.StatusForbidden {
			t.Fatalf("viewer: %d %s", rec.Code, rec.Body)
		}
	}
	if n := f.auditRows("thumbnail") - audits; n != 4 {
		t.Fatalf("two refusals: %d rows, want 4", n)
	}
	if rec := f.do(req{method: "GET", path: "/api/v1/cameras/police-1/thumbnail?t=yesterday", who: pOperator}); rec.Code != http.StatusBadRequest {
		t.Fatalf("a bad time: %d %s", rec.Code, rec.Body)
	}
}
