package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
)

// TestUnmuteAudio records two cameras with AAC audio (camsim --audio) on a
// Vigil of its own, and plays both on the playback page: each cell has a
// speaker button; unmuting one plays its sound (the <video> is unmuted and
// decodes audio while playing), unmuting the other mutes the first. On the
// live wall the same cameras' buttons are disabled: WebRTC cannot carry AAC,
// so the relay sends no audio for them.
func TestUnmuteAudio(t *testing.T) {
	if e2e.skip != "" {
		t.Skip(e2e.skip)
	}
	sim := simcam.Start(t, camsim.Options{Count: 2, Codec: "h264", Audio: true})
	g711 := simcam.Start(t, camsim.Options{Count: 1, Codec: "h264", Audio: true, AudioCodec: camsim.AudioPCMU})
	base := startSecondVigil(t, func(c *config.Config) { c.Recording.Segment = config.Duration(6 * time.Second) }, app.Options{})
	admin, err := login(base, "admin", adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{"aud-1", "aud-2"}
	for i, id := range ids {
		cam := map[string]any{"id": id, "name": "Audio " + id, "department": "police", "mainUrl": sim.URL(i+1, false),
			"transport": "tcp", "record": true, "enabled": true}
		if _, err := admin.do("POST", "/api/v1/cameras", cam, http.StatusCreated); err != nil {
			t.Fatal(err)
		}
	}
	// a live-only camera with G.711 µ-law audio, which WebRTC carries
	if _, err := admin.do("POST", "/api/v1/cameras", map[string]any{"id": "aud-live", "name": "Audio G.711", "department": "police",
		"mainUrl": g711.URL(1, false), "transport": "tcp", "record": false, "enabled": true}, http.StatusCreated); err != nil {
		t.Fatal(err)
	}
	if err := waitOnline(admin, append(ids, "aud-live"), 60*time.Second); err != nil {
		t.Fatal(err)
	}
	var start time.Time
	deadline := time.Now().Add(90 * time.Second)
	for start.IsZero() {
		q := url.Values{"start": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "end": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}}
		ok := 0
		for _, id := range ids {
			b, err := admin.do("GET", "/api/v1/cameras/"+id+"/recordings?"+q.Encode(), nil, http.StatusOK)
			var rec struct {
				Spans []struct{ Start, End time.Time }
			}
			if err == nil && json.Unmarshal(b, &rec) == nil && len(rec.Spans) > 0 && rec.Spans[0].End.Sub(rec.Spans[0].Start) > 10*time.Second {
				ok++
				if s := rec.Spans[0].Start; s.After(start) {
					start = s
				}
			}
		}
		if ok < len(ids) {
			start = time.Time{}
			if time.Now().After(deadline) {
				t.Fatal("the audio cameras recorded no 10 s")
			}
			time.Sleep(time.Second) // polling interval
		}
	}

	ctx := tab(t, true)
	do(t, ctx, "log in to the second Vigil",
		chromedp.Navigate(base+"/#/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-username]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-username]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-password]`), adminPassword),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=current-user]`)))
	do(t, ctx, "open playback", chromedp.Navigate(fmt.Sprintf("%s/#/playback?camera=aud-1,aud-2&t=%s", base, rfc(start.Add(time.Second)))))
	waitFor(t, ctx, "both videos", `[...document.querySelectorAll('`+pbVideo+`')].filter((v) => v.readyState >= 2).length === 2`, 30*time.Second)
	btn := func(id string) string {
		return `document.querySelector('[data-testid=pb-cell][data-camera-id=` + id + `] [data-testid=audio-toggle]')`
	}
	video := func(id string) string {
		return `document.querySelector('[data-testid=pb-cell][data-camera-id=` + id + `] video')`
	}
	waitFor(t, ctx, "the speaker buttons", btn("aud-1")+`.dataset.codec === 'AAC' && !`+btn("aud-1")+`.disabled && !`+btn("aud-1")+`.hidden`, 15*time.Second)
	if !eval[bool](t, ctx, video("aud-1")+`.muted && `+video("aud-2")+`.muted`) {
		t.Fatal("a playback video starts with its sound on")
	}
	do(t, ctx, "unmute aud-1 and play", chromedp.Click(chromedp.CSS(`[data-testid=pb-cell][data-camera-id=aud-1] [data-testid=audio-toggle]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=pb-play]`)))
	if !eval[bool](t, ctx, `!`+video("aud-1")+`.muted && `+video("aud-2")+`.muted && `+btn("aud-1")+`.dataset.audio === 'on'`) {
		t.Fatal("after unmuting aud-1: not exactly aud-1 heard")
	}
	// Receiving: the unmuted video decodes audio as it plays.
	first := eval[float64](t, ctx, video("aud-1")+`.webkitAudioDecodedByteCount`)
	waitFor(t, ctx, "decoded audio", video("aud-1")+`.webkitAudioDecodedByteCount > `+fmt.Sprint(first+4000)+` && !`+video("aud-1")+`.paused`, 20*time.Second)
	shot(t, ctx, "audio-playback")

	do(t, ctx, "unmute aud-2", chromedp.Click(chromedp.CSS(`[data-testid=pb-cell][data-camera-id=aud-2] [data-testid=audio-toggle]`)))
	if !eval[bool](t, ctx, video("aud-1")+`.muted && !`+video("aud-2")+`.muted && `+btn("aud-1")+`.dataset.audio === 'off' && `+btn("aud-2")+`.dataset.audio === 'on'`) {
		t.Fatal("unmuting aud-2 did not mute aud-1: two cameras heard at once")
	}
	do(t, ctx, "M mutes it", chromedp.Evaluate[chromedp.Void](`document.activeElement.blur()`), chromedp.KeyEvent("m"))
	if !eval[bool](t, ctx, video("aud-1")+`.muted && `+video("aud-2")+`.muted`) {
		t.Fatal("M did not mute the camera heard")
	}

	// Live: AAC does not travel over WebRTC; the tile says so.
	do(t, ctx, "open the wall", chromedp.Navigate(base+"/#/wall"))
	tileBtn := func(id string) string {
		return `document.querySelector('[data-testid=tile][data-camera-id=` + id + `] [data-testid=audio-toggle]')`
	}
	waitFor(t, ctx, "the AAC tiles' speaker buttons", `[`+tileBtn("aud-1")+`, `+tileBtn("aud-2")+`].every((x) => !x.hidden && x.disabled && x.dataset.codec === 'AAC' && x.title.includes('AAC'))`, 20*time.Second)
	// G.711 does: the tile's sound plays.
	tileVideo := `document.querySelector('[data-testid=tile][data-camera-id=aud-live] video')`
	waitFor(t, ctx, "the G.711 tile playing with an audio track", tileBtn("aud-live")+`.dataset.codec === 'PCMU' && !`+tileBtn("aud-live")+`.disabled && `+
		tileVideo+`.srcObject && `+tileVideo+`.srcObject.getAudioTracks().length === 1 && `+tileVideo+`.videoWidth > 0`, 30*time.Second)
	do(t, ctx, "unmute the G.711 tile", chromedp.Click(chromedp.CSS(`[data-testid=tile][data-camera-id=aud-live] [data-testid=audio-toggle]`)))
	if !eval[bool](t, ctx, `!`+tileVideo+`.muted && `+tileBtn("aud-live")+`.dataset.audio === 'on'`) {
		t.Fatal("the G.711 tile is still muted")
	}
	// Receiving: the track's samples carry camsim's tone (measured with an analyser).
	level := eval[float64](t, ctx, `(async () => {
	  const ac = new AudioContext(); await ac.resume();
	  const src = ac.createMediaStreamSource(`+tileVideo+`.srcObject);
	  const an = ac.createAnalyser(); an.fftSize = 2048; src.connect(an);
	  const buf = new Float32Array(an.fftSize); let peak = 0;
	  for (let i = 0; i < 40 && peak < 0.05; i++) {
	    await new Promise((r) => setTimeout(r, 100));
	    an.getFloatTimeDomainData(buf);
	    for (const v of buf) peak = Math.max(peak, Math.abs(v));
	  }
	  ac.close();
	  return peak;
	})()`)
	t.Logf("G.711 live audio: peak level %.3f", level)
	if level < 0.05 {
		t.Fatalf("the unmuted live tile receives no sound (peak %.3f)", level)
	}
}
