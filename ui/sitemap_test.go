package ui

import (
	"bytes"
	"encoding/json"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/registry"
)

// testMapPNG is a 320x240 PNG, a site map for the tests.
var testMapPNG = func() string {
	img := image.NewRGBA(image.Rect(0, 0, 320, 240))
	for x := 0; x < 320; x++ {
		img.Set(x, x*240/320, color.RGBA{200, 0, 0, 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.String()
}()

// TestSiteMap uploads a site map, places it by two reference points, reads
// it back as every user does, and deletes it, with the audit rows; bad
// images and points are refused with their reasons.
func TestSiteMap(t *testing.T) {
	f := newFixture(t, Options{MapTiles: "https://tiles.example.org/{z}/{x}/{y}.png"})
	get := func(who string) mapConfig {
		t.Helper()
		rec := f.do(req{method: "GET", path: "/api/v1/map", who: who})
		var m mapConfig
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &m) != nil {
			t.Fatalf("GET map: %d %s", rec.Code, rec.Body)
		}
		return m
	}
	if m := get(pViewer); m.Image != nil || m.Tiles != "https://tiles.example.org/{z}/{x}/{y}.png" {
		t.Fatalf("before an upload: %+v", m)
	}
	rec := f.do(req{method: "GET", path: "/api/v1/map", who: pViewer})
	if csp := rec.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "img-src 'self' data: blob: https://tiles.example.org;") {
		t.Errorf("the CSP does not allow the tile server's images: %s", csp)
	}

	for _, tc := range []struct {
		name, ctype, body string
		status            int
		code              string
	}{
		{"not an image", "image/png", "hello, not a png at all", http.StatusBadRequest, "map.image_type"},
		{"svg", "image/svg+xml", "<svg/>", http.StatusUnsupportedMediaType, "request.image_media_type"},
		{"empty", "image/png", "", http.StatusBadRequest, "map.image_empty"},
		{"too large", "image/png", testMapPNG + strings.Repeat("x", registry.MaxSiteMapBytes), http.StatusRequestEntityTooLarge, ""},
	} {
		rec := f.do(req{method: "PUT", path: "/api/v1/map/image", ctype: tc.ctype, body: tc.body, who: pAdmin})
		if rec.Code != tc.status || !strings.Contains(rec.Body.String(), tc.code) {
			t.Errorf("%s: %d %s, want %d %s", tc.name, rec.Code, rec.Body, tc.status, tc.code)
		}
	}
	if get(pAdmin).Image != nil {
		t.Fatal("a refused image was stored")
	}

	audits := f.auditRows("map.image")
	rec = f.do(req{method: "PUT", path: "/api/v1/map/image", ctype: "image/png", body: testMapPNG, who: pAdmin})
	if rec.Code != http.StatusOK || f.auditRows("map.image") != audits+1 {
		t.Fatalf("upload: %d %s", rec.Code, rec.Body)
	}
	m := get(pViewer)
	if m.Image == nil || m.Image.Width != 320 || m.Image.Height != 240 || m.Image.ContentType != "image/png" || len(m.Image.Refs) != 0 {
		t.Fatalf("after the upload: %+v", m.Image)
	}
	rec = f.do(req{method: "GET", path: "/api/v1/map/image", who: pViewer})
	if rec.Code != http.StatusOK || rec.Body.String() != testMapPNG || rec.Header().Get("Content-Type") != "image/png" {
		t.Fatalf("image: %d %v", rec.Code, rec.Header())
	}
	etag := rec.Header().Get("ETag")
	if rec := f.do(req{method: "GET", path: "/api/v1/map/image", who: pViewer, header: map[string]string{"If-None-Match": etag}}); rec.Code != http.StatusNotModified {
		t.Errorf("If-None-Match %s: %d", etag, rec.Code)
	}

	for _, tc := range []struct{ name, refs, code string }{
		{"one point", `[{"x":10,"y":10,"lat":22.95,"lng":113.37}]`, "map.refs_count"},
		{"outside", `[{"x":10,"y":10,"lat":22.95,"lng":113.37},{"x":400,"y":200,"lat":22.92,"lng":113.40}]`, "map.ref_outside"},
		{"same latitude", `[{"x":10,"y":10,"lat":22.95,"lng":113.37},{"x":300,"y":200,"lat":22.95,"lng":113.40}]`, "map.refs_apart"},
		{"south up", `[{"x":10,"y":10,"lat":22.92,"lng":113.37},{"x":300,"y":200,"lat":22.95,"lng":113.40}]`, "map.refs_not_north_up"},
		{"latitude", `[{"x":10,"y":10,"lat":95,"lng":113.37},{"x":300,"y":200,"lat":22.95,"lng":113.40}]`, "map.ref_range"},
	} {
		rec := f.do(req{method: "PUT", path: "/api/v1/map", ctype: "application/json", body: `{"refs":` + tc.refs + `}`, who: pAdmin})
		if rec.Code != http.StatusBadRequest || !strings.Contains(rec.Body.String(), tc.code) {
			t.Errorf("%s: %d %s, want 400 %s", tc.name, rec.Code, rec.Body, tc.code)
		}
	}
	audits = f.auditRows("map.update")
	rec = f.do(req{method: "PUT", path: "/api/v1/map", ctype: "application/json", who: pAdmin,
		body: `{"refs":[{"x":10,"y":10,"lat":22.95,"lng":113.37},{"x":300,"y":200,"lat":22.92,"lng":113.40}]}`})
	if rec.Code != http.StatusOK || f.auditRows("map.update") != audits+1 {
		t.Fatalf("refs: %d %s", rec.Code, rec.Body)
	}
	if m := get(pOperator); len(m.Image.Refs) != 2 || m.Image.Refs[1].Lng != 113.40 {
		t.Fatalf("refs read back: %+v", m.Image.Refs)
	}
	// A new image clears the points, which named the old one's pixels.
	if rec := f.do(req{method: "PUT", path: "/api/v1/map/image", ctype: "image/png", body: testMapPNG, who: pAdmin}); rec.Code != http.StatusOK {
		t.Fatalf("second upload: %d", rec.Code)
	}
	if m := get(pOperator); len(m.Image.Refs) != 0 {
		t.Fatalf("refs kept over a new image: %+v", m.Image.Refs)
	}
	if rec := f.do(req{method: "DELETE", path: "/api/v1/map", who: pAdmin}); rec.Code != http.StatusNoContent || f.auditRows("map.delete") != 1 {
		t.Fatalf("delete: %d %s", rec.Code, rec.Body)
	}
	if get(pViewer).Image != nil {
		t.Fatal("the map is still there after delete")
	}
}
