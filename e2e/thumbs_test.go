package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// grabFrame is a JavaScript function that draws a canvas or video into a
// 160-pixel-wide canvas and returns its grey levels, for comparing frames
// decoded by different paths.
const grabFrame = `(src) => {
  const w = 160, h = Math.round(160 * (src.videoHeight || src.height) / (src.videoWidth || src.width));
  const c = document.createElement('canvas'); c.width = w; c.height = h;
  const g = c.getContext('2d'); g.drawImage(src, 0, 0, w, h);
  const d = g.getImageData(0, 0, w, h).data, out = new Array(w * h);
  for (let i = 0; i < w * h; i++) out[i] = (d[4 * i] + d[4 * i + 1] + d[4 * i + 2]) / 3;
  return out;
}`

// framePixels loads the playback page at an instant (the cell's clip then
// begins with the keyframe at or before it) and returns the grey levels of
// the first frame the <video> shows.
func framePixels(t *testing.T, ctx context.Context, camera string, at time.Time) []float64 {
	t.Helper()
	open(t, ctx, "/playback?camera="+camera+"&t="+rfc(at))
	waitFor(t, ctx, "the playback video at "+rfc(at), `(() => {
	  const v = document.querySelector('`+pbVideo+`');
	  return v && v.readyState >= 2 && v.videoWidth > 0 && v.dataset.start && Date.parse(v.dataset.start) <= Date.parse(`+jsString(rfc(at))+`) + 1;
	})()`, 30*time.Second)
	return eval[[]float64](t, ctx, `(`+grabFrame+`)(document.querySelector('`+pbVideo+`'))`)
}

func meanDiff(a, b []float64) float64 {
	if len(a) != len(b) || len(a) == 0 {
		return 255
	}
	s := 0.0
	for i := range a {
		d := a[i] - b[i]
		if d < 0 {
			d = -d
		}
		s += d
	}
	return s / float64(len(a))
}

// TestTimelineThumbnail hovers over a recorded moment of the playback
// timeline: the preview shows the recording's keyframe at or before it, the
// same picture as the playback's frame at that keyframe (and not the one
// of the GOP before: camsim's clip is two GOPs of a moving test pattern),
// and, zoomed in, a strip of frames runs along the timeline. It reports the
// time from hover to thumbnail, cold (fetched and decoded) and warm (cached).
func TestTimelineThumbnail(t *testing.T) {
	_, e := recordedSpan(t, "cam-01", 24*time.Second)
	cursor := e.Add(-18 * time.Second).Truncate(time.Millisecond)
	ctx := playbackTab(t, "cam-01", cursor)
	do(t, ctx, "zoom to a minute", chromedp.Click(chromedp.CSS(`[data-testid=zoom-min1]`)))
	hover := e.Add(-7 * time.Second).Truncate(time.Millisecond)
	p := timelinePoint(t, ctx, "cam-01", hover)
	do(t, ctx, "hover over the timeline", chromedp.MouseEvent(chromedp.MouseMoved, p.X, p.Y))
	waitFor(t, ctx, "the thumbnail preview", `document.querySelector('[data-testid=timeline-preview]').dataset.ready === 'true' && !document.querySelector('[data-testid=timeline-preview]').hidden`, 20*time.Second)
	type preview struct {
		At, Time, Camera string
		Ms               float64
	}
	read := func() preview {
		return eval[preview](t, ctx, `(() => { const p = document.querySelector('[data-testid=timeline-preview]');
		  return { at: p.dataset.at, time: p.dataset.time, camera: p.dataset.cameraId, ms: Number(p.dataset.ms) }; })()`)
	}
	cold := read()
	at, err1 := time.Parse(time.RFC3339Nano, cold.At)
	kf, err2 := time.Parse(time.RFC3339Nano, cold.Time)
	if err1 != nil || err2 != nil || cold.Camera != "cam-01" {
		t.Fatalf("preview %+v", cold)
	}
	// The keyframe at or before the hovered second: within a GOP (2 s) of it.
	if kf.After(at) || at.Sub(kf) > 3*time.Second {
		t.Fatalf("hovered at %s, the preview shows the keyframe of %s", rfc(at), rfc(kf))
	}
	shot(t, ctx, "thumbnail-preview")
	thumb := eval[[]float64](t, ctx, `(`+grabFrame+`)(document.querySelector('[data-testid=timeline-preview] canvas'))`)

	// Move away and back: the second time comes from the cache.
	do(t, ctx, "leave and hover again",
		chromedp.MouseEvent(chromedp.MouseMoved, p.X, p.Y-400),
		chromedp.MouseEvent(chromedp.MouseMoved, p.X, p.Y))
	waitFor(t, ctx, "the preview again", `document.querySelector('[data-testid=timeline-preview]').dataset.ready === 'true'`, 10*time.Second)
	warm := read()

	// The strip of the zoomed-in timeline: frames where cam-01 recorded.
	waitFor(t, ctx, "the thumbnail strip", `document.querySelectorAll('[data-testid=timeline-strip-slot][data-ready=true]').length >= 3`, 30*time.Second)
	slots := eval[int](t, ctx, `document.querySelectorAll('[data-testid=timeline-strip-slot]').length`)
	shot(t, ctx, "thumbnail-strip")

	same := meanDiff(thumb, framePixels(t, ctx, "cam-01", kf.Add(time.Millisecond)))
	other := meanDiff(thumb, framePixels(t, ctx, "cam-01", kf.Add(-2*time.Second+time.Millisecond)))
	t.Logf("thumbnail vs the playback's frame at its keyframe: mean difference %.2f; vs the keyframe 2 s before: %.2f", same, other)
	if same > 0.5 || other < 1 {
		t.Fatalf("the thumbnail does not look like the frame at %s (difference %.2f, against %.2f for the GOP before)", rfc(kf), same, other)
	}
	report := fmt.Sprintf("hover → thumbnail: %.1f ms fetched and decoded, %.1f ms cached; strip of %d frames", cold.Ms, warm.Ms, slots)
	t.Log(report)
}
