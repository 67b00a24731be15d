package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

type point struct{ X, Y float64 }

// timelinePoint maps an instant to a point on the timeline's row of camera
// id, through the view bounds the timeline area carries.
func timelinePoint(t *testing.T, ctx context.Context, id string, at time.Time) point {
	t.Helper()
	p := eval[point](t, ctx, fmt.Sprintf(`(() => {
	  const a = document.querySelector('[data-testid=timeline-area]');
	  const s = Date.parse(a.dataset.viewStart), e = Date.parse(a.dataset.viewEnd), want = Date.parse(%s);
	  if (!(want > s && want < e)) return { x: -1, y: -1 };
	  const ar = a.getBoundingClientRect();
	  const row = a.querySelector('.tl-track[data-camera-id=' + JSON.stringify(%s) + ']').getBoundingClientRect();
	  return { x: ar.left + ar.width * (want - s) / (e - s), y: row.top + row.height / 2 };
	})()`, jsString(rfc(at)), jsString(id)))
	if p.X < 0 {
		shot(t, ctx, "FAILED-"+t.Name())
		t.Fatalf("%s is not in the timeline's view", at)
	}
	return p
}

// selection reads the selected range from the page's address.
func selection(t *testing.T, ctx context.Context) (time.Time, time.Time) {
	t.Helper()
	h := eval[string](t, ctx, `location.hash`)
	_, q, _ := strings.Cut(h, "?")
	v, err := url.ParseQuery(q)
	if err != nil {
		t.Fatalf("hash %s: %v", h, err)
	}
	s, err1 := time.Parse(time.RFC3339Nano, v.Get("start"))
	e, err2 := time.Parse(time.RFC3339Nano, v.Get("end"))
	if err1 != nil || err2 != nil {
		t.Fatalf("no selection in %s", h)
	}
	return s, e
}

// readout is the playback's time readout.
func readout(t *testing.T, ctx context.Context) time.Time {
	t.Helper()
	s := eval[string](t, ctx, `document.querySelector('[data-testid=pb-time]').dataset.time || ''`)
	rt, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Fatalf("time readout %q: %v", s, err)
	}
	return rt
}

type incident struct {
	ID      any       `json:"id"`
	Title   string    `json:"title"`
	Cameras []string  `json:"cameras"`
	Start   time.Time `json:"start"`
	End     time.Time `json:"end"`
}

// exportAndIncident exports the selection [from, to] of camera id and
// creates an incident of it, checking the download's length and the
// incident the API then lists.
func exportAndIncident(t *testing.T, ctx context.Context, id string, from, to time.Time) {
	t.Helper()
	want := to.Sub(from)
	d := checkMP4(t, download(t, ctx))
	// From the keyframe at or before the start (2 s GOP) to the end of the
	// fragment holding the end.
	if d < want-time.Second || d > want+4*time.Second {
		t.Errorf("export of a %s selection lasts %s", want.Round(time.Millisecond), d)
	}
	t.Logf("a %s selection exported %s of video", want.Round(time.Millisecond), d)

	title := fmt.Sprintf("E2E %s %d", t.Name(), time.Now().UnixNano()%100000)
	do(t, ctx, "create an incident",
		chromedp.Click(chromedp.CSS(`[data-testid=pb-incident]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=incident-title]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=incident-title]`), title),
		chromedp.Click(chromedp.CSS(`[data-testid=incident-save]`)))
	waitFor(t, ctx, "the incident on the timeline", fmt.Sprintf(`[...document.querySelectorAll('[data-testid=timeline-incident]')].some((e) => e.textContent === %s)`, jsString(title)), 15*time.Second)
	b, err := e2e.admin.do("GET", "/api/v1/incidents", nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	var list []incident
	if err := json.Unmarshal(b, &list); err != nil {
		var wrapped struct{ Incidents []incident }
		if err2 := json.Unmarshal(b, &wrapped); err2 != nil {
			t.Fatalf("incidents: %v: %s", err, b)
		}
		list = wrapped.Incidents
	}
	for _, inc := range list {
		if inc.Title != title {
			continue
		}
		if !near(inc.Start, from, time.Millisecond) || !near(inc.End, to, time.Millisecond) || fmt.Sprint(inc.Cameras) != "["+id+"]" {
			t.Errorf("incident %v: %s–%s on %v, want %s–%s on [%s]", inc.ID, inc.Start, inc.End, inc.Cameras, from, to, id)
		}
		return
	}
	t.Errorf("no incident %q in %s", title, b)
}

// Shift+drag on the timeline selects a range; export and incident use it.
func TestPlaybackShiftDragSelection(t *testing.T) {
	_, e := recordedSpan(t, "cam-01", 20*time.Second)
	ctx := playbackTab(t, "cam-01", e.Add(-18*time.Second))
	do(t, ctx, "zoom to a minute", chromedp.Click(chromedp.CSS(`[data-testid=zoom-min1]`)))
	waitFor(t, ctx, "the span in the minute view", `document.querySelectorAll('[data-testid=timeline-span]').length > 0`, 10*time.Second)
	srcBefore := eval[string](t, ctx, `document.querySelector('`+pbVideo+`').src`)
	a, b := timelinePoint(t, ctx, "cam-01", e.Add(-16*time.Second)), timelinePoint(t, ctx, "cam-01", e.Add(-6*time.Second))
	shift := chromedp.ButtonModifiers(chromedp.ModifierShift)
	held := func(p *input.DispatchMouseEventParams) { p.Buttons = 1 }
	do(t, ctx, "shift+drag on the timeline",
		chromedp.MouseEvent(chromedp.MousePressed, a.X, a.Y, chromedp.ButtonLeft, chromedp.ClickCount(1), shift, held),
		chromedp.MouseEvent(chromedp.MouseMoved, (a.X+b.X)/2, a.Y, chromedp.ButtonLeft, shift, held),
		chromedp.MouseEvent(chromedp.MouseMoved, b.X, b.Y, chromedp.ButtonLeft, shift, held),
		chromedp.MouseEvent(chromedp.MouseReleased, b.X, b.Y, chromedp.ButtonLeft, chromedp.ClickCount(1), shift))
	waitFor(t, ctx, "the selection", `!document.querySelector('[data-testid=timeline-selection]').hidden && !document.querySelector('[data-testid=pb-export]').disabled`, 10*time.Second)
	from, to := selection(t, ctx)
	// one pixel of a minute's view is well under half a second
	if !near(from, e.Add(-16*time.Second), 500*time.Millisecond) || !near(to, e.Add(-6*time.Second), 500*time.Millisecond) {
		t.Errorf("shift+drag over %s–%s selected %s–%s", e.Add(-16*time.Second), e.Add(-6*time.Second), from, to)
	}
	if got := eval[string](t, ctx, `document.querySelector('`+pbVideo+`').src`); got != srcBefore {
		t.Errorf("selecting a range also seeked: %s, was %s", got, srcBefore)
	}
	shot(t, ctx, "35-playback-shift-drag")
	exportAndIncident(t, ctx, "cam-01", from, to)
	shot(t, ctx, "36-playback-shift-drag-incident")
}

// Mark start and Mark end take the video's current moment.
func TestPlaybackMarkButtons(t *testing.T) {
	_, e := recordedSpan(t, "cam-02", 20*time.Second)
	ctx := playbackTab(t, "cam-02", e.Add(-18*time.Second))
	t1 := readout(t, ctx)
	do(t, ctx, "mark start", chromedp.Click(chromedp.CSS(`[data-testid=pb-mark-in]`)))
	if from, _ := selection(t, ctx); !near(from, t1, 50*time.Millisecond) {
		t.Errorf("mark start at the readout %s selected from %s", t1, from)
	}
	do(t, ctx, "play", chromedp.Click(chromedp.CSS(`[data-testid=pb-play]`)))
	waitFor(t, ctx, "6 s played", fmt.Sprintf(`Date.parse(document.querySelector('[data-testid=pb-time]').dataset.time) >= %d`, t1.Add(6*time.Second).UnixMilli()), 20*time.Second)
	do(t, ctx, "pause", chromedp.Click(chromedp.CSS(`[data-testid=pb-play]`)))
	t2 := readout(t, ctx)
	do(t, ctx, "mark end", chromedp.Click(chromedp.CSS(`[data-testid=pb-mark-out]`)))
	from, to := selection(t, ctx)
	if !near(from, t1, 50*time.Millisecond) || !near(to, t2, 50*time.Millisecond) {
		t.Errorf("marks at %s and %s selected %s–%s", t1, t2, from, to)
	}
	shot(t, ctx, "37-playback-marks")
	exportAndIncident(t, ctx, "cam-02", from, to)
}

// cellTimes maps each playback cell's video position to wall-clock time,
// from its X-Vigil-Start (data-start) and its currentTime.
const cellTimes = `[...document.querySelectorAll('[data-testid=pb-cell] video')].map((v) => ({
  id: v.dataset.cameraId,
  ready: v.readyState >= 2 && v.videoWidth > 0,
  ms: Date.parse(v.dataset.start || '') + (v.currentTime - (v.buffered.length ? v.buffered.start(0) : 0)) * 1000,
  ct: v.currentTime,
  paused: v.paused,
}))`

type cellTime struct {
	ID     string  `json:"id"`
	Ready  bool    `json:"ready"`
	MS     float64 `json:"ms"`
	CT     float64 `json:"ct"`
	Paused bool    `json:"paused"`
}

func (c cellTime) time() time.Time { return time.UnixMilli(int64(c.MS)) }

// Several cameras side by side on one shared timeline: a second camera added
// on the page, a seek shows both at that moment, play advances both.
func TestPlaybackSideBySide(t *testing.T) {
	_, e1 := recordedSpan(t, "cam-01", 20*time.Second)
	_, e3 := recordedSpan(t, "cam-03", 20*time.Second)
	end := e1
	if e3.Before(end) {
		end = e3
	}
	ctx := playbackTab(t, "cam-01", end.Add(-10*time.Second))
	do(t, ctx, "add cam-03",
		chromedp.SetValue(chromedp.CSS(`[data-testid=pb-camera-select]`), "cam-03"),
		chromedp.Click(chromedp.CSS(`[data-testid=pb-camera-add]`)))
	waitFor(t, ctx, "two cameras on one timeline", `document.querySelectorAll('[data-testid=pb-cell]').length === 2 &&
	  document.querySelectorAll('[data-testid=timeline] .tl-track[data-camera-id]').length === 2 &&
	  location.hash.includes('camera=cam-01%2Ccam-03')`, 15*time.Second)
	do(t, ctx, "zoom to ten minutes", chromedp.Click(chromedp.CSS(`[data-testid=zoom-min10]`)))
	waitFor(t, ctx, "both cameras' spans", `document.querySelectorAll('.tl-track[data-camera-id] [data-testid=timeline-span]').length >= 2`, 10*time.Second)

	target := end.Add(-16 * time.Second)
	p := timelinePoint(t, ctx, "cam-03", target)
	do(t, ctx, "click the timeline", chromedp.MouseClickXY(p.X, p.Y))
	var cells []cellTime
	deadline := time.Now().Add(30 * time.Second)
	for {
		cells = eval[[]cellTime](t, ctx, cellTimes)
		if len(cells) == 2 && cells[0].Ready && cells[1].Ready {
			break
		}
		if time.Now().After(deadline) {
			shot(t, ctx, "FAILED-"+t.Name())
			t.Fatalf("both videos not ready after the seek: %+v", cells)
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	// one view pixel of ten minutes is about half a second
	clicked := eval[string](t, ctx, `new URLSearchParams(location.hash.split('?')[1]).get('t')`)
	ct, err := time.Parse(time.RFC3339Nano, clicked)
	if err != nil || !near(ct, target, 2*time.Second) {
		t.Fatalf("clicking at %s seeked to %q", target, clicked)
	}
	const gop = 2 * time.Second
	for _, c := range cells {
		// the keyframe at or before: seen up to 3 s before at a segment's start
		if c.time().After(ct.Add(50*time.Millisecond)) || c.time().Before(ct.Add(-2*gop)) {
			t.Errorf("after seeking to %s %s shows %s: not the keyframe at or before", ct, c.ID, c.time())
		}
	}
	// each shows its own keyframe at or before the moment: the cameras' GOPs
	// are not in phase, so up to one GOP apart (and a few ms of rounding)
	if d := cells[0].time().Sub(cells[1].time()); d.Abs() > gop+100*time.Millisecond {
		t.Errorf("after the seek the cameras show %s and %s, %s apart", cells[0].time(), cells[1].time(), d)
	}
	shot(t, ctx, "38-playback-side-by-side-seek")

	do(t, ctx, "play", chromedp.Click(chromedp.CSS(`[data-testid=pb-play]`)))
	waitFor(t, ctx, "both videos playing 4 s", `[...document.querySelectorAll('`+pbVideo+`')].every((v) => !v.paused && v.currentTime >= 4)`, 20*time.Second)
	do(t, ctx, "pause", chromedp.Click(chromedp.CSS(`[data-testid=pb-play]`)))
	cells = eval[[]cellTime](t, ctx, cellTimes)
	for _, c := range cells {
		// 4 s played from a clip that began up to 2 GOPs before ct (see above)
		if !c.Paused || c.time().Before(ct.Add(4*time.Second-2*gop)) {
			t.Errorf("%s after playing: %+v at %s", c.ID, c, c.time())
		}
	}
	if d := cells[0].time().Sub(cells[1].time()); d.Abs() > gop+500*time.Millisecond {
		t.Errorf("after playing the cameras show %s and %s, %s apart", cells[0].time(), cells[1].time(), d)
	}
	t.Logf("after playing: %s at %s, %s at %s", cells[0].ID, cells[0].time().Format("15:04:05.000"), cells[1].ID, cells[1].time().Format("15:04:05.000"))
	shot(t, ctx, "39-playback-side-by-side-played")
}

// Speeds from 0.5× to 8×, and the frame step.
func TestPlaybackSpeedsAndStep(t *testing.T) {
	_, e := recordedSpan(t, "cam-02", 40*time.Second)
	ctx := playbackTab(t, "cam-02", e.Add(-38*time.Second))
	if got := eval[[]string](t, ctx, `[...document.querySelectorAll('[data-testid=pb-speed] option')].map((o) => o.value)`); fmt.Sprint(got) != "[0.5 1 2 4 8]" {
		t.Errorf("speeds offered: %v", got)
	}
	setSpeed := func(s string) chromedp.Action[chromedp.Void] {
		return chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('[data-testid=pb-speed]'); s.value = ` + jsString(s) + `; s.dispatchEvent(new Event('change')); })()`)
	}
	// measure plays for a while and answers the video time gained per second.
	measure := func(speed string, window time.Duration) float64 {
		t.Helper()
		do(t, ctx, "play at "+speed+"×", setSpeed(speed), chromedp.Click(chromedp.CSS(`[data-testid=pb-play]`)))
		waitFor(t, ctx, "playing at "+speed+"×", fmt.Sprintf(`(() => { const v = document.querySelector('%s'); return !v.paused && v.playbackRate === %s && v.readyState >= 3; })()`, pbVideo, speed), 10*time.Second)
		r0, w0 := readout(t, ctx), time.Now()
		time.Sleep(window) // a measurement window, not a wait for a condition
		r1, w1 := readout(t, ctx), time.Now()
		do(t, ctx, "pause", chromedp.Click(chromedp.CSS(`[data-testid=pb-play]`)))
		rate := float64(r1.Sub(r0)) / float64(w1.Sub(w0))
		t.Logf("at %s×: %s of video in %s (%.2f×)", speed, r1.Sub(r0).Round(time.Millisecond), w1.Sub(w0).Round(time.Millisecond), rate)
		return rate
	}
	if r := measure("8", 2*time.Second); r < 5 || r > 9 {
		t.Errorf("at 8× the video advanced %.2f× real time", r)
	}
	shot(t, ctx, "40-playback-8x")
	if r := measure("0.5", 2*time.Second); r < 0.35 || r > 0.65 {
		t.Errorf("at 0.5× the video advanced %.2f× real time", r)
	}

	// Step forward and back by one frame (25 fps) while paused.
	type pos struct {
		CT     float64 `json:"ct"`
		Time   string  `json:"time"`
		Paused bool    `json:"paused"`
	}
	const posExpr = `(() => { const v = document.querySelector('` + pbVideo + `'); return { ct: v.currentTime, paused: v.paused, time: document.querySelector('[data-testid=pb-time]').dataset.time }; })()`
	// A step plays to the next frame, or loads the clip again and plays up
	// to the frame before: compare the readouts, and the currentTime of
	// the same clip.
	stepTo := func(btn string, before pos, dir float64) pos {
		t.Helper()
		do(t, ctx, "click "+btn, chromedp.Click(chromedp.CSS(`[data-testid=`+btn+`]`)))
		waitFor(t, ctx, "the step", fmt.Sprintf(`(() => {
		  const v = document.querySelector('%s');
		  return !document.querySelector('[data-testid=pb-videos]').dataset.stepping && v.paused && !v.seeking && v.readyState >= 2 &&
		    document.querySelector('[data-testid=pb-time]').dataset.time !== %s;
		})()`, pbVideo, jsString(before.Time)), 10*time.Second)
		after := eval[pos](t, ctx, posExpr)
		// currentTime may overshoot the frame shown a little when the step
		// plays to the next frame and pauses (a loaded machine pauses late);
		// the readout below names the frame shown and must be exact
		if d := after.CT - before.CT; dir > 0 && (!after.Paused || d <= 0 || d > 0.1) {
			t.Errorf("%s moved the video from %.3f to %.3f s (paused %v), want about one frame (0.040 s)", btn, before.CT, after.CT, after.Paused)
		}
		t0, err0 := time.Parse(time.RFC3339Nano, before.Time)
		t1, err1 := time.Parse(time.RFC3339Nano, after.Time)
		if d := float64(t1.Sub(t0).Milliseconds()) * dir; err0 != nil || err1 != nil || math.Abs(d-40) > 10 {
			t.Errorf("%s moved the time readout from %s to %s, want one frame (40 ms)", btn, before.Time, after.Time)
		}
		t.Logf("%s: %s → %s", btn, before.Time, after.Time)
		return after
	}
	waitFor(t, ctx, "the readout settled after the pause", `(() => { const v = document.querySelector('`+pbVideo+`'); return v.paused && !v.seeking; })()`, 5*time.Second)
	// Paused after playing, the video stands between two frames: a first
	// step lands on a frame, the next ones go frame by frame.
	do(t, ctx, "a first step", chromedp.Click(chromedp.CSS(`[data-testid=pb-step]`)))
	waitFor(t, ctx, "the first step", `!document.querySelector('[data-testid=pb-videos]').dataset.stepping`, 10*time.Second)
	p0 := eval[pos](t, ctx, posExpr)
	p1 := stepTo("pb-step", p0, 1)
	stepTo("pb-step-back", p1, -1)
	shot(t, ctx, "41-playback-step")
}
