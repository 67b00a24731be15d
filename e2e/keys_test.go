package e2e

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
)

const noDialog = `document.querySelector('dialog[open]') === null`

// TestKeyboardPlayback drives playback with the keyboard: Space plays and
// pauses even while the "Create incident" button has the focus — and never
// opens its dialog —, "." steps a frame, L jumps 10 s, "]" speeds up, →
// goes to the next camera, "?" shows the help, which Esc closes; keys typed
// into a field stay in the field.
func TestKeyboardPlayback(t *testing.T) {
	_, e := recordedSpan(t, "cam-01", 30*time.Second)
	at := e.Add(-25 * time.Second).Truncate(time.Millisecond)
	ctx := adminTab(t, "/playback?camera=cam-01&t="+rfc(at)+"&start="+rfc(at)+"&end="+rfc(at.Add(5*time.Second)))
	waitVideoReady(t, ctx)
	playing := func() bool {
		return eval[string](t, ctx, `document.querySelector('[data-testid=pb-play]').dataset.playing || 'false'`) == "true"
	}

	// The focus on a button that opens a dialog; Space is play/pause.
	do(t, ctx, "focus Create incident", chromedp.Focus(chromedp.CSS(`[data-testid=pb-incident]`)))
	if !eval[bool](t, ctx, `document.activeElement === document.querySelector('[data-testid=pb-incident]') && !document.activeElement.disabled`) {
		t.Fatal("the Create incident button is not focused and enabled")
	}
	do(t, ctx, "press Space", chromedp.KeyEvent(" "))
	waitFor(t, ctx, "playing after Space", `document.querySelector('[data-testid=pb-play]').dataset.playing === 'true'`, 5*time.Second)
	if !eval[bool](t, ctx, noDialog) {
		shot(t, ctx, "FAILED-"+t.Name())
		t.Fatal("Space on the focused Create incident button opened a dialog")
	}
	do(t, ctx, "press Space again", chromedp.KeyEvent(" "))
	waitFor(t, ctx, "paused after Space", `document.querySelector('[data-testid=pb-play]').dataset.playing === 'false'`, 5*time.Second)
	if !eval[bool](t, ctx, noDialog) || playing() {
		t.Fatal("the second Space opened a dialog or did not pause")
	}

	// "." steps one frame forward.
	before := readout(t, ctx)
	do(t, ctx, "press .", chromedp.KeyEvent("."))
	waitFor(t, ctx, "a frame step", `!document.querySelector('[data-testid=pb-videos]').dataset.stepping`, 10*time.Second)
	if d := readout(t, ctx).Sub(before); d < 20*time.Millisecond || d > 100*time.Millisecond {
		t.Fatalf("one frame forward moved the readout by %s", d)
	}

	// L: 10 s later.
	before = readout(t, ctx)
	do(t, ctx, "press L", chromedp.KeyEvent("l"))
	waitFor(t, ctx, "the jump", `Math.abs(Date.parse(new URL(document.querySelector('`+pbVideo+`').src).searchParams.get('start')) - Date.parse(`+jsString(rfc(before.Add(10*time.Second)))+`)) < 50`, 10*time.Second)
	waitVideoReady(t, ctx)
	if got := srcStart(t, ctx); !near(got, before.Add(10*time.Second), 50*time.Millisecond) {
		t.Fatalf("after L the playback starts at %s, want %s", rfc(got), rfc(before.Add(10*time.Second)))
	}

	// ]: faster.
	do(t, ctx, "press ]", chromedp.KeyEvent("]"))
	if v := eval[string](t, ctx, `document.querySelector('[data-testid=pb-speed]').value`); v != "2" {
		t.Fatalf("speed after ] is %s×, want 2×", v)
	}

	// →: the next camera.
	do(t, ctx, "press →", chromedp.KeyEvent(kb.ArrowRight))
	waitFor(t, ctx, "another camera", `!location.hash.includes('camera=cam-01&') && document.querySelectorAll('[data-testid=pb-cell]').length === 1`, 10*time.Second)

	// Typing in a field: the keys stay there.
	do(t, ctx, "type into the day field", chromedp.Focus(chromedp.CSS(`[data-testid=pb-camera-select]`)), chromedp.KeyEvent(" "))
	if playing() {
		t.Fatal("Space in a select started playback")
	}

	// ?: the help, listing the page's shortcuts; Esc closes it.
	do(t, ctx, "press ?", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`), chromedp.KeyEvent("?"))
	waitFor(t, ctx, "the help", `document.querySelector('[data-testid=keys-help]')?.open`, 5*time.Second)
	rows := eval[string](t, ctx, `[...document.querySelectorAll('[data-testid=keys-table] tr')].map((r) => r.dataset.action).join(' ')`)
	for _, a := range []string{"playPause", "step", "speed", "jump", "camera", "fullscreen"} {
		if !strings.Contains(rows, a) {
			t.Errorf("the help does not list %s: %s", a, rows)
		}
	}
	if strings.Contains(rows, "layout") {
		t.Errorf("the playback help lists the wall's layout keys: %s", rows)
	}
	shot(t, ctx, "keys-help")
	// While the help is open, Space does not play.
	do(t, ctx, "press Space in the help", chromedp.KeyEvent(" "))
	if playing() {
		t.Fatal("Space behind the help dialog started playback")
	}
	do(t, ctx, "press Esc", chromedp.KeyEvent(kb.Escape))
	waitFor(t, ctx, "the help closed", noDialog, 5*time.Second)
}

// TestKeyboardWall: digits pick the wall's grid, → moves the focus from
// tile to tile, Enter opens the focused tile's large view and → there
// moves it to the next camera; Space on the focused "Pick cameras" button
// opens no dialog; digits typed into the search stay there.
func TestKeyboardWall(t *testing.T) {
	ctx := adminTab(t, "/wall")
	waitFor(t, ctx, "the wall's tiles", `document.querySelectorAll('[data-testid=tile]').length > 0`, 20*time.Second)
	// digit n picks the n-th grid button
	grids := eval[[]string](t, ctx, `[...document.querySelectorAll('button[data-layout]')].map((b) => b.dataset.layout)`)
	if len(grids) < 4 || grids[1] != "4" || !strings.Contains(strings.Join(grids, " "), "9") {
		t.Fatalf("the wall's grid buttons: %v", grids)
	}
	do(t, ctx, "press 2", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`), chromedp.KeyEvent("2"))
	waitFor(t, ctx, "the 4-tile grid", `document.querySelector('[data-testid=wall-grid]').dataset.layout === '4'`, 5*time.Second)
	nine := fmt.Sprint(slices.Index(grids, "9") + 1)
	do(t, ctx, "press "+nine, chromedp.KeyEvent(nine))
	waitFor(t, ctx, "the 9-tile grid", `document.querySelector('[data-testid=wall-grid]').dataset.layout === '9'`, 5*time.Second)

	do(t, ctx, "type into the search", chromedp.Focus(chromedp.CSS(`[data-testid=camera-search]`)), chromedp.KeyEvent("1"))
	waitFor(t, ctx, "the search applied", `!document.querySelector('[data-testid=wall-summary]').textContent.includes('16')`, 5*time.Second)
	if l := eval[string](t, ctx, `document.querySelector('[data-testid=wall-grid]').dataset.layout`); l != "9" {
		t.Fatalf("a digit typed into the search changed the grid to %s", l)
	}
	do(t, ctx, "clear the search", chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('[data-testid=camera-search]'); s.value = ''; s.dispatchEvent(new Event('input')); s.blur(); })()`))
	waitFor(t, ctx, "every camera again", `document.querySelectorAll('[data-testid=tile]').length === 9 && document.querySelector('[data-testid=wall-summary]').textContent.includes('16')`, 5*time.Second)

	do(t, ctx, "focus Pick cameras and press Space", chromedp.Focus(chromedp.CSS(`[data-testid=camera-picker]`)), chromedp.KeyEvent(" "))
	if !eval[bool](t, ctx, noDialog) {
		shot(t, ctx, "FAILED-"+t.Name())
		t.Fatal("Space on the focused Pick cameras button opened the picker")
	}

	do(t, ctx, "press →", chromedp.KeyEvent(kb.ArrowRight))
	do(t, ctx, "press → again", chromedp.KeyEvent(kb.ArrowRight))
	tiles := eval[[]string](t, ctx, `[...document.querySelectorAll('[data-testid=tile]')].map((x) => x.dataset.cameraId)`)
	focused := eval[string](t, ctx, `document.activeElement?.dataset?.cameraId || ''`)
	if len(tiles) < 2 || focused != tiles[1] {
		t.Fatalf("after → → the focus is on %q, want the second tile %q (%v)", focused, tiles[1], tiles)
	}
	do(t, ctx, "Enter opens the large view", chromedp.KeyEvent(kb.Enter))
	waitFor(t, ctx, "the large view", `document.querySelector('[data-testid=focus-view]')?.dataset.cameraId === `+jsString(tiles[1]), 5*time.Second)
	do(t, ctx, "→ in the large view", chromedp.KeyEvent(kb.ArrowRight))
	waitFor(t, ctx, "the next camera's large view", `document.querySelector('[data-testid=focus-view]')?.dataset.cameraId === `+jsString(tiles[2]), 5*time.Second)
	do(t, ctx, "Esc closes it", chromedp.KeyEvent(kb.Escape))
	waitFor(t, ctx, "no large view", `document.querySelector('[data-testid=focus-view]') === null`, 5*time.Second)
}
