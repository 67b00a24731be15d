package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

const (
	tileVideos   = `[data-testid=tile] video`
	playingTiles = `[data-testid=tile][data-player=playing]`
)

// wallState is what the wall remembers in localStorage.
type wallState struct {
	Layout   int      `json:"layout"`
	Dept     string   `json:"dept"`
	Q        string   `json:"q"`
	Selected []string `json:"selected"`
	Page     int      `json:"page"`
}

// openWall opens the live wall with the given remembered state.
func openWall(t *testing.T, ctx context.Context, st wallState) {
	t.Helper()
	if st.Selected == nil {
		st.Selected = []string{}
	}
	b, _ := json.Marshal(st)
	open(t, ctx, "/wall")
	do(t, ctx, "set the wall state",
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`localStorage.setItem('vigil.wall', %s)`, jsString(string(b)))),
		chromedp.Reload(),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=wall-grid]`)),
	)
}

func countCameras(t *testing.T, c *apiClient, dept string) int {
	t.Helper()
	b, err := c.do("GET", "/api/v1/cameras", nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	var cams []struct{ ID, Department string }
	if err := json.Unmarshal(b, &cams); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, c := range cams {
		if dept == "" || c.Department == dept {
			n++
		}
	}
	return n
}

func TestLoginAndBack(t *testing.T) {
	ctx := tab(t, true)
	open(t, ctx, "/admin/users")
	waitFor(t, ctx, "the login page", `document.querySelector('[data-testid=login-form]') !== null && location.hash.startsWith('#/login?next=')`, 15*time.Second)
	shot(t, ctx, "01-login")
	do(t, ctx, "log in with a wrong password",
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-username]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-password]`), "wrong-password"),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)))
	waitFor(t, ctx, "the login error", `document.querySelector('[data-testid=login-error]').textContent.length > 0`, 10*time.Second)
	shot(t, ctx, "01-login-failed")
	do(t, ctx, "log in",
		chromedp.SetValue(chromedp.CSS(`[data-testid=login-password]`), adminPassword),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)))
	// Back where we were going.
	waitFor(t, ctx, "the users page", `location.hash === '#/admin/users' && document.querySelector('[data-testid=admin-users] tr[data-username=admin]') !== null`, 15*time.Second)
	shot(t, ctx, "02-admin-users")

	// An expired session (here: logged out elsewhere) sends any call back to the login page.
	do(t, ctx, "log out behind the page's back", chromedp.Evaluate[chromedp.Void](`(async () => {
	  const s = await (await fetch('/api/v1/session')).json();
	  await fetch('/api/v1/session', { method: 'DELETE', headers: { 'X-CSRF-Token': s.csrfToken } });
	})()`, chromedp.EvalAwaitPromise))
	open(t, ctx, "/admin/departments")
	waitFor(t, ctx, "the login page after the session ended", `location.hash.startsWith('#/login?next=') && decodeURIComponent(location.hash).includes('#/admin/departments')`, 15*time.Second)
}

func TestWallNineTiles(t *testing.T) {
	ctx := adminTab(t, "")
	openWall(t, ctx, wallState{Layout: 9})
	waitFor(t, ctx, "9 playing tiles", `document.querySelectorAll('`+playingTiles+`').length === 9`, 60*time.Second)
	got := framesAdvance(t, ctx, tileVideos, 9, 25, 30*time.Second)
	for _, f := range got {
		if f.W != 640 {
			t.Errorf("tile %s plays %dx%d, want the 640x360 sub-stream", f.ID, f.W, f.H)
		}
	}
	n := eval[int](t, ctx, `document.querySelectorAll('[data-testid=tile] [data-testid=status-badge][data-state=online]').length`)
	if n != 9 {
		t.Errorf("%d tiles show an online badge, want 9", n)
	}
	shot(t, ctx, "03-wall-9")
}

func TestDepartmentFilter(t *testing.T) {
	ctx := adminTab(t, "")
	openWall(t, ctx, wallState{Layout: 16})
	waitFor(t, ctx, "16 tiles", `document.querySelectorAll('[data-testid=tile]').length === 16`, 30*time.Second)
	want := countCameras(t, e2e.admin, "police")
	do(t, ctx, "filter police", chromedp.Evaluate[chromedp.Void](`(() => {
	  const s = document.querySelector('[data-testid=dept-filter]');
	  s.value = 'police';
	  s.dispatchEvent(new Event('change'));
	})()`))
	waitFor(t, ctx, "only police tiles", fmt.Sprintf(`(() => {
	  const ts = [...document.querySelectorAll('[data-testid=tile]')];
	  return ts.length === %d && ts.every((t) => t.dataset.department === 'police');
	})()`, want), 15*time.Second)
	waitFor(t, ctx, "police tiles playing", fmt.Sprintf(`document.querySelectorAll('%s').length === %d`, playingTiles, want), 40*time.Second)
	shot(t, ctx, "04-wall-police")
	// The filter is remembered.
	do(t, ctx, "reload", chromedp.Reload())
	waitFor(t, ctx, "the filter after a reload", fmt.Sprintf(`document.querySelector('[data-testid=dept-filter]').value === 'police' && document.querySelectorAll('[data-testid=tile]').length === %d`, want), 15*time.Second)
}

func TestDoubleClickOpensMainStream(t *testing.T) {
	ctx := adminTab(t, "")
	openWall(t, ctx, wallState{Layout: 4})
	waitFor(t, ctx, "4 playing tiles", `document.querySelectorAll('`+playingTiles+`').length === 4`, 60*time.Second)
	id := eval[string](t, ctx, `document.querySelector('[data-testid=tile]').dataset.cameraId`)
	do(t, ctx, "double-click a tile", chromedp.DoubleClick(chromedp.CSS(`[data-testid=tile]`)))
	waitFor(t, ctx, "the main stream playing", `(() => {
	  const f = document.querySelector('[data-testid=focus-view][data-player=playing] video');
	  return f && f.videoWidth > 0;
	})()`, 40*time.Second)
	got := framesAdvance(t, ctx, `[data-testid=focus-view] video`, 1, 25, 20*time.Second)
	if got[0].ID != id || got[0].W != 1280 || got[0].H != 720 {
		t.Errorf("large view shows %s at %dx%d, want %s at 1280x720 (main stream)", got[0].ID, got[0].W, got[0].H, id)
	}
	// The tiles under the large view stopped their sessions.
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid=tile][data-player=idle]').length`); n != 4 {
		t.Errorf("%d tiles idle under the large view, want 4", n)
	}
	shot(t, ctx, "05-wall-main-stream")
	do(t, ctx, "press Esc", chromedp.KeyEvent(kb.Escape))
	waitFor(t, ctx, "the wall again", `document.querySelector('[data-testid=focus-view]') === null && document.querySelectorAll('`+playingTiles+`').length === 4`, 40*time.Second)
}

func TestAdminAddsCamera(t *testing.T) {
	ctx := adminTab(t, "/admin/cameras")
	waitFor(t, ctx, "the camera list", `document.querySelector('[data-testid=admin-cameras] tr[data-camera-id="cam-01"]') !== null`, 15*time.Second)
	shot(t, ctx, "06-admin-cameras")
	do(t, ctx, "fill the camera form",
		chromedp.Click(chromedp.CSS(`[data-testid=camera-add]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=camera-form]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=cam-id]`), "e2e-added"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=cam-name]`), "Added through the form"),
		chromedp.SetValue(chromedp.CSS(`[data-testid=cam-department]`), "rental-housing"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=cam-address]`), "1 Test Lane"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=cam-main-url]`), e2e.sim.URL(3, false)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=cam-sub-url]`), e2e.sim.URL(3, true)),
		chromedp.Click(chromedp.CSS(`[data-testid=cam-test]`)),
	)
	waitFor(t, ctx, "the connection test", `document.querySelector('[data-testid=test-result]').dataset.result !== undefined`, 30*time.Second)
	res := eval[string](t, ctx, `document.querySelector('[data-testid=test-result]').dataset.result + ': ' + document.querySelector('[data-testid=test-result]').textContent`)
	shot(t, ctx, "07-admin-camera-form")
	if res[:3] != "ok:" {
		t.Errorf("test connection: %s", res)
	}
	do(t, ctx, "save", chromedp.Click(chromedp.CSS(`[data-testid=cam-save]`)))
	waitFor(t, ctx, "the new camera online in the list", `document.querySelector('tr[data-camera-id="e2e-added"] [data-testid=status-badge][data-state=online]') !== null`, 40*time.Second)
	shot(t, ctx, "08-admin-camera-added")

	openWall(t, ctx, wallState{Layout: 4, Q: "through the form"})
	waitFor(t, ctx, "the new camera playing on the wall", `(() => {
	  const ts = document.querySelectorAll('[data-testid=tile]');
	  const t = document.querySelector('[data-testid=tile][data-camera-id="e2e-added"][data-player=playing]');
	  return ts.length === 1 && t && t.querySelector('[data-testid=status-badge]').dataset.state === 'online';
	})()`, 40*time.Second)
	framesAdvance(t, ctx, tileVideos, 1, 25, 20*time.Second)
	shot(t, ctx, "09-wall-added-camera")
}

func TestViewerSeesOnlyTheirDepartment(t *testing.T) {
	admin := tab(t, false)
	logIn(t, admin, "admin", adminPassword)
	open(t, admin, "/admin/users")
	do(t, admin, "add a viewer limited to police",
		chromedp.Click(chromedp.CSS(`[data-testid=user-add]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=user-username]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=user-username]`), "e2e-viewer"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=user-password]`), "viewer-Pass-123"),
		chromedp.SetValue(chromedp.CSS(`[data-testid=user-role]`), "viewer"),
		chromedp.Click(chromedp.CSS(`[data-testid=user-departments] input[data-department-id=police]`)))
	shot(t, admin, "10-admin-user-form")
	do(t, admin, "save the user", chromedp.Click(chromedp.CSS(`[data-testid=user-save]`)))
	waitFor(t, admin, "the viewer in the list", `(() => {
	  const r = document.querySelector('tr[data-username="e2e-viewer"]');
	  return r && r.querySelector('.role-viewer') && r.querySelector('[data-department=police]');
	})()`, 15*time.Second)

	ctx := tab(t, true)
	logIn(t, ctx, "e2e-viewer", "viewer-Pass-123")
	links := eval[[]string](t, ctx, `[...document.querySelectorAll('[data-testid=nav] a')].map((a) => a.dataset.testid)`)
	// live only: the wall and the map (whose markers open live view)
	if strings.Join(links, " ") != "nav-wall nav-map" {
		t.Errorf("a viewer's menu: %v, want only nav-wall and nav-map", links)
	}
	openWall(t, ctx, wallState{Layout: 16})
	want := countCameras(t, e2e.admin, "police")
	waitFor(t, ctx, "police tiles only", fmt.Sprintf(`(() => {
	  const ts = [...document.querySelectorAll('[data-testid=tile]')];
	  return ts.length === %d && ts.every((t) => t.dataset.department === 'police');
	})()`, want), 20*time.Second)
	waitFor(t, ctx, "the viewer's tiles playing", fmt.Sprintf(`document.querySelectorAll('%s').length === %d`, playingTiles, want), 40*time.Second)
	shot(t, ctx, "10-viewer-wall")
	depts := eval[[]string](t, ctx, `fetch('/api/v1/cameras').then((r) => r.json()).then((cs) => [...new Set(cs.map((c) => c.department))])`)
	if len(depts) != 1 || depts[0] != "police" {
		t.Errorf("the viewer's API answers cameras of %v, want police only", depts)
	}
	for _, route := range []string{"/admin/cameras", "/admin/users", "/audit", "/playback"} {
		open(t, ctx, route)
		waitFor(t, ctx, "the not-allowed view for "+route, `document.querySelector('[data-testid=not-allowed]') !== null`, 10*time.Second)
	}
	shot(t, ctx, "11-viewer-not-allowed")
}

func TestChineseLabels(t *testing.T) {
	ctx := tab(t, true)
	logIn(t, ctx, "admin", adminPassword)
	openWall(t, ctx, wallState{Layout: 4})
	if got := eval[string](t, ctx, `document.querySelector('[data-testid=nav-wall]').textContent`); got != "Live wall" {
		t.Errorf("English menu says %q", got)
	}
	switchToChinese(t, ctx)
	waitFor(t, ctx, "Chinese labels", `document.querySelector('[data-testid=nav-wall]').textContent === '实时监控' && document.documentElement.lang === 'zh-CN'`, 10*time.Second)
	waitFor(t, ctx, "tiles playing", `document.querySelectorAll('`+playingTiles+`').length === 4`, 40*time.Second)
	shot(t, ctx, "12-wall-zh")
	do(t, ctx, "reload", chromedp.Reload())
	waitFor(t, ctx, "Chinese remembered", `document.querySelector('[data-testid=nav-wall]') && document.querySelector('[data-testid=nav-wall]').textContent === '实时监控'`, 10*time.Second)
	open(t, ctx, "/admin/cameras")
	waitFor(t, ctx, "the Chinese camera page", `document.querySelector('[data-testid=camera-add]') && document.querySelector('[data-testid=camera-add]').textContent === '添加摄像机'`, 10*time.Second)
	shot(t, ctx, "13-admin-cameras-zh")
}

// Sixteen tiles keep playing for 30 s, every tile's frames advancing in
// every 5 s window.
func TestSixteenTilesKeepPlaying(t *testing.T) {
	ctx := adminTab(t, "")
	openWall(t, ctx, wallState{Layout: 16, Selected: fleetIDs()})
	waitFor(t, ctx, "16 playing tiles", `document.querySelectorAll('`+playingTiles+`').length === 16`, 90*time.Second)
	framesAdvance(t, ctx, tileVideos, 16, 10, 30*time.Second)
	shot(t, ctx, "14-wall-16")
	expr := frameCounters(tileVideos)
	prev := eval[[]frameCount](t, ctx, expr)
	const window = 5 * time.Second
	start := time.Now()
	minFPS, total := 1e9, 0
	for i := 0; i < 6; i++ {
		time.Sleep(window) // a measurement window, not a wait for a condition
		now := eval[[]frameCount](t, ctx, expr)
		if len(now) != 16 {
			t.Fatalf("%d tiles after %s", len(now), time.Since(start).Round(time.Second))
		}
		for j, f := range now {
			d := f.N - prev[j].N
			total += d
			fps := float64(d) / window.Seconds()
			minFPS = min(minFPS, fps)
			if d < 10 {
				t.Errorf("window %d: tile %s decoded %d frames in %s", i+1, f.ID, d, window)
			}
		}
		prev = now
	}
	t.Logf("16 tiles for %s: %.1f frames/s per tile on average, slowest tile-window %.1f frames/s",
		time.Since(start).Round(time.Second), float64(total)/16/time.Since(start).Seconds(), minFPS)
	shot(t, ctx, "15-wall-16-after-30s")
}

// When the cameras drop their connections (a network cut on the camera
// side), the tiles come back by themselves.
func TestTilesRecoverAfterCameraDrop(t *testing.T) {
	ctx := adminTab(t, "")
	openWall(t, ctx, wallState{Layout: 4, Selected: fleetIDs()[:4]})
	waitFor(t, ctx, "4 playing tiles", `document.querySelectorAll('`+playingTiles+`').length === 4`, 60*time.Second)
	framesAdvance(t, ctx, tileVideos, 4, 10, 20*time.Second)
	e2e.sim.DropConnections()
	if err := waitOnline(e2e.admin, fleetIDs(), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	// Every tile decodes new frames again (through the same session or a new one).
	framesAdvance(t, ctx, tileVideos, 4, 50, 60*time.Second)
	shot(t, ctx, "25-wall-after-drop")
}

// Leaving the wall ends its WHEP sessions: the server counts no viewers.
func TestLeavingTheWallEndsSessions(t *testing.T) {
	ids := fleetIDs()[12:16]
	// Closing a tab ends its sessions too: nobody else watches these now.
	deadline := time.Now().Add(20 * time.Second)
	for viewers(t, ids) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d viewers of %v remain from closed tabs", viewers(t, ids), ids)
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
	ctx := adminTab(t, "")
	openWall(t, ctx, wallState{Layout: 4, Selected: ids})
	waitFor(t, ctx, "4 playing tiles", `document.querySelectorAll('`+playingTiles+`').length === 4`, 60*time.Second)
	if n := viewers(t, ids); n < 4 {
		t.Errorf("%d viewers of %v while the wall plays, want at least 4", n, ids)
	}
	left := time.Now()
	open(t, ctx, "/incidents")
	defer func() { t.Logf("viewers gone %s after leaving the wall", time.Since(left).Round(10*time.Millisecond)) }()
	deadline = time.Now().Add(20 * time.Second)
	for viewers(t, ids) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d viewers of %v remain after leaving the wall", viewers(t, ids), ids)
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
}

// viewers sums the live viewers of the cameras.
func viewers(t *testing.T, ids []string) int {
	t.Helper()
	b, err := e2e.admin.do("GET", "/api/v1/status", nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	var st []struct {
		ID      string
		Viewers int
	}
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range st {
		for _, id := range ids {
			if s.ID == id {
				n += s.Viewers
			}
		}
	}
	return n
}

// The camera picker puts the ticked cameras on the wall, in the order
// ticked; search narrows by name or address.
func TestPickerAndSearch(t *testing.T) {
	ctx := adminTab(t, "")
	openWall(t, ctx, wallState{Layout: 4})
	waitFor(t, ctx, "4 tiles", `document.querySelectorAll('[data-testid=tile]').length === 4`, 20*time.Second)
	do(t, ctx, "pick two cameras",
		chromedp.Click(chromedp.CSS(`[data-testid=camera-picker]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=picker]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=picker] input[data-camera-id="cam-12"]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=picker] input[data-camera-id="cam-07"]`)))
	shot(t, ctx, "26-picker")
	do(t, ctx, "apply", chromedp.Click(chromedp.CSS(`[data-testid=picker-save]`)))
	waitFor(t, ctx, "the two picked cameras, in order", `(() => {
	  const ids = [...document.querySelectorAll('[data-testid=tile]')].map((t) => t.dataset.cameraId);
	  return ids.join() === 'cam-12,cam-07' && document.querySelectorAll('[data-testid=tile-empty]').length === 2;
	})()`, 15*time.Second)
	waitFor(t, ctx, "both playing", `document.querySelectorAll('`+playingTiles+`').length === 2`, 40*time.Second)

	do(t, ctx, "back to all cameras, search an address",
		chromedp.Click(chromedp.CSS(`[data-testid=camera-picker]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=picker-auto]`)),
		setText(`[data-testid=camera-search]`, "11 Riverside"))
	waitFor(t, ctx, "the one matching camera", `(() => {
	  const ids = [...document.querySelectorAll('[data-testid=tile]')].map((t) => t.dataset.cameraId);
	  return ids.join() === 'cam-11';
	})()`, 15*time.Second)
	shot(t, ctx, "27-wall-search")
}
