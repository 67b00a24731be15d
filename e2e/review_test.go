package e2e

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// recordedSpan waits until camera id has a recorded span of at least d and
// returns the latest one.
func recordedSpan(t *testing.T, id string, d time.Duration) (time.Time, time.Time) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		q := url.Values{"start": {time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, "end": {time.Now().Add(time.Minute).UTC().Format(time.RFC3339)}}
		b, err := e2e.admin.do("GET", "/api/v1/cameras/"+id+"/recordings?"+q.Encode(), nil, http.StatusOK)
		if err != nil {
			t.Fatal(err)
		}
		var rec struct {
			Spans []struct{ Start, End time.Time }
		}
		if err := json.Unmarshal(b, &rec); err != nil {
			t.Fatalf("recordings: %v", err)
		}
		if n := len(rec.Spans); n > 0 && rec.Spans[n-1].End.Sub(rec.Spans[n-1].Start) >= d {
			return rec.Spans[n-1].Start, rec.Spans[n-1].End
		}
		if time.Now().After(deadline) {
			t.Fatalf("camera %s has no recorded span of %s: %s", id, d, b)
		}
		time.Sleep(time.Second) // polling interval
	}
}

func rfc(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z") }

const pbVideo = `[data-testid=pb-cell] video`

// waitVideoReady waits until the playback video shows a picture.
func waitVideoReady(t *testing.T, ctx context.Context) {
	t.Helper()
	waitFor(t, ctx, "the playback video", `(() => {
	  const v = document.querySelector('`+pbVideo+`');
	  return v && v.readyState >= 2 && v.videoWidth > 0;
	})()`, 30*time.Second)
}

// srcStart is the start parameter of the playback video's source.
func srcStart(t *testing.T, ctx context.Context) time.Time {
	t.Helper()
	src := eval[string](t, ctx, `document.querySelector('`+pbVideo+`').src`)
	u, err := url.Parse(src)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(u.Path, "/playback") {
		t.Fatalf("video source %s is not a playback request", src)
	}
	st, err := time.Parse(time.RFC3339Nano, u.Query().Get("start"))
	if err != nil {
		t.Fatalf("video source %s: %v", src, err)
	}
	return st
}

func near(a, b time.Time, tol time.Duration) bool {
	return math.Abs(float64(a.Sub(b))) <= float64(tol)
}

func TestPlaybackSeek(t *testing.T) {
	s, e := recordedSpan(t, "cam-01", 14*time.Second)
	target := e.Add(-10 * time.Second).Truncate(time.Millisecond)
	ctx := playbackTab(t, "cam-01", target)
	if got := srcStart(t, ctx); !got.Equal(target) {
		t.Errorf("playback asked from %s, want %s", got, target)
	}
	waitFor(t, ctx, "the recorded span on the timeline", `document.querySelectorAll('[data-testid=timeline-span]').length > 0`, 15*time.Second)
	do(t, ctx, "play at 2x",
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('[data-testid=pb-speed]'); s.value = '2'; s.dispatchEvent(new Event('change')); })()`),
		chromedp.Click(chromedp.CSS(`[data-testid=pb-play]`)))
	waitFor(t, ctx, "the video advancing", `document.querySelector('`+pbVideo+`').currentTime >= 2 && document.querySelector('`+pbVideo+`').playbackRate === 2`, 20*time.Second)
	readout := eval[string](t, ctx, `document.querySelector('[data-testid=pb-time]').dataset.time`)
	begin := playbackStart(t, eval[string](t, ctx, `document.querySelector('`+pbVideo+`').src`))
	rt, err := time.Parse(time.RFC3339Nano, readout)
	// currentTime >= 2 s from the clip's first frame, the keyframe at or before
	// target; the readout is refreshed on the next animation frame, and the
	// clip's first buffered time may sit a few ms after 0: allow 200 ms
	if err != nil || begin.After(target) || rt.Before(begin.Add(1800*time.Millisecond)) || rt.After(target.Add(20*time.Second)) {
		t.Errorf("time readout %q after playing from %s (clip from %s)", readout, target, begin)
	}
	shot(t, ctx, "16-playback")

	// Zoom to ten minutes and click inside the span: a new request from there.
	do(t, ctx, "pause and zoom", chromedp.Click(chromedp.CSS(`[data-testid=pb-play]`)), chromedp.Click(chromedp.CSS(`[data-testid=zoom-min10]`)))
	click := s.Add(3 * time.Second)
	type point struct{ X, Y float64 }
	pt := eval[point](t, ctx, fmt.Sprintf(`(() => {
	  const want = Date.parse(%s);
	  const a = document.querySelector('[data-testid=timeline-area]');
	  for (const sp of document.querySelectorAll('[data-testid=timeline-span]')) {
	    const s0 = Date.parse(sp.dataset.start), s1 = Date.parse(sp.dataset.end);
	    if (want < s0 || want > s1) continue;
	    const r = sp.getBoundingClientRect();
	    // the span may be clipped at the edges of the view: map through the area
	    const ar = a.getBoundingClientRect();
	    const cur = document.querySelector('[data-testid=timeline-cursor]');
	    return { x: r.left + r.width * (want - s0) / (s1 - s0), y: r.top + r.height / 2 };
	  }
	  return { x: -1, y: -1 };
	})()`, jsString(rfc(click))))
	if pt.X < 0 {
		t.Fatalf("no timeline span contains %s", click)
	}
	do(t, ctx, "click the timeline", chromedp.MouseClickXY(pt.X, pt.Y))
	waitVideoReady(t, ctx)
	got := srcStart(t, ctx)
	if !near(got, click, 2*time.Second) {
		t.Errorf("clicking the timeline at %s asked playback from %s", click, got)
	}
	first := playbackStart(t, eval[string](t, ctx, `document.querySelector('`+pbVideo+`').src`))
	if first.After(got) || got.Sub(first) > 2500*time.Millisecond {
		t.Errorf("playback from %s begins at %s: not the keyframe at or before it", got, first)
	}
	// The paused video shows the clip's first frame: the readout names its
	// wall-clock time, not the instant clicked.
	waitFor(t, ctx, "the time readout at X-Vigil-Start "+rfc(first), fmt.Sprintf(`(() => {
	  const r = document.querySelector('[data-testid=pb-time]');
	  return Math.abs(Date.parse(r.dataset.time) - Date.parse(%s)) <= 200;
	})()`, jsString(rfc(first))), 10*time.Second)
	cur := eval[string](t, ctx, `document.querySelector('[data-testid=timeline-cursor]').dataset.time`)
	if ct, err := time.Parse(time.RFC3339Nano, cur); err != nil || !near(ct, first, 200*time.Millisecond) {
		t.Errorf("timeline cursor at %q, the clip's first frame at %s", cur, first)
	}
	shot(t, ctx, "17-playback-seek")
}

// playbackStart asks the server, with HEAD, where the playback at src
// begins: the X-Vigil-Start header.
func playbackStart(t *testing.T, src string) time.Time {
	t.Helper()
	req, err := http.NewRequest(http.MethodHead, src, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e2e.admin.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	h := res.Header.Get("X-Vigil-Start")
	st, err := time.Parse(time.RFC3339Nano, h)
	if res.StatusCode != http.StatusOK || err != nil {
		t.Fatalf("HEAD %s: %s, X-Vigil-Start %q", src, res.Status, h)
	}
	return st
}

// download clicks the export button and returns the downloaded file.
func download(t *testing.T, ctx context.Context) []byte {
	t.Helper()
	dir := t.TempDir()
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	do(t, ctx, "export",
		chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
			yes := true
			_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
				Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &yes,
			})
			return err
		}),
		chromedp.Click(chromedp.CSS(`[data-testid=pb-export]`)))
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("waiting for the download: %v", err)
		}
		switch ev.State {
		case browser.DownloadProgressStateCompleted:
			b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
			if err != nil {
				t.Fatal(err)
			}
			return b
		case browser.DownloadProgressStateCanceled:
			t.Fatalf("download canceled")
		}
	}
	t.Fatal("no download")
	return nil
}

type box struct {
	typ        string
	start, end int
}

func topBoxes(b []byte) ([]box, error) {
	var out []box
	for pos := 0; pos < len(b); {
		if len(b)-pos < 8 {
			return nil, fmt.Errorf("truncated box header at %d", pos)
		}
		size := int(binary.BigEndian.Uint32(b[pos:]))
		typ := string(b[pos+4 : pos+8])
		hdr := 8
		if size == 1 {
			if len(b)-pos < 16 {
				return nil, fmt.Errorf("truncated large box at %d", pos)
			}
			size, hdr = int(binary.BigEndian.Uint64(b[pos+8:])), 16
		}
		if size < hdr || pos+size > len(b) {
			return nil, fmt.Errorf("box %q at %d has a bad size %d", typ, pos, size)
		}
		out = append(out, box{typ, pos, pos + size})
		pos += size
	}
	return out, nil
}

// checkMP4 parses an exported clip and returns its video duration.
func checkMP4(t *testing.T, clip []byte) time.Duration {
	t.Helper()
	boxes, err := topBoxes(clip)
	if err != nil {
		t.Fatalf("export: %v", err)
	}
	if len(boxes) < 3 || boxes[0].typ != "ftyp" || boxes[1].typ != "moov" {
		t.Fatalf("export does not begin with ftyp, moov: %v", boxes[:min(3, len(boxes))])
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(clip[:boxes[1].end])); err != nil {
		t.Fatalf("export init: %v", err)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(clip[boxes[1].end:]); err != nil {
		t.Fatalf("export fragments: %v", err)
	}
	video, scale := 0, uint32(0)
	for _, tr := range init.Tracks {
		if tr.Codec.IsVideo() {
			video, scale = tr.ID, tr.TimeScale
		}
	}
	if video == 0 {
		t.Fatal("export has no video track")
	}
	var ticks uint64
	samples := 0
	for _, p := range parts {
		for _, tr := range p.Tracks {
			if tr.ID != video {
				continue
			}
			for _, s := range tr.Samples {
				ticks += uint64(s.Duration)
				samples++
			}
		}
	}
	if samples == 0 {
		t.Fatal("export has no video samples")
	}
	if path, err := exec.LookPath("ffprobe"); err == nil {
		f := testkit.TempFile(t, "clip.mp4", clip)
		out, err := exec.Command(path, "-v", "error", "-show_entries", "stream=codec_name,width,height", "-of", "csv=p=0", f).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "h264,1280,720") {
			t.Errorf("ffprobe on the export: %v: %s", err, out)
		}
	}
	return time.Duration(float64(ticks) / float64(scale) * float64(time.Second))
}

func TestExportDownloadsMP4(t *testing.T) {
	_, e := recordedSpan(t, "cam-01", 14*time.Second)
	from, to := e.Add(-12*time.Second).Truncate(time.Second), e.Add(-4*time.Second).Truncate(time.Second)
	ctx := adminTab(t, fmt.Sprintf("/playback?camera=cam-01&t=%s&start=%s&end=%s", rfc(from), rfc(from), rfc(to)))
	waitVideoReady(t, ctx)
	waitFor(t, ctx, "the selection", `!document.querySelector('[data-testid=timeline-selection]').hidden && !document.querySelector('[data-testid=pb-export]').disabled`, 10*time.Second)
	shot(t, ctx, "18-playback-selection")
	clip := download(t, ctx)
	d := checkMP4(t, clip)
	// From the keyframe at or before the start (2 s GOP) to about one
	// fragment after the end.
	if d < 7*time.Second || d > 14*time.Second {
		t.Errorf("export of %s–%s lasts %s", from, to, d)
	}
	t.Logf("exported %d bytes, %s of video", len(clip), d)
}

func TestIncidentOnTimelineAndList(t *testing.T) {
	_, e := recordedSpan(t, "cam-01", 14*time.Second)
	from, to := e.Add(-10*time.Second).Truncate(time.Second), e.Add(-5*time.Second).Truncate(time.Second)
	title := fmt.Sprintf("E2E incident %d", time.Now().UnixNano()%100000)
	ctx := adminTab(t, fmt.Sprintf("/playback?camera=cam-01,cam-02&t=%s&start=%s&end=%s", rfc(from), rfc(from), rfc(to)))
	waitFor(t, ctx, "two cameras side by side", `document.querySelectorAll('[data-testid=pb-cell]').length === 2 && document.querySelectorAll('[data-testid=timeline] .tl-track[data-camera-id]').length === 2`, 15*time.Second)
	do(t, ctx, "create an incident",
		chromedp.Click(chromedp.CSS(`[data-testid=pb-incident]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=incident-title]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=incident-title]`), title),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=incident-note]`), "seen on two cameras"),
		chromedp.Click(chromedp.CSS(`[data-testid=incident-save]`)))
	waitFor(t, ctx, "the incident on the timeline", fmt.Sprintf(`[...document.querySelectorAll('[data-testid=timeline-incident]')].some((e) => e.textContent === %s)`, jsString(title)), 15*time.Second)
	shot(t, ctx, "19-playback-incident")

	open(t, ctx, "/incidents")
	waitFor(t, ctx, "the incident in the list", fmt.Sprintf(`[...document.querySelectorAll('[data-testid=incident-row]')].some((r) => r.textContent.includes(%s))`, jsString(title)), 15*time.Second)
	shot(t, ctx, "20-incidents")
	do(t, ctx, "open it", chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`[...document.querySelectorAll('[data-testid=incident-row]')].find((r) => r.textContent.includes(%s)).querySelector('[data-testid=incident-open]').click()`, jsString(title))))
	waitFor(t, ctx, "the incident's playback", `location.hash.startsWith('#/playback') && document.querySelectorAll('[data-testid=pb-cell]').length === 2 && !document.querySelector('[data-testid=timeline-selection]').hidden`, 15*time.Second)
	waitVideoReady(t, ctx)
	if got := srcStart(t, ctx); !got.Equal(from) {
		t.Errorf("the incident opens playback at %s, want %s", got, from)
	}
}

func TestAuditListsPlaybackAndExport(t *testing.T) {
	_, e := recordedSpan(t, "cam-02", 10*time.Second)
	from, to := e.Add(-8*time.Second).Truncate(time.Second), e.Add(-3*time.Second).Truncate(time.Second)
	ctx := adminTab(t, fmt.Sprintf("/playback?camera=cam-02&t=%s&start=%s&end=%s", rfc(from), rfc(from), rfc(to)))
	waitVideoReady(t, ctx)
	checkMP4(t, download(t, ctx))
	open(t, ctx, "/audit?camera=cam-02")
	waitFor(t, ctx, "playback and export in the audit log", `(() => {
	  const rows = [...document.querySelectorAll('[data-testid=audit-row][data-camera-id="cam-02"]')];
	  const has = (a) => rows.some((r) => r.dataset.action === a && r.textContent.includes('admin'));
	  return has('playback') && has('export');
	})()`, 15*time.Second)
	shot(t, ctx, "21-audit")
}

func TestAvailabilityReport(t *testing.T) {
	if e2e.skip != "" {
		t.Skip(e2e.skip)
	}
	// the sampler must have observed every camera for a while first: this test
	// must not depend on other tests having run before it
	deadline := time.Now().Add(30 * time.Second)
	for {
		now := time.Now().UTC()
		b, err := e2e.admin.do("GET", "/api/v1/reports/availability?from="+now.Add(-time.Hour).Format(time.RFC3339)+
			"&to="+now.Add(time.Minute).Format(time.RFC3339), nil, http.StatusOK)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Cameras []struct {
				ID       string  `json:"id"`
				Observed float64 `json:"observedSeconds"`
			} `json:"cameras"`
		}
		json.Unmarshal(b, &rep)
		observed := 0
		for _, c := range rep.Cameras {
			if c.Observed >= 10 {
				observed++
			}
		}
		if observed >= len(fleetIDs()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the availability sampler observed %d of %d cameras for 10 s: %s", observed, len(fleetIDs()), b)
		}
		time.Sleep(500 * time.Millisecond) // polling interval
	}
	ctx := adminTab(t, "/reports")
	ids, _ := json.Marshal(fleetIDs())
	waitFor(t, ctx, "every camsim camera in the report", fmt.Sprintf(`(() => {
	  const ids = %s;
	  return ids.every((id) => document.querySelector('[data-testid=report-camera-row][data-camera-id="' + id + '"] [data-field=online]'));
	})()`, ids), 20*time.Second)
	type row struct {
		ID     string  `json:"id"`
		Online float64 `json:"online"`
	}
	rows := eval[[]row](t, ctx, `[...document.querySelectorAll('[data-testid=report-camera-row]')].map((r) => ({ id: r.dataset.cameraId, online: Number(r.querySelector('[data-field=online]').dataset.value) }))`)
	byID := map[string]float64{}
	for _, r := range rows {
		byID[r.ID] = r.Online
	}
	for _, id := range fleetIDs() {
		if byID[id] < 90 {
			t.Errorf("camera %s online %.1f%% in the report, want near 100%%", id, byID[id])
		}
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('[data-testid=report-department-row]').length`); n != len(departments) {
		t.Errorf("%d department rows, want %d", n, len(departments))
	}
	// the page says how much of the period was observed (a few seconds of
	// seven days: not "no data", and not the whole period), and offers the CSV
	for _, id := range fleetIDs() {
		if cls := eval[string](t, ctx, `document.querySelector('[data-testid=report-camera-row][data-camera-id="`+id+`"] [data-field=observed]').className`); strings.Contains(cls, "bar-nodata") {
			t.Errorf("camera %s: observed says no data", id)
		}
	}
	if v := eval[float64](t, ctx, `Number(document.querySelector('[data-testid=report-observed]').dataset.value)`); v <= 0 || v >= 50 {
		t.Errorf("observed %.2f%% of seven days, want a small share", v)
	}
	href := eval[string](t, ctx, `document.querySelector('[data-testid=report-csv]').getAttribute('href') || ''`)
	if !strings.Contains(href, "format=csv") {
		t.Fatalf("CSV link %q", href)
	}
	b, err := e2e.admin.do("GET", href, nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range fleetIDs() {
		if !strings.Contains(string(b), "\n"+id+",") {
			t.Errorf("CSV has no row for %s:\n%s", id, b)
		}
	}
	shot(t, ctx, "22-availability")
	// the same in Chinese (a browser context of its own: the language stays there)
	zh := tab(t, true)
	logIn(t, zh, "admin", adminPassword)
	switchToChinese(t, zh)
	open(t, zh, "/reports")
	waitFor(t, zh, "the Chinese report with its observed share", `(() => {
	  const p = document.querySelector('[data-testid=report-observed]');
	  const th = [...document.querySelectorAll('th')].map((e) => e.textContent);
	  return p && p.textContent.includes('其余时间无数据') && th.includes('观测占比') &&
	    document.querySelector('[data-testid=report-csv]').textContent === '导出 CSV';
	})()`, 15*time.Second)
	shot(t, zh, "22-availability-zh")
}

// At the live edge the recording is still growing: playback that reaches the
// end of what was on disk when the clip was asked for goes on with what was
// recorded since (the open segment is reviewable), instead of stopping.
func TestPlaybackLiveEdge(t *testing.T) {
	recordedSpan(t, "cam-01", 6*time.Second)
	target := time.Now().Add(-3 * time.Second).Truncate(time.Millisecond)
	ctx := playbackTab(t, "cam-01", target)
	// a day-wide view: the cursor moving does not pan it, so nothing else
	// refreshes the spans while the clip plays
	do(t, ctx, "zoom to a day", chromedp.Click(chromedp.CSS(`[data-testid=zoom-day]`)))
	waitVideoReady(t, ctx)
	do(t, ctx, "play", chromedp.Click(chromedp.CSS(`[data-testid=pb-play]`)))
	// the first clip ends about 3 s after target; reaching target+8s needs a second one
	waitFor(t, ctx, "playback past the first clip's end", fmt.Sprintf(`(() => {
	  const t = Date.parse(document.querySelector('[data-testid=pb-time]').dataset.time || '');
	  return t > Date.parse(%s) + 8000;
	})()`, jsString(rfc(target))), 40*time.Second)
	if got := srcStart(t, ctx); !got.After(target.Add(2 * time.Second)) {
		t.Errorf("no later clip was asked for: the video still plays from %s", got)
	}
}
