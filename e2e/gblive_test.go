package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-vms/vigil/gb28181/gbsim"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// A GB/T 28181 camera plays live in the browser: with the camera idle
// (not recorded, nobody watching), opening the wall (the click) starts
// it — INVITE, first RTP, key frame request, WebRTC — and the first frame's
// delay from the click is measured over five rounds (median ≤ 1 s).
func TestGB28181LiveFirstFrame(t *testing.T) {
	a := gbVigil(t, nil)
	base := "http://" + a.Addr()
	api, err := login(base, "admin", adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	const dev, ch = "44011300001180000031", "44011300001310000031"
	cam := "gb-" + ch
	if _, err := api.do("POST", "/api/v1/gb28181/devices", map[string]string{"id": dev, "name": "NVR", "department": "police"}, http.StatusCreated); err != nil {
		t.Fatal(err)
	}
	udp, _ := a.GB28181Addr()
	d, err := gbsim.Start(context.Background(), gbsim.Config{ID: dev, Password: "default-device-pw", Server: udp, LocalIP: "127.0.0.1",
		Channels: []gbsim.Channel{{ID: ch, Name: "River gate"}}, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	var body []byte
	testkit.WaitFor(t, 20*time.Second, "the channel as a camera", func() bool {
		body, err = api.do("GET", "/api/v1/cameras/"+cam, nil, http.StatusOK)
		return err == nil
	})
	// not recorded: only a viewer invites it
	var c map[string]any
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	c["record"] = false
	if _, err := api.do("PUT", "/api/v1/cameras/"+cam, c, http.StatusOK); err != nil {
		t.Fatal(err)
	}
	var state string
	idle := func() bool {
		b, err := api.do("GET", "/api/v1/cameras/"+cam+"/status", nil, http.StatusOK)
		var st struct{ State string }
		if err == nil && json.Unmarshal(b, &st) == nil {
			state = st.State
		}
		return state == "idle"
	}

	ctx := tabAt(t, base, "/health")
	st, _ := json.Marshal(wallState{Layout: 1, Selected: []string{cam}})
	do(t, ctx, "one tile of the GB camera",
		chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`localStorage.setItem('vigil.wall', %s)`, jsString(string(st)))))
	// the first frame the tile's video presents, in ms since the document's
	// navigation began (the click)
	const firstFrame = `new Promise((resolve) => {
	  const hook = () => {
	    const v = document.querySelector('[data-testid=tile] video');
	    if (v) { v.requestVideoFrameCallback((now) => resolve(now)); return; }
	    setTimeout(hook, 5);
	  };
	  hook();
	})`
	var delays []time.Duration
	for round := range 5 {
		testkit.WaitFor(t, 30*time.Second, "the camera idle", idle)
		// a new document (the query differs), so that its clock starts at the click
		do(t, ctx, "open the wall", chromedp.Navigate(fmt.Sprintf("%s/?round=%d#/wall", base, round)))
		ms := eval[float64](t, ctx, firstFrame)
		d := time.Duration(ms * float64(time.Millisecond))
		delays = append(delays, d)
		waitFor(t, ctx, "the tile playing", `document.querySelector('[data-testid=tile][data-player=playing] video').videoWidth === 1280`, 20*time.Second)
		if round == 0 {
			shot(t, ctx, "64-gb28181-live")
		}
		// leave the wall: the session ends, and the stream idles after the linger
		do(t, ctx, "leave the wall", chromedp.Navigate(fmt.Sprintf("%s/?left=%d#/health", base, round)))
	}
	sorted := slices.Clone(delays)
	slices.Sort(sorted)
	median := sorted[len(sorted)/2]
	var parts []string
	for _, d := range delays {
		parts = append(parts, d.Round(time.Millisecond).String())
	}
	t.Logf("GB/T 28181 live first frame from the click: %s (median %s)", strings.Join(parts, ", "), median.Round(time.Millisecond))
	if median > time.Second {
		t.Errorf("median first frame delay %s, want at most 1 s (%s)", median, strings.Join(parts, ", "))
	}
}
