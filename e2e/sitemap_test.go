package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
)

func pngOf(w, h int, c color.Color) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, c)
		}
	}
	var b bytes.Buffer
	png.Encode(&b, img)
	return b.Bytes()
}

// mercator is the Web Mercator world pixel of a place at zoom z.
func mercator(lat, lng float64, z int) (x, y float64) {
	n := math.Exp2(float64(z)) * 256
	s := math.Sin(lat * math.Pi / 180)
	return (lng + 180) / 360 * n, (0.5 - math.Log((1+s)/(1-s))/(4*math.Pi)) * n
}

// TestMapTilesAndSiteMap runs a Vigil configured with a tile server of its
// own (ui.mapTiles, an HTTP server of the test's): the map draws that
// server's Web Mercator tiles (the CSP lets them load) with the cameras on
// them, conformal (one scale across and down); a disabled camera is drawn
// disabled and one without a position is listed and placed with a click.
// Then an admin uploads a site map with two reference points: the map
// draws it instead, with every camera at the pixel the points give.
func TestMapTilesAndSiteMap(t *testing.T) {
	if e2e.skip != "" {
		t.Skip(e2e.skip)
	}
	tile := pngOf(256, 256, color.RGBA{40, 60, 80, 255})
	var mu sync.Mutex
	asked := map[string]bool{}
	tiles := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		asked[strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/"), ".png")] = true
		mu.Unlock()
		w.Header().Set("Content-Type", "image/png")
		w.Write(tile)
	}))
	defer tiles.Close()
	base := startSecondVigil(t, func(c *config.Config) { c.UI.MapTiles = tiles.URL + "/{z}/{x}/{y}.png" }, app.Options{})
	admin, err := login(base, "admin", adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	type cam struct {
		id       string
		lat, lng float64
		enabled  bool
	}
	cams := []cam{{"m-a", 22.93, 113.38, true}, {"m-b", 22.96, 113.41, true}, {"m-c", 22.945, 113.395, false}, {"m-d", 0, 0, true}}
	for _, c := range cams {
		body := map[string]any{"id": c.id, "name": "Map " + c.id, "department": "police", "mainUrl": "rtsp://127.0.0.1:1/none",
			"location": map[string]any{"lat": c.lat, "lng": c.lng}, "record": false, "enabled": c.enabled}
		if _, err := admin.do("POST", "/api/v1/cameras", body, http.StatusCreated); err != nil {
			t.Fatal(err)
		}
	}

	ctx := tab(t, true)
	do(t, ctx, "log in", chromedp.Navigate(base+"/#/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-username]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-username]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-password]`), adminPassword),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=current-user]`)),
		chromedp.Navigate(base+"/#/map"))
	waitFor(t, ctx, "the markers over tiles", `document.querySelector('[data-testid=map-stage]').dataset.mode === 'tiles' && document.querySelector('[data-testid=map-stage]').dataset.statusAt && document.querySelectorAll('[data-testid=map-marker]').length === 3`, 20*time.Second)
	waitFor(t, ctx, "tiles loaded", `[...document.querySelectorAll('.map-tile')].some((i) => i.complete && i.naturalWidth === 256)`, 20*time.Second)
	shot(t, ctx, "map-tiles")
	at := func() map[string]mapMarker {
		out := map[string]mapMarker{}
		for _, m := range mapMarkers(t, ctx) {
			out[m.ID] = m
		}
		return out
	}
	ms := at()
	if ms["m-c"].State != "disabled" {
		t.Errorf("the disabled camera is drawn %q", ms["m-c"].State)
	}
	// One scale across and down (Mercator is conformal), and m-c where the
	// scale puts it.
	ax, ay := mercator(22.93, 113.38, 0)
	bx, by := mercator(22.96, 113.41, 0)
	cx, cy := mercator(22.945, 113.395, 0)
	sx := (ms["m-b"].X - ms["m-a"].X) / (bx - ax)
	sy := (ms["m-b"].Y - ms["m-a"].Y) / (by - ay)
	if math.Abs(sx/sy-1) > 0.01 {
		t.Fatalf("scales %.1f across, %.1f down: not Web Mercator", sx, sy)
	}
	if px, py := ms["m-a"].X+sx*(cx-ax), ms["m-a"].Y+sy*(cy-ay); math.Hypot(ms["m-c"].X-px, ms["m-c"].Y-py) > 1.5 {
		t.Errorf("m-c at (%.1f, %.1f), want (%.1f, %.1f)", ms["m-c"].X, ms["m-c"].Y, px, py)
	}
	// The tile under m-a was asked for, at the zoom drawn.
	z := int(math.Round(math.Log2(sx)))
	tx, ty := mercator(22.93, 113.38, z)
	mu.Lock()
	got := asked[fmt.Sprintf("%d/%d/%d", z, int(tx/256), int(ty/256))]
	n := len(asked)
	mu.Unlock()
	if !got {
		t.Errorf("the tile under m-a at zoom %d was not asked for (%d tiles asked)", z, n)
	}

	// m-d has no position: listed, and placed with a click.
	if !eval[bool](t, ctx, `!!document.querySelector('[data-testid=map-unplaced] [data-camera-id=m-d]')`) {
		t.Fatal("the camera without a position is not listed")
	}
	target := mapMarker{X: (ms["m-a"].X + ms["m-b"].X) / 2, Y: ms["m-a"].Y - 30}
	do(t, ctx, "place m-d", chromedp.Click(chromedp.CSS(`[data-testid=map-unplaced] [data-camera-id=m-d] [data-testid=map-place]`)),
		chromedp.MouseClickXY(target.X, target.Y))
	waitFor(t, ctx, "m-d on the map", `!!document.querySelector('[data-testid=map-marker][data-camera-id=m-d]')`, 10*time.Second)
	// (the list of unplaced cameras went away and the map widened: compare with m-a)
	if now := at(); math.Hypot(now["m-d"].X-now["m-a"].X-(target.X-ms["m-a"].X), now["m-d"].Y-now["m-a"].Y-(target.Y-ms["m-a"].Y)) > 2 {
		t.Errorf("m-d placed at (%.1f, %.1f) from m-a, clicked at (%.1f, %.1f) from it", now["m-d"].X-now["m-a"].X, now["m-d"].Y-now["m-a"].Y,
			target.X-ms["m-a"].X, target.Y-ms["m-a"].Y)
	}

	// The site map: 400×300, m-a at pixel (50, 250), m-b at (350, 50).
	req, _ := http.NewRequest("PUT", base+"/api/v1/map/image", bytes.NewReader(pngOf(400, 300, color.RGBA{200, 200, 180, 255})))
	req.Header.Set("Content-Type", "image/png")
	req.Header.Set("X-CSRF-Token", admin.csrf)
	res, err := admin.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("upload the site map: %s", res.Status)
	}
	refs := map[string]any{"refs": []map[string]float64{{"x": 50, "y": 250, "lat": 22.93, "lng": 113.38}, {"x": 350, "y": 50, "lat": 22.96, "lng": 113.41}}}
	if _, err := admin.do("PUT", "/api/v1/map", refs, http.StatusOK); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "open the map again", chromedp.Navigate(base+"/#/wall"), chromedp.Navigate(base+"/#/map"))
	waitFor(t, ctx, "the markers over the site map", `document.querySelector('[data-testid=map-stage]').dataset.mode === 'image' && document.querySelector('[data-testid=map-image]')?.naturalWidth === 400 && document.querySelectorAll('[data-testid=map-marker]').length === 4`, 20*time.Second)
	shot(t, ctx, "map-site-image")
	img := eval[struct{ X, Y, W float64 }](t, ctx, `(() => { const r = document.querySelector('[data-testid=map-image]').getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width }; })()`)
	s := img.W / 400
	ms = at()
	for id, px := range map[string][2]float64{"m-a": {50, 250}, "m-b": {350, 50}, "m-c": {200, 150}} {
		wx, wy := img.X+px[0]*s, img.Y+px[1]*s
		if m := ms[id]; math.Hypot(m.X-wx, m.Y-wy) > 1.5 {
			t.Errorf("%s at (%.1f, %.1f) over the site map, want its pixel (%.0f, %.0f) at (%.1f, %.1f)", id, m.X, m.Y, px[0], px[1], wx, wy)
		}
	}

	// The reference points placed on the page: two clicks on the image,
	// each followed by its coordinates.
	do(t, ctx, "Reference points", chromedp.Click(chromedp.CSS(`[data-testid=map-refs]`)))
	waitFor(t, ctx, "the whole image", `document.querySelector('[data-testid=map-stage]').dataset.mode === 'image-unplaced' && document.querySelectorAll('[data-testid=map-marker]').length === 0`, 5*time.Second)
	img = eval[struct{ X, Y, W float64 }](t, ctx, `(() => { const r = document.querySelector('[data-testid=map-image]').getBoundingClientRect(); return { x: r.left, y: r.top, w: r.width }; })()`)
	s = img.W / 400
	for _, p := range []struct {
		x, y     float64
		lat, lng string
	}{{60, 240, "22.931", "113.381"}, {340, 60, "22.958", "113.409"}} {
		do(t, ctx, fmt.Sprintf("reference point at (%.0f, %.0f)", p.x, p.y),
			chromedp.MouseClickXY(img.X+p.x*s, img.Y+p.y*s),
			chromedp.WaitVisible(chromedp.CSS(`[data-testid=map-ref-lat]`)),
			chromedp.SendKeys(chromedp.CSS(`[data-testid=map-ref-lat]`), p.lat),
			chromedp.SendKeys(chromedp.CSS(`[data-testid=map-ref-lng]`), p.lng),
			chromedp.Click(chromedp.CSS(`[data-testid=map-ref-save]`)))
		waitFor(t, ctx, "the dialog closed", noDialog, 5*time.Second)
	}
	waitFor(t, ctx, "the site map placed again", `document.querySelector('[data-testid=map-stage]').dataset.mode === 'image' && document.querySelectorAll('[data-testid=map-marker]').length === 4`, 10*time.Second)
	b, err := admin.do("GET", "/api/v1/map", nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Image struct {
			Refs []struct{ X, Y, Lat, Lng float64 }
		}
	}
	json.Unmarshal(b, &m)
	want := [][4]float64{{60, 240, 22.931, 113.381}, {340, 60, 22.958, 113.409}}
	if len(m.Image.Refs) != 2 {
		t.Fatalf("reference points stored: %s", b)
	}
	for i, r := range m.Image.Refs {
		if math.Abs(r.X-want[i][0]) > 1 || math.Abs(r.Y-want[i][1]) > 1 || r.Lat != want[i][2] || r.Lng != want[i][3] {
			t.Errorf("reference point %d stored as %+v, want %v", i+1, r, want[i])
		}
	}
}
