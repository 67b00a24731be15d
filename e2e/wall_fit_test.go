package e2e

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
)

// fitCheck is an expression telling what does not fit the window: a
// scrollbar, or a tile not wholly inside the viewport. "" when all fits.
const fitCheck = `(() => {
  const se = document.scrollingElement;
  const bad = [];
  if (se.scrollHeight > innerHeight) bad.push('scrollHeight ' + se.scrollHeight + ' > ' + innerHeight);
  if (se.scrollWidth > innerWidth) bad.push('scrollWidth ' + se.scrollWidth + ' > ' + innerWidth);
  for (const t of document.querySelectorAll('[data-testid=tile]')) {
    const r = t.getBoundingClientRect();
    if (r.top < 0 || r.left < 0 || r.bottom > innerHeight + 0.5 || r.right > innerWidth + 0.5 || r.height < 40)
      bad.push(t.dataset.cameraId + ' at ' + [r.left, r.top, r.right, r.bottom].map(Math.round).join(','));
  }
  return bad.join('; ');
})()`

// The 9- and 16-tile walls fill the window at common 16:9 and 16:10 sizes:
// no scrollbar, every tile wholly visible; so does the kiosk mode, without
// the top bar.
func TestWallFitsTheWindow(t *testing.T) {
	ctx := tab(t, true)
	logIn(t, ctx, "admin", adminPassword)
	openWall(t, ctx, wallState{Layout: 16, Selected: fleetIDs()})
	sizes := [][2]int64{{1920, 1080}, {1366, 768}, {1600, 900}, {1280, 800}, {1680, 1050}, {3840, 2160}}
	check := func(mode string, layout int) {
		t.Helper()
		waitFor(t, ctx, fmt.Sprintf("%d tiles", layout), fmt.Sprintf(`document.querySelectorAll('[data-testid=tile]').length === %d`, layout), 20*time.Second)
		for _, sz := range sizes {
			do(t, ctx, fmt.Sprintf("a %dx%d window", sz[0], sz[1]), chromedp.EmulateViewport(sz[0], sz[1]))
			// Layout follows the resize in the next frame.
			if bad := eval[string](t, ctx, `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(() => r(`+fitCheck+`))))`); bad != "" {
				shot(t, ctx, fmt.Sprintf("FAILED-wall-fit-%s-%d-%dx%d", mode, layout, sz[0], sz[1]))
				t.Errorf("%s wall of %d at %dx%d: %s", mode, layout, sz[0], sz[1], bad)
			}
			if sz == sizes[1] {
				shot(t, ctx, fmt.Sprintf("40-wall-fit-%s-%d-%dx%d", mode, layout, sz[0], sz[1]))
			}
		}
	}
	check("normal", 16)
	do(t, ctx, "the 9-tile layout", chromedp.Click(chromedp.CSS(`[data-testid=layout-9]`)))
	check("normal", 9)
	do(t, ctx, "the 16-tile layout", chromedp.Click(chromedp.CSS(`[data-testid=layout-16]`)))
	if eval[bool](t, ctx, `document.querySelector('[data-testid=wall-fullscreen]') === null`) {
		t.Error("no full-screen button")
	}

	open(t, ctx, "/wall?kiosk=1")
	waitFor(t, ctx, "the kiosk wall", `document.documentElement.classList.contains('kiosk') && document.querySelector('[data-testid=wall-grid]') !== null`, 15*time.Second)
	if v := eval[string](t, ctx, `getComputedStyle(document.querySelector('.topbar')).display`); v != "none" {
		t.Errorf("the kiosk wall shows the top bar (display %s)", v)
	}
	check("kiosk", 16)
	// Leaving the wall gives the page its scrolling back.
	open(t, ctx, "/incidents")
	waitFor(t, ctx, "the incidents page, not fitted", `!document.documentElement.classList.contains('wall-fit') && !document.documentElement.classList.contains('kiosk')`, 15*time.Second)
}

// An offline camera's tile is dimmed and says since when, from the moment
// the wall learns of it and without flicker while the player would cycle.
func TestOfflineTileSaysSince(t *testing.T) {
	sim := simcam.Start(t, camsim.Options{Count: 1, Log: slog.New(slog.DiscardHandler)})
	const id = "e2e-goes-offline"
	cam := map[string]any{"id": id, "name": "Goes offline", "department": "police", "mainUrl": sim.URL(1, false),
		"transport": "tcp", "record": false, "enabled": true}
	if _, err := e2e.admin.do("POST", "/api/v1/cameras", cam, http.StatusCreated); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e2e.admin.do("DELETE", "/api/v1/cameras/"+id, nil, http.StatusNoContent) })
	if err := waitOnline(e2e.admin, []string{id}, 30*time.Second); err != nil {
		t.Fatal(err)
	}

	ctx := tab(t, true)
	logIn(t, ctx, "admin", adminPassword)
	openWall(t, ctx, wallState{Layout: 4, Selected: []string{id}})
	tile := `[data-testid=tile][data-camera-id="` + id + `"]`
	waitFor(t, ctx, "the tile playing", `document.querySelector('`+tile+`[data-player=playing]') !== null`, 40*time.Second)
	if eval[bool](t, ctx, `!document.querySelector('`+tile+` [data-testid=tile-offline]').hidden`) {
		t.Fatal("the offline overlay shows on a playing camera")
	}

	// Sample the overlay every 100 ms from the moment the camera stops.
	do(t, ctx, "sample the overlay", chromedp.Evaluate[chromedp.Void](`window.__off = []; window.__offTimer = setInterval(() => {
	  const o = document.querySelector('`+tile+` [data-testid=tile-offline]');
	  __off.push(!!o && !o.hidden && o.getBoundingClientRect().height > 0);
	}, 100)`))
	sim.Close()
	stopped := time.Now()
	var since string
	deadline := time.Now().Add(20 * time.Second)
	for since == "" {
		b, err := e2e.admin.do("GET", "/api/v1/cameras/"+id+"/status", nil, http.StatusOK)
		var st struct{ State, Since string }
		if err == nil && json.Unmarshal(b, &st) == nil && st.State == "offline" {
			since = st.Since
		} else if time.Now().After(deadline) {
			t.Fatalf("the camera is not offline %s after camsim stopped: %s %v", time.Since(stopped), b, err)
		} else {
			time.Sleep(200 * time.Millisecond) // polling interval
		}
	}
	time.Sleep(15*time.Second - time.Since(stopped))
	samples := eval[[]bool](t, ctx, `(clearInterval(__offTimer), __off)`)
	shot(t, ctx, "41-wall-offline-tile")
	first := -1
	for i, v := range samples {
		if v && first < 0 {
			first = i
		}
		if !v && first >= 0 {
			t.Fatalf("the overlay went away at sample %d after it showed at %d (of %d): flicker", i, first, len(samples))
		}
	}
	if first < 0 || len(samples) < 100 {
		t.Fatalf("the overlay never showed in %d samples over 15 s", len(samples))
	}
	t.Logf("overlay shown %.1f s after camsim stopped, then steady for %d samples", float64(first)/10, len(samples)-first)
	// "Offline since 12:54:41" in the browser's time zone, of the status's since.
	want := eval[string](t, ctx, `new Intl.DateTimeFormat(document.documentElement.lang || 'en', { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false }).format(new Date(`+jsString(since)+`))`)
	text := eval[string](t, ctx, `document.querySelector('`+tile+` [data-testid=tile-offline-since]').textContent`)
	if !strings.Contains(text, want) || !strings.Contains(text, "Offline since") {
		t.Errorf("offline tile says %q, want Offline since %s", text, want)
	}
	if !eval[bool](t, ctx, `document.querySelector('`+tile+`').classList.contains('tile-is-offline') && getComputedStyle(document.querySelector('`+tile+` video')).filter.includes('brightness')`) {
		t.Error("the offline tile is not dimmed")
	}
}

// A display an admin signed in keeps its wall playing long past the idle
// timeout that ends a user's login, and an admin signs it out by revoking it.
// A Vigil of its own with a 3 s idle timeout (below the configuration's 1 m
// floor) pulls two of the shared camsim cameras.
func TestDisplayOutlivesIdleTimeout(t *testing.T) {
	ctx := tab(t, true)
	const idle = 3 * time.Second
	base := startSecondVigil(t, func(*config.Config) {}, app.Options{SessionTTL: idle})
	admin, err := login(base, "admin", adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"d-1", "d-2"}
	for i, id := range ids {
		cam := map[string]any{"id": id, "name": "Display cam " + id, "department": "police", "mainUrl": e2e.sim.URL(i+1, false),
			"subUrl": e2e.sim.URL(i+1, true), "transport": "tcp", "record": false, "enabled": true}
		if _, err := admin.do("POST", "/api/v1/cameras", cam, http.StatusCreated); err != nil {
			t.Fatal(err)
		}
	}
	if err := waitOnline(admin, ids, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	b, err := admin.do("POST", "/api/v1/displays", map[string]any{"name": "Lobby wall", "departments": []string{"police"}}, http.StatusCreated)
	if err != nil {
		t.Fatal(err)
	}
	var d struct{ ID, Path string }
	if err := json.Unmarshal(b, &d); err != nil || !strings.HasPrefix(d.Path, "/#/display?code=") {
		t.Fatalf("display %s: %v", b, err)
	}
	user, err := login(base, "admin", adminPassword) // a user's login, left idle
	if err != nil {
		t.Fatal(err)
	}

	do(t, ctx, "a 1920x1080 wall screen", chromedp.EmulateViewport(1920, 1080))
	do(t, ctx, "open the display link", chromedp.Navigate(base+d.Path))
	waitFor(t, ctx, "the kiosk wall of the display", `location.hash === '#/wall?kiosk=1' && document.documentElement.classList.contains('kiosk')`, 20*time.Second)
	waitFor(t, ctx, "2 playing tiles", `document.querySelectorAll('`+playingTiles+`').length === 2`, 40*time.Second)
	signedIn := time.Now()

	time.Sleep(4 * idle)
	if _, err := user.do("GET", "/api/v1/session", nil, http.StatusUnauthorized); err != nil {
		t.Fatalf("a user's login idle for %s still works: %v", 4*idle, err)
	}
	if h := eval[string](t, ctx, `location.hash`); h != "#/wall?kiosk=1" {
		t.Fatalf("the display left the wall for %s", h)
	}
	framesAdvance(t, ctx, tileVideos, 2, 25, 20*time.Second)
	if bad := eval[string](t, ctx, fitCheck); bad != "" {
		t.Errorf("the display's wall does not fit: %s", bad)
	}
	shot(t, ctx, "42-display-wall-past-idle")
	t.Logf("display playing %s after sign-in, idle timeout %s", time.Since(signedIn).Round(time.Second), idle)

	// Revoked, the display is signed out within a status poll or two.
	if admin, err = login(base, "admin", adminPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.do("DELETE", "/api/v1/displays/"+d.ID, nil, http.StatusNoContent); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the login page", `location.hash.startsWith('#/login')`, 15*time.Second)
	if n := eval[int](t, ctx, `document.querySelectorAll('video').length`); n != 0 {
		t.Errorf("%d videos left after the display was revoked", n)
	}
}

// An admin makes a display on the Displays page; its link signs a browser
// in to the kiosk wall of the display's department only, and revoking it
// there signs that wall out.
func TestAdminMakesDisplayLink(t *testing.T) {
	const name = "E2E police wall"
	ctx := tab(t, true) // its own localStorage: English, whatever other tests chose
	logIn(t, ctx, "admin", adminPassword)
	open(t, ctx, "/admin/displays")
	do(t, ctx, "add a display",
		chromedp.Click(chromedp.CSS(`[data-testid=display-add]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=display-name]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=display-name]`), name),
		chromedp.Click(chromedp.CSS(`[data-testid=display-departments] input[data-department-id=police]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=display-save]`)))
	waitFor(t, ctx, "the display link", `document.querySelector('[data-testid=display-link]').value.includes('#/display?code=')`, 15*time.Second)
	shot(t, ctx, "43-display-link")
	link := eval[string](t, ctx, `document.querySelector('[data-testid=display-link]').value`)

	wall := tab(t, true)
	do(t, wall, "open the display link", chromedp.Navigate(link))
	waitFor(t, wall, "the display's kiosk wall playing", `location.hash === '#/wall?kiosk=1' && document.querySelectorAll('`+playingTiles+`').length >= 1`, 40*time.Second)
	if d := eval[[]string](t, wall, `[...new Set([...document.querySelectorAll('[data-testid=tile]')].map((t) => t.dataset.department))]`); fmt.Sprint(d) != "[police]" {
		t.Errorf("the police display shows tiles of %v", d)
	}
	if eval[bool](t, wall, `document.querySelector('[data-testid=kiosk-exit]') !== null`) {
		t.Error("a display can leave the kiosk mode")
	}
	// The link worked once.
	second := tab(t, true)
	do(t, second, "open the link again", chromedp.Navigate(link))
	waitFor(t, second, "the sign-in error", `document.querySelector('[data-testid=display-signin-error]') !== null`, 15*time.Second)

	open(t, ctx, "/incidents")
	open(t, ctx, "/admin/displays")
	row := `[...document.querySelectorAll('tr[data-display-id]')].find((r) => r.textContent.includes(` + jsString(name) + `))`
	waitFor(t, ctx, "the display signed in", row+`.querySelector('[data-testid=display-state]').textContent.startsWith('Signed in')`, 15*time.Second)
	do(t, ctx, "revoke it", chromedp.Evaluate[chromedp.Void](row+`.querySelector('[data-testid=display-delete]').click()`),
		chromedp.Click(chromedp.CSS(`[data-testid=confirm-ok]`)))
	waitFor(t, wall, "the display signed out", `location.hash.startsWith('#/login')`, 15*time.Second)
	b, err := e2e.admin.do("GET", "/api/v1/audit?action=display.signin", nil, http.StatusOK)
	if err != nil || !strings.Contains(string(b), "display:"+name) {
		t.Errorf("no audit row of the display's sign-in: %s %v", b, err)
	}
}
