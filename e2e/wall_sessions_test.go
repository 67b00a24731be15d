package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// cameraViewers answers the viewers of one camera from its status.
func cameraViewers(t *testing.T, id string) int {
	t.Helper()
	b, err := e2e.admin.do("GET", "/api/v1/cameras/"+id+"/status", nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	var st struct{ Viewers int }
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatalf("status of %s: %v", id, err)
	}
	return st.Viewers
}

// waitViewers polls each camera's status until its viewers satisfy ok.
func waitViewers(t *testing.T, ctx context.Context, what string, ids []string, ok func(int) bool, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := map[string]int{}
		bad := false
		for _, id := range ids {
			got[id] = cameraViewers(t, id)
			bad = bad || !ok(got[id])
		}
		if !bad {
			return
		}
		if time.Now().After(deadline) {
			if ctx != nil {
				shot(t, ctx, "FAILED-"+t.Name())
			}
			t.Fatalf("%s: viewers %v after %s", what, got, timeout)
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}
}

func none(n int) bool { return n == 0 }
func some(n int) bool { return n > 0 }

// bringToFront makes the tab of ctx the active one of its window.
func bringToFront(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, "bring the tab to front", chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.CallBrowser(ctx, target.ActivateTarget, target.ActivateTargetParams{TargetID: chromedp.FromContext(ctx).Target.TargetID})
		return err
	}))
}

// A tab in the background stops its tiles' sessions; back in front it plays again.
//
// Headless Chromium reports every tab of its own window as visible: the
// wall's tab gets a window of its own (an isolated browser context), and a
// second tab opened in that window hides it, as a user switching tabs.
func TestHiddenTabStopsTiles(t *testing.T) {
	ids := fleetIDs()[8:12]
	waitViewers(t, nil, "no viewers left by earlier tests", ids, none, 20*time.Second)
	ctx := tab(t, true)
	logIn(t, ctx, "admin", adminPassword)
	openWall(t, ctx, wallState{Layout: 4, Selected: ids})
	waitFor(t, ctx, "4 playing tiles", `document.querySelectorAll('`+playingTiles+`').length === 4`, 60*time.Second)
	waitViewers(t, ctx, "a viewer per tile", ids, some, 10*time.Second)
	do(t, ctx, "count visibility changes", chromedp.Evaluate[chromedp.Void](`window.__vis = []; document.addEventListener('visibilitychange', () => __vis.push(document.visibilityState))`))

	other, cancel := chromedp.NewContext(ctx, chromedp.WithNewWindow(false))
	defer cancel()
	do(t, other, "open a second tab in the wall's window", chromedp.Navigate("about:blank"))
	bringToFront(t, other)
	// The wall's tab gets no animation frames now: Evaluate, not Poll.
	if v := eval[string](t, ctx, `document.visibilityState`); v != "hidden" {
		t.Fatalf("the wall's tab is %s behind another tab, want hidden", v)
	}
	hidden := time.Now()
	waitViewers(t, nil, "no viewers while the tab is hidden", ids, none, 15*time.Second)
	t.Logf("viewers gone %s after the tab was hidden", time.Since(hidden).Round(10*time.Millisecond))
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid=tile][data-player=idle]').length`); n != 4 {
		t.Errorf("%d tiles idle in the hidden tab, want 4", n)
	}

	bringToFront(t, ctx)
	waitFor(t, ctx, "4 playing tiles again", `document.visibilityState === 'visible' && document.querySelectorAll('`+playingTiles+`').length === 4`, 40*time.Second)
	waitViewers(t, ctx, "viewers again", ids, some, 10*time.Second)
	framesAdvance(t, ctx, tileVideos, 4, 25, 20*time.Second)
	if v := eval[[]string](t, ctx, `window.__vis`); fmt.Sprint(v) != "[hidden visible]" {
		t.Errorf("visibility changes %v, want [hidden visible]", v)
	}
	shot(t, ctx, "28-wall-hidden-tab-back")
}

// On a narrow screen the wall scrolls: tiles out of view keep no session,
// and scrolling swaps which tiles play.
func TestScrolledAwayTilesStop(t *testing.T) {
	ids := fleetIDs()[4:16] // twelve live cameras, six rows of two
	ctx := tab(t, false)
	do(t, ctx, "a narrow screen", chromedp.EmulateViewport(800, 700))
	logIn(t, ctx, "admin", adminPassword)
	openWall(t, ctx, wallState{Layout: 16, Selected: ids})
	waitFor(t, ctx, "12 tiles", `document.querySelectorAll('[data-testid=tile]').length === 12`, 20*time.Second)
	// inView lists the tiles the viewport shows at least a part of.
	const inView = `[...document.querySelectorAll('[data-testid=tile]')].filter((t) => {
	  const r = t.getBoundingClientRect();
	  return r.bottom > 0 && r.top < innerHeight && r.height > 0;
	}).map((t) => t.dataset.cameraId)`
	const outOfView = `[...document.querySelectorAll('[data-testid=tile]')].filter((t) => {
	  const r = t.getBoundingClientRect();
	  return r.bottom <= 0 || r.top >= innerHeight;
	}).map((t) => t.dataset.cameraId)`
	top := eval[[]string](t, ctx, inView)
	below := eval[[]string](t, ctx, outOfView)
	if len(top) == 0 || len(below) < 4 {
		shot(t, ctx, "FAILED-"+t.Name())
		t.Fatalf("the wall does not scroll on a narrow screen: %v in view, %v below", top, below)
	}
	waitFor(t, ctx, "the tiles in view playing", fmt.Sprintf(`(() => {
	  const ids = %s;
	  return ids.every((id) => document.querySelector('[data-testid=tile][data-camera-id="' + id + '"]').dataset.player === 'playing');
	})()`, mustJSON(top)), 60*time.Second)
	shot(t, ctx, "29-wall-narrow-top")
	if n := eval[int](t, ctx, fmt.Sprintf(`%s.filter((id) => document.querySelector('[data-testid=tile][data-camera-id="' + id + '"]').dataset.player !== 'idle').length`, mustJSON(below))); n != 0 {
		t.Errorf("%d tiles below the fold are not idle", n)
	}
	waitViewers(t, ctx, "no viewers for the tiles below the fold", below, none, 15*time.Second)
	waitViewers(t, ctx, "viewers for the tiles in view", top, some, 10*time.Second)

	do(t, ctx, "scroll to the last tile", chromedp.Evaluate[chromedp.Void](`[...document.querySelectorAll('[data-testid=tile]')].pop().scrollIntoView({ block: 'end' })`))
	bottom := eval[[]string](t, ctx, inView)
	gone := eval[[]string](t, ctx, outOfView)
	last := ids[len(ids)-1]
	if !contains(bottom, last) || !contains(gone, top[0]) {
		t.Fatalf("after scrolling %v in view, %v out of view", bottom, gone)
	}
	waitFor(t, ctx, "the tiles scrolled into view playing", fmt.Sprintf(`(() => {
	  const ids = %s;
	  return ids.every((id) => document.querySelector('[data-testid=tile][data-camera-id="' + id + '"]').dataset.player === 'playing');
	})()`, mustJSON(bottom)), 60*time.Second)
	waitViewers(t, ctx, "no viewers for the tiles scrolled away", gone, none, 15*time.Second)
	waitViewers(t, ctx, "viewers for the tiles scrolled into view", bottom, some, 10*time.Second)
	shot(t, ctx, "30-wall-narrow-scrolled")
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// setNetwork cuts (offline) or restores the tab's network: HTTP requests and
// WebRTC packets, and navigator.onLine with its online/offline events.
func setNetwork(t *testing.T, ctx context.Context, offline bool) {
	t.Helper()
	do(t, ctx, fmt.Sprintf("network offline=%v", offline), chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		var rules []*network.Conditions
		if offline {
			rules = []*network.Conditions{{Offline: true, PacketLoss: 100, DownloadThroughput: -1, UploadThroughput: -1}}
		}
		if _, err := chromedp.Call(ctx, network.EmulateNetworkConditionsByRule, network.EmulateNetworkConditionsByRuleParams{MatchedNetworkConditions: rules}); err != nil {
			return err
		}
		_, err := chromedp.Call(ctx, network.OverrideNetworkState, network.OverrideNetworkStateParams{Offline: offline, DownloadThroughput: -1, UploadThroughput: -1})
		return err
	}))
}

// whepSessions records the WHEP session locations the tab's page is given.
func whepSessions(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	return recordEvents(t, ctx, network.ResponseReceived, func(ev network.EventResponseReceived) []string {
		r := ev.Response
		if r == nil || r.Status != http.StatusCreated || !strings.HasSuffix(strings.SplitN(r.URL, "?", 2)[0], "/whep") {
			return nil
		}
		var locs []string
		for k, v := range r.Headers {
			if l, ok := v.(string); ok && strings.EqualFold(k, "location") {
				locs = append(locs, l)
			}
		}
		return locs
	})
}

// When the network goes away the tiles stall and back off; when it returns
// (the browser's online event) they reconnect at once, not at the end of
// their backoff.
//
// Chromium's network emulation cuts HTTP but not the media of a WebRTC
// session already up, so the outage also ends the tab's sessions on the
// server, as the server does itself when a viewer's network is gone.
func TestTilesReconnectWhenNetworkReturns(t *testing.T) {
	ids := fleetIDs()[4:8]
	ctx := tab(t, false)
	sessions := whepSessions(t, ctx)
	logIn(t, ctx, "admin", adminPassword)
	openWall(t, ctx, wallState{Layout: 4, Selected: ids})
	waitFor(t, ctx, "4 playing tiles", `document.querySelectorAll('`+playingTiles+`').length === 4`, 60*time.Second)
	framesAdvance(t, ctx, tileVideos, 4, 10, 20*time.Second)
	do(t, ctx, "count online events", chromedp.Evaluate[chromedp.Void](`window.__net = []; addEventListener('online', () => __net.push('online')); addEventListener('offline', () => __net.push('offline'))`))

	setNetwork(t, ctx, true)
	restored := false
	defer func() {
		if !restored {
			setNetwork(t, ctx, false)
		}
	}()
	locs := sessions()
	if len(locs) < 4 {
		t.Fatalf("%d WHEP sessions seen, want at least 4", len(locs))
	}
	for _, l := range locs {
		u, err := url.Parse(l)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e2e.admin.do("DELETE", u.Path, nil, http.StatusNoContent, http.StatusOK, http.StatusNotFound); err != nil {
			t.Fatal(err)
		}
	}
	// The players notice, and reconnecting fails while offline.
	waitFor(t, ctx, "every tile retrying", `!navigator.onLine && document.querySelectorAll('[data-testid=tile][data-player=retrying]').length === 4`, 30*time.Second)
	shot(t, ctx, "31-wall-offline")
	// Stay offline while the backoff grows past what the check below allows.
	time.Sleep(12 * time.Second) // the length of the outage, not a wait for a condition
	if n := eval[int](t, ctx, `document.querySelectorAll('`+playingTiles+`').length`); n != 0 {
		t.Fatalf("%d tiles play while offline", n)
	}
	// the page says the server is out of reach, and claims no camera state it cannot know
	waitFor(t, ctx, "the connection banner and unknown states", `(() => {
	  const b = document.querySelector('[data-testid=connection-lost]');
	  const states = [...document.querySelectorAll('[data-testid=tile] .badge')].map((e) => e.dataset.state);
	  return b && !b.hidden && states.length === 4 && states.every((s) => s === 'unknown');
	})()`, 10*time.Second)
	shot(t, ctx, "31b-wall-connection-lost")

	setNetwork(t, ctx, false)
	restored = true
	back := time.Now()
	waitFor(t, ctx, "4 playing tiles after the network returns", `navigator.onLine && document.querySelectorAll('`+playingTiles+`').length === 4`, 6*time.Second)
	t.Logf("tiles playing %s after the network returned", time.Since(back).Round(10*time.Millisecond))
	framesAdvance(t, ctx, tileVideos, 4, 25, 20*time.Second)
	waitFor(t, ctx, "the banner gone and the tiles online", `(() => {
	  const b = document.querySelector('[data-testid=connection-lost]');
	  const states = [...document.querySelectorAll('[data-testid=tile] .badge')].map((e) => e.dataset.state);
	  return b && b.hidden && states.every((s) => s === 'online');
	})()`, 10*time.Second)
	if ev := eval[[]string](t, ctx, `window.__net`); fmt.Sprint(ev) != "[offline online]" {
		t.Errorf("network events %v, want [offline online]", ev)
	}
	shot(t, ctx, "32-wall-network-back")
}
