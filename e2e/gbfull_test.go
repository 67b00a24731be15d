package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"

	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/gb28181/gbsim"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// The whole GB/T 28181 path in a browser: a simulated device (gbsim)
// registers with digest, its channels become cameras, a channel plays live
// on the wall (the delay from the click to the first frame is reported),
// PTZ from the large view reaches the device as the right PTZCmd bytes,
// and the device's alarm is marked on the playback timeline.
func TestGB28181DeviceOnTheWall(t *testing.T) {
	a := gbVigil(t, func(cfg *config.Config) { cfg.GB28181.MediaPort = 0 })
	base := "http://" + a.Addr()
	admin, err := login(base, "admin", adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	const dev, dome, gate = "44011300001320000051", "44011300001310000051", "44011300001310000052"
	if _, err := admin.do("POST", "/api/v1/gb28181/devices", map[string]string{"id": dev, "name": "Riverside NVR", "department": "police", "password": "nvr-pw-51"}, http.StatusCreated); err != nil {
		t.Fatal(err)
	}
	sipAddr, _ := a.GB28181Addr()
	gbcfg := config.Default().GB28181
	d, err := gbsim.Start(context.Background(), gbsim.Config{ID: dev, Password: "nvr-pw-51", Server: sipAddr, ServerID: gbcfg.ID,
		LocalIP: "127.0.0.1", Keepalive: 10 * time.Second,
		Channels: []gbsim.Channel{{ID: dome, Name: "Dome", PTZ: true}, {ID: gate, Name: "Gate"}}, Log: testkit.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	select {
	case <-d.Registered():
	case <-time.After(30 * time.Second):
		t.Fatal("the simulated device did not register")
	}
	testkit.WaitFor(t, 30*time.Second, "the device's channels as cameras", func() bool {
		b, err := admin.do("GET", "/api/v1/cameras", nil, http.StatusOK)
		if err != nil {
			return false
		}
		var cams []struct {
			ID      string
			Source  string
			GB28181 *struct{ PTZ bool }
		}
		if json.Unmarshal(b, &cams) != nil {
			return false
		}
		var ids []string
		for _, c := range cams {
			if c.Source == "gb28181" && c.GB28181 != nil && (c.ID != "gb-"+dome || c.GB28181.PTZ) {
				ids = append(ids, c.ID)
			}
		}
		slices.Sort(ids)
		return slices.Equal(ids, []string{"gb-" + dome, "gb-" + gate})
	})

	// Live: the wall plays both channels; then the large view of the dome,
	// opened by a double-click, several times: click → first frame.
	opened := time.Now()
	ctx := tabAt(t, base, "/wall")
	tile := `[data-testid=tile][data-camera-id="gb-` + dome + `"]`
	waitFor(t, ctx, "the dome playing on the wall", `document.querySelector('`+tile+`[data-player=playing]') !== null`, 60*time.Second)
	t.Logf("log in and open the wall → the GB/T 28181 tile plays (its stream already recording): %s", time.Since(opened).Round(time.Millisecond))
	framesAdvance(t, ctx, tile+` video`, 1, 10, 30*time.Second)
	shot(t, ctx, "65-gb28181-wall")
	do(t, ctx, "watch for the large view's first frame", chromedp.Evaluate[chromedp.Void](`(() => {
	  window.__ff = [];
	  document.addEventListener('dblclick', () => { window.__click = performance.now(); }, true);
	  new MutationObserver(() => {
	    const v = document.querySelector('[data-testid=focus-view] video');
	    if (!v || v.__watched) return;
	    v.__watched = true;
	    const at = window.__click;
	    v.requestVideoFrameCallback((now) => window.__ff.push(now - at));
	  }).observe(document.body, { childList: true, subtree: true });
	})()`))
	const rounds = 5
	for i := range rounds {
		do(t, ctx, "open the dome's large view", chromedp.DoubleClick(chromedp.CSS(tile)))
		waitFor(t, ctx, "its first frame", fmt.Sprintf(`window.__ff.length === %d`, i+1), 30*time.Second)
		if i < rounds-1 {
			do(t, ctx, "close it", chromedp.Click(chromedp.CSS(`[data-testid=focus-close]`)))
			waitFor(t, ctx, "the tile back", `document.querySelector('[data-testid=focus-view]') === null`, 10*time.Second)
		}
	}
	ff := eval[[]float64](t, ctx, `window.__ff`)
	slices.Sort(ff)
	median := time.Duration(ff[len(ff)/2] * float64(time.Millisecond))
	t.Logf("click → first frame of a GB/T 28181 camera's large view, %d times: median %s, min %s, max %s (ms: %v)", len(ff),
		median.Round(time.Millisecond), time.Duration(ff[0]*1e6).Round(time.Millisecond), time.Duration(ff[len(ff)-1]*1e6).Round(time.Millisecond), ff)
	if median > 5*time.Second {
		t.Errorf("median click → first frame %s", median)
	}

	// Cold: a channel nothing needs (not recorded, not shown, its stream
	// idle) shown by a search on the wall — the INVITE, the first RTP, the
	// PS demuxer and the first key frame all lie between the typing and the
	// first frame.
	if _, err := admin.do("PUT", "/api/v1/cameras/gb-"+gate, map[string]any{"name": "Gate", "department": "police", "record": false, "enabled": true}, http.StatusOK); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "close the large view", chromedp.Click(chromedp.CSS(`[data-testid=focus-close]`)))
	do(t, ctx, "watch for the gate tile's first frame", chromedp.Evaluate[chromedp.Void](`(() => {
	  window.__cold = [];
	  new MutationObserver(() => {
	    const v = document.querySelector('[data-testid=tile][data-camera-id="gb-`+gate+`"] video');
	    if (!v || v.__watched || window.__typed === undefined) return; // a tile from before the search
	    v.__watched = true;
	    const at = window.__typed;
	    window.__typed = undefined;
	    v.requestVideoFrameCallback((now) => window.__cold.push(now - at));
	  }).observe(document.body, { childList: true, subtree: true });
	})()`))
	const coldRounds = 3
	for i := range coldRounds {
		do(t, ctx, "show the dome only", setText(`[data-testid=camera-search]`, "Dome"))
		waitFor(t, ctx, "the gate tile gone", `document.querySelector('[data-testid=tile][data-camera-id="gb-`+gate+`"]') === null`, 10*time.Second)
		testkit.WaitFor(t, 60*time.Second, "the gate's stream idle", func() bool {
			b, err := admin.do("GET", "/api/v1/cameras/gb-"+gate+"/status", nil, http.StatusOK)
			var st struct{ State string }
			return err == nil && json.Unmarshal(b, &st) == nil && st.State == "idle"
		})
		do(t, ctx, "search the gate", chromedp.Evaluate[chromedp.Void](`window.__typed = performance.now()`), setText(`[data-testid=camera-search]`, "Gate"))
		waitFor(t, ctx, "the gate's first frame", fmt.Sprintf(`window.__cold.length === %d`, i+1), 30*time.Second)
	}
	cold := eval[[]float64](t, ctx, `window.__cold`)
	slices.Sort(cold)
	t.Logf("search → first frame of an idle GB/T 28181 channel (INVITE and all), %d times: median %s (ms: %v)", len(cold),
		time.Duration(cold[len(cold)/2]*1e6).Round(time.Millisecond), cold)
	do(t, ctx, "show both", setText(`[data-testid=camera-search]`, ""))
	do(t, ctx, "reopen the dome", chromedp.DoubleClick(chromedp.CSS(tile)))

	// PTZ: the right arrow held, then released, reaches the device as the
	// 8-byte PTZCmd: A5 0F 01, right (01), pan speed 0x80 (0.5), tilt 0,
	// zoom 0, checksum 0x36; then the stop, checksum 0xB5.
	waitFor(t, ctx, "the PTZ controls", `document.querySelector('[data-testid=ptz][data-camera-id="gb-`+dome+`"]') !== null`, 10*time.Second)
	pressKey(t, ctx, input.DispatchKeyEventTypeRawKeyDown, "ArrowRight", 39)
	time.Sleep(1200 * time.Millisecond)
	pressKey(t, ctx, input.DispatchKeyEventTypeKeyUp, "ArrowRight", 39)
	var got []gbsim.PTZReceived
	deadline := time.After(15 * time.Second)
	for len(got) == 0 || got[len(got)-1].Pan != 0 {
		select {
		case p := <-d.PTZ():
			got = append(got, p)
		case <-deadline:
			t.Fatalf("the device received %+v, no stop", got)
		}
	}
	if first := got[0]; first.Channel != dome || !strings.EqualFold(first.Raw, "A50F010180000036") || first.Err != nil {
		t.Errorf("the move reached the device as %+v, want A50F010180000036 on %s", first, dome)
	}
	if last := got[len(got)-1]; last.Channel != dome || !strings.EqualFold(last.Raw, "A50F0100000000B5") {
		t.Errorf("the stop reached the device as %+v, want A50F0100000000B5", last)
	}
	t.Logf("PTZ at the device: %d commands for 1.2 s held (%s … %s)", len(got), got[0].Raw, got[len(got)-1].Raw)

	// The device's alarm on the dome's timeline.
	before := time.Now().Add(-time.Second)
	if err := d.SendAlarm(context.Background(), dome, 1, 5, "区域入侵 intrusion at the dome"); err != nil {
		t.Fatal(err)
	}
	pctx := tabAt(t, base, "/playback?camera=gb-"+dome+"&t="+rfc(before.Add(-30*time.Second)))
	waitFor(t, pctx, "the alarm on the timeline", `[...document.querySelectorAll('[data-testid=timeline-event][data-type=alarm]')].some((e) => e.title.includes('intrusion at the dome'))`, 30*time.Second)
	shot(t, pctx, "66-gb28181-alarm")
}
