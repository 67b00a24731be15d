package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// ptzRequest is a PTZ command as the browser sent it.
type ptzRequest struct {
	at              time.Time
	camera          string
	Pan, Tilt, Zoom float64
}

// ptzRequests records the PTZ commands the tab sends (as the browser puts
// them on the wire), until the test ends.
func ptzRequests(t *testing.T, ctx context.Context) func() []ptzRequest {
	t.Helper()
	ectx, cancel := context.WithCancel(ctx)
	var mu sync.Mutex
	var out []ptzRequest
	done := make(chan struct{})
	events := chromedp.Events(ectx, network.RequestWillBeSent)
	go func() {
		defer close(done)
		for ev, err := range events {
			if err != nil {
				return
			}
			r := ev.Request
			if r == nil || r.Method != "POST" || !strings.HasSuffix(r.URL, "/ptz") {
				continue
			}
			var body []byte
			for _, e := range r.PostDataEntries {
				body = append(body, e.Bytes...)
			}
			p := ptzRequest{at: time.Now(), camera: strings.TrimSuffix(r.URL[strings.LastIndex(r.URL, "/cameras/")+len("/cameras/"):], "/ptz")}
			if err := json.Unmarshal(body, &p); err != nil {
				p.camera += " (unreadable body " + string(body) + ")"
			}
			mu.Lock()
			out = append(out, p)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return func() []ptzRequest {
		mu.Lock()
		defer mu.Unlock()
		return append([]ptzRequest(nil), out...)
	}
}

// checkHeld checks the commands of one hold of a control: the move, repeated
// while held (about every 400 ms), then a stop.
func checkHeld(t *testing.T, what string, got []ptzRequest, camera string, pan, tilt, zoom float64, held time.Duration) {
	t.Helper()
	if len(got) < 3 {
		t.Fatalf("%s: %d commands, want the move, its repeats and a stop: %+v", what, len(got), got)
	}
	moves, stop := got[:len(got)-1], got[len(got)-1]
	for i, m := range moves {
		if m.camera != camera || m.Pan != pan || m.Tilt != tilt || m.Zoom != zoom {
			t.Errorf("%s: command %d is %+v, want pan %v tilt %v zoom %v on %s", what, i, m, pan, tilt, zoom, camera)
		}
		if i > 0 {
			if gap := m.at.Sub(moves[i-1].at); gap > 900*time.Millisecond {
				t.Errorf("%s: %s between two repeats: the server's 1 s hold would stop the camera", what, gap)
			}
		}
	}
	// held for `held`: a repeat every 400 ms (a loaded machine may skip some)
	if min := int(held/(400*time.Millisecond)) - 1; len(moves)-1 < min {
		t.Errorf("%s: %d repeats while held for %s, want at least %d", what, len(moves)-1, held, min)
	}
	if stop.camera != camera || stop.Pan != 0 || stop.Tilt != 0 || stop.Zoom != 0 {
		t.Errorf("%s: the last command is %+v, want a stop", what, stop)
	}
}

// The large view of a GB/T 28181 camera with PTZ has the controls; holding
// an arrow key, or a button, sends the move, repeats it while held and
// stops on release. A camera without PTZ has none.
func TestPTZControls(t *testing.T) {
	a := gbVigil(t, nil)
	ctx0 := context.Background()
	const ptzCam, fixedCam = "gb-44011300001310000001", "gb-44011300001310000002"
	for _, c := range []ingest.Camera{
		{ID: ptzCam, Name: "Dome 1", GB28181: &ingest.GBChannel{Device: "44011300001180000001", Channel: "44011300001310000001", PTZ: true}},
		{ID: fixedCam, Name: "Fixed 2", GB28181: &ingest.GBChannel{Device: "44011300001180000001", Channel: "44011300001310000002"}},
	} {
		c.Department, c.Source, c.Enabled = "police", ingest.SourceGB28181, true
		if _, err := a.Registry.CreateCamera(ctx0, c); err != nil {
			t.Fatal(err)
		}
	}
	ctx := tabAt(t, "http://"+a.Addr(), "/wall")
	sent := ptzRequests(t, ctx)
	tile := func(id string) string { return `[data-testid=tile][data-camera-id="` + id + `"]` }
	waitFor(t, ctx, "both GB cameras on the wall, marked", `document.querySelectorAll('[data-testid=tile] [data-testid=source-badge][data-source=gb28181]').length === 2`, 15*time.Second)

	// The fixed camera's large view has no controls.
	do(t, ctx, "open the fixed camera", chromedp.DoubleClick(chromedp.CSS(tile(fixedCam))))
	waitFor(t, ctx, "its large view", `document.querySelector('[data-testid=focus-view][data-camera-id="`+fixedCam+`"]') !== null`, 10*time.Second)
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid=ptz]').length`); n != 0 {
		t.Fatalf("a camera without PTZ shows %d PTZ controls", n)
	}
	do(t, ctx, "close it", chromedp.Click(chromedp.CSS(`[data-testid=focus-close]`)))

	do(t, ctx, "open the PTZ camera", chromedp.DoubleClick(chromedp.CSS(tile(ptzCam))))
	waitFor(t, ctx, "the PTZ controls", `document.querySelector('[data-testid=focus-view] [data-testid=ptz][data-camera-id="`+ptzCam+`"] [data-testid=ptz-zoom-in]') !== null`, 10*time.Second)
	shot(t, ctx, "62-ptz-controls")

	// Hold the right arrow key.
	const hold = 1300 * time.Millisecond
	pressKey(t, ctx, input.DispatchKeyEventTypeRawKeyDown, "ArrowRight", 39)
	waitFor(t, ctx, "the move shown", `document.querySelector('[data-testid=ptz]').dataset.moving === 'right'`, 5*time.Second)
	time.Sleep(hold) // the key is held
	pressKey(t, ctx, input.DispatchKeyEventTypeKeyUp, "ArrowRight", 39)
	waitFor(t, ctx, "the stop", `document.querySelector('[data-testid=ptz]').dataset.moving === undefined`, 5*time.Second)
	testkit.WaitFor(t, 10*time.Second, "the stop request", func() bool { r := sent(); return len(r) > 0 && r[len(r)-1].Pan == 0 })
	keyCmds := sent()
	checkHeld(t, "the right arrow", keyCmds, ptzCam, 0.5, 0, 0, hold)

	// Hold the zoom-in button with the mouse, at full speed.
	do(t, ctx, "full speed", setText(`[data-testid=ptz-speed]`, "1"))
	pos := eval[[]float64](t, ctx, `(() => { const r = document.querySelector('[data-testid=ptz-zoom-in]').getBoundingClientRect(); return [r.x + r.width / 2, r.y + r.height / 2]; })()`)
	do(t, ctx, "press zoom in", chromedp.MouseEvent(chromedp.MousePressed, pos[0], pos[1], chromedp.ButtonLeft, chromedp.ClickCount(1)))
	waitFor(t, ctx, "the zoom shown", `document.querySelector('[data-testid=ptz]').dataset.moving === 'zoom-in'`, 5*time.Second)
	time.Sleep(hold)
	do(t, ctx, "release it", chromedp.MouseEvent(chromedp.MouseReleased, pos[0], pos[1], chromedp.ButtonLeft, chromedp.ClickCount(1)))
	testkit.WaitFor(t, 10*time.Second, "the stop request", func() bool {
		r := sent()
		return len(r) > len(keyCmds) && r[len(r)-1].Zoom == 0 && r[len(r)-1].Pan == 0
	})
	checkHeld(t, "the zoom-in button", sent()[len(keyCmds):], ptzCam, 0, 0, 1, hold)

	// + zooms in (Shift+= on most keyboards), − out.
	n0 := len(sent())
	pressKeyCode(t, ctx, input.DispatchKeyEventTypeRawKeyDown, "+", "Equal", 187, 8)
	waitFor(t, ctx, "the zoom shown", `document.querySelector('[data-testid=ptz]').dataset.moving === 'zoom-in'`, 5*time.Second)
	pressKeyCode(t, ctx, input.DispatchKeyEventTypeKeyUp, "+", "Equal", 187, 8)
	pressKeyCode(t, ctx, input.DispatchKeyEventTypeRawKeyDown, "-", "Minus", 189, 0)
	waitFor(t, ctx, "the zoom out shown", `document.querySelector('[data-testid=ptz]').dataset.moving === 'zoom-out'`, 5*time.Second)
	pressKeyCode(t, ctx, input.DispatchKeyEventTypeKeyUp, "-", "Minus", 189, 0)
	testkit.WaitFor(t, 10*time.Second, "+ and − sent", func() bool { return len(sent()) >= n0+4 })
	if r := sent()[n0:]; r[0].Zoom != 1 || r[1].Zoom != 0 || r[2].Zoom != -1 || r[3].Zoom != 0 {
		t.Errorf("+ then −: %+v", r)
	}

	// No device takes the commands here (none registered): the controls
	// say why.
	waitFor(t, ctx, "the device's refusal shown", `(() => { const e = document.querySelector('[data-testid=ptz-error]'); return !e.hidden && e.textContent.length > 0; })()`, 10*time.Second)
	shot(t, ctx, "63-ptz-error")
	// Closing the view with a key held still stops it.
	pressKey(t, ctx, input.DispatchKeyEventTypeRawKeyDown, "ArrowUp", 38)
	waitFor(t, ctx, "the move shown", `document.querySelector('[data-testid=ptz]').dataset.moving === 'up'`, 5*time.Second)
	n := len(sent())
	do(t, ctx, "close the view", chromedp.Click(chromedp.CSS(`[data-testid=focus-close]`)))
	testkit.WaitFor(t, 10*time.Second, "the stop at close", func() bool { r := sent(); return len(r) > n && r[len(r)-1].Tilt == 0 })
	if last := sent()[len(sent())-1]; last.Pan != 0 || last.Tilt != 0 || last.Zoom != 0 {
		t.Fatalf("after close the last command is %+v", last)
	}
}

// pressKey sends one event of a key whose code is its name (down without
// up holds the key).
func pressKey(t *testing.T, ctx context.Context, typ input.DispatchKeyEventType, key string, vk int64) {
	t.Helper()
	pressKeyCode(t, ctx, typ, key, key, vk, 0)
}

// pressKeyCode sends one key event with modifiers (8: Shift).
func pressKeyCode(t *testing.T, ctx context.Context, typ input.DispatchKeyEventType, key, code string, vk, modifiers int64) {
	t.Helper()
	p := input.DispatchKeyEventParams{Type: typ, Key: key, Code: code, WindowsVirtualKeyCode: vk, Modifiers: modifiers}
	if _, err := chromedp.Call(ctx, input.DispatchKeyEvent, p); err != nil {
		t.Fatalf("key %s %s: %v", key, typ, err)
	}
}
