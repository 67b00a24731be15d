package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/vigil-vms/vigil/app/config"
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
// an arrow key, a button or + / −, sends the move, repeats it while held
// and stops on release, and the device (a raw SIP peer registered here)
// gets each movement as its PTZCmd bytes, once. A camera without PTZ has
// no controls; a device that is gone makes the controls say why, and the
// move is not repeated.
func TestPTZControls(t *testing.T) {
	a := gbVigil(t, nil)
	base := "http://" + a.Addr()
	admin, err := login(base, "admin", adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	const dev = "44011300001180000001"
	const ptzCam, fixedCam = "gb-44011300001310000001", "gb-44011300001310000002"
	if _, err := admin.do("POST", "/api/v1/gb28181/devices", map[string]string{"id": dev, "name": "Dome NVR", "department": "police", "password": "dome-pw"}, http.StatusCreated); err != nil {
		t.Fatal(err)
	}
	for _, c := range []ingest.Camera{
		{ID: ptzCam, Name: "Dome 1", GB28181: &ingest.GBChannel{Device: dev, Channel: "44011300001310000001", PTZ: true}},
		{ID: fixedCam, Name: "Fixed 2", GB28181: &ingest.GBChannel{Device: dev, Channel: "44011300001310000002"}},
	} {
		c.Department, c.Source, c.Enabled = "police", ingest.SourceGB28181, true
		if _, err := a.Registry.CreateCamera(context.Background(), c); err != nil {
			t.Fatal(err)
		}
	}
	sipAddr, _ := a.GB28181Addr()
	gbcfg := config.Default().GB28181
	d := newSIPDevice(t, dev, sipAddr, gbcfg.Realm, gbcfg.ID)
	if code := d.registerWithDigest(t, "dome-pw"); code != 200 {
		t.Fatalf("REGISTER: %d", code)
	}
	atDevice := d.serve(t)
	// received takes what the device got until the stop (…00000000B5).
	received := func(what string) []string {
		t.Helper()
		var got []string
		for {
			select {
			case c := <-atDevice:
				got = append(got, c)
				if c == "A50F0100000000B5" {
					return got
				}
			case <-time.After(15 * time.Second):
				t.Fatalf("%s: the device got %v and no stop", what, got)
			}
		}
	}
	// checkDevice: the movement once, then the stop (a loaded machine
	// may let the 1 s hold lapse between two repeats: the move again).
	checkDevice := func(what string, got []string, move string) {
		t.Helper()
		for i, c := range got[:len(got)-1] {
			if c != move && !(i > 0 && c == "A50F0100000000B5") {
				t.Errorf("%s: the device got %v, want %s then the stop", what, got, move)
				return
			}
		}
		if len(got) != 2 {
			t.Logf("%s: the device got %v (the hold lapsed between repeats)", what, got)
		}
	}

	ctx := tabAt(t, base, "/wall")
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

	// Hold the right arrow key: pan right at 0.5 (the speed slider's
	// default) is A5 0F 01 | 01 (right) | 80 | 00 | 00 | 36 (checksum).
	const hold = 1300 * time.Millisecond
	pressKey(t, ctx, input.DispatchKeyEventTypeRawKeyDown, "ArrowRight", 39)
	waitFor(t, ctx, "the move shown", `document.querySelector('[data-testid=ptz]').dataset.moving === 'right'`, 5*time.Second)
	time.Sleep(hold) // the key is held
	pressKey(t, ctx, input.DispatchKeyEventTypeKeyUp, "ArrowRight", 39)
	waitFor(t, ctx, "the stop", `document.querySelector('[data-testid=ptz]').dataset.moving === undefined`, 5*time.Second)
	testkit.WaitFor(t, 10*time.Second, "the stop request", func() bool { r := sent(); return len(r) > 0 && r[len(r)-1].Pan == 0 })
	keyCmds := sent()
	checkHeld(t, "the right arrow", keyCmds, ptzCam, 0.5, 0, 0, hold)
	checkDevice("the right arrow", received("the right arrow"), "A50F010180000036")

	// Hold the zoom-in button with the mouse, at full speed: zoom in (10),
	// zoom speed 15 in the high nibble (F0), checksum B5.
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
	checkDevice("the zoom-in button", received("the zoom-in button"), "A50F01100000F0B5")

	// + zooms in (Shift+= on most keyboards), − out (20, checksum C5).
	n0 := len(sent())
	pressKeyCode(t, ctx, input.DispatchKeyEventTypeRawKeyDown, "+", "Equal", 187, 8)
	waitFor(t, ctx, "the zoom shown", `document.querySelector('[data-testid=ptz]').dataset.moving === 'zoom-in'`, 5*time.Second)
	pressKeyCode(t, ctx, input.DispatchKeyEventTypeKeyUp, "+", "Equal", 187, 8)
	checkDevice("+", received("+"), "A50F01100000F0B5")
	pressKeyCode(t, ctx, input.DispatchKeyEventTypeRawKeyDown, "-", "Minus", 189, 0)
	waitFor(t, ctx, "the zoom out shown", `document.querySelector('[data-testid=ptz]').dataset.moving === 'zoom-out'`, 5*time.Second)
	pressKeyCode(t, ctx, input.DispatchKeyEventTypeKeyUp, "-", "Minus", 189, 0)
	checkDevice("−", received("−"), "A50F01200000F0C5")
	testkit.WaitFor(t, 10*time.Second, "+ and − sent", func() bool { return len(sent()) >= n0+4 })
	if r := sent()[n0:]; r[0].Zoom != 1 || r[1].Zoom != 0 || r[2].Zoom != -1 || r[3].Zoom != 0 {
		t.Errorf("+ then −: %+v", r)
	}
	if n := eval[bool](t, ctx, `document.querySelector('[data-testid=ptz-error]').hidden`); !n {
		t.Errorf("the controls show an error although the device took every command")
	}

	// The device is deleted: the controls say why, and the move is sent
	// once, not repeated.
	if _, err := admin.do("DELETE", "/api/v1/gb28181/devices/"+dev, nil, http.StatusNoContent); err != nil {
		t.Fatal(err)
	}
	n1 := len(sent())
	pressKey(t, ctx, input.DispatchKeyEventTypeRawKeyDown, "ArrowUp", 38)
	waitFor(t, ctx, "the device's absence shown", `(() => { const e = document.querySelector('[data-testid=ptz-error]'); return !e.hidden && e.textContent.length > 0; })()`, 10*time.Second)
	time.Sleep(hold)
	pressKey(t, ctx, input.DispatchKeyEventTypeKeyUp, "ArrowUp", 38)
	shot(t, ctx, "63-ptz-error")
	testkit.WaitFor(t, 10*time.Second, "the stop", func() bool { r := sent(); return len(r) > n1 && r[len(r)-1].Tilt == 0 })
	if r := sent()[n1:]; len(r) != 2 || r[0].Tilt != 1 {
		t.Errorf("a move the device cannot take was sent as %+v, want once and a stop", r)
	}

	// Closing the view with a key held still stops it.
	pressKey(t, ctx, input.DispatchKeyEventTypeRawKeyDown, "ArrowLeft", 37)
	waitFor(t, ctx, "the move shown", `document.querySelector('[data-testid=ptz]').dataset.moving === 'left'`, 5*time.Second)
	n2 := len(sent())
	do(t, ctx, "close the view", chromedp.Click(chromedp.CSS(`[data-testid=focus-close]`)))
	testkit.WaitFor(t, 10*time.Second, "the stop at close", func() bool { r := sent(); return len(r) > n2 && r[len(r)-1].Pan == 0 })
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
