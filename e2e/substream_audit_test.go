package e2e

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A camera whose sub-stream URL is wrong: its wall tile plays the main
// stream and says so, the camera list shows the sub-stream's error, and
// Test connection reports each URL.
func TestBadSubStreamPlaysMain(t *testing.T) {
	if e2e.skip != "" {
		t.Skip(e2e.skip)
	}
	const id = "e2e-badsub"
	cam := map[string]any{
		"id": id, "name": "Wrong sub URL", "department": "cold-storage",
		"mainUrl": e2e.sim.URL(5, false), "subUrl": "rtsp://" + e2e.sim.Addr() + "/no-such-stream",
		"transport": "tcp", "record": false, "enabled": true,
	}
	if _, err := e2e.admin.do("POST", "/api/v1/cameras", cam, http.StatusCreated); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e2e.admin.do("DELETE", "/api/v1/cameras/"+id, nil, http.StatusNoContent) })
	// the status API gives the sub-stream's own state and error
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := e2e.admin.do("GET", "/api/v1/cameras/"+id+"/status", nil, http.StatusOK)
		var st struct {
			State string
			Sub   *struct{ State, LastError string }
		}
		if err == nil {
			err = json.Unmarshal(b, &st)
		}
		if err == nil && st.State == "online" && st.Sub != nil && st.Sub.State == "offline" && st.Sub.LastError != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status of %s: %s (%v), want main online and sub offline with its error", id, b, err)
		}
		time.Sleep(250 * time.Millisecond) // polling interval
	}

	ctx := adminTab(t, "")
	open(t, ctx, "/admin/cameras")
	row := `tr[data-camera-id="` + id + `"]`
	waitFor(t, ctx, "the sub-stream's error in the camera list", `(() => {
	  const s = document.querySelector('`+row+` [data-testid=sub-status][data-state=offline]');
	  return s && s.querySelector('[data-testid=sub-error]').textContent.length > 0;
	})()`, 15*time.Second)
	subErr := eval[string](t, ctx, `document.querySelector('`+row+` [data-testid=sub-error]').textContent`)
	if !strings.Contains(subErr, "404") && !strings.Contains(strings.ToLower(subErr), "not found") {
		t.Errorf("the camera list shows the sub-stream error %q, want the camera's 404", subErr)
	}
	do(t, ctx, "test the connection", chromedp.Click(chromedp.CSS(row+` [data-testid=camera-edit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=camera-form]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=cam-test]`)))
	waitFor(t, ctx, "the connection test", `document.querySelector('[data-testid=test-result]').dataset.result !== undefined`, 40*time.Second)
	res := eval[[]string](t, ctx, `['main', 'sub'].map((s) => { const e = document.querySelector('[data-testid=test-result-' + s + ']'); return e ? e.dataset.result : 'missing'; })`)
	if fmt.Sprint(res) != "[ok error]" {
		t.Errorf("test connection: main, sub = %v, want [ok error]", res)
	}
	shot(t, ctx, "31-admin-bad-substream")

	openWall(t, ctx, wallState{Layout: 4, Q: "Wrong sub URL"})
	tile := `[data-testid=tile][data-camera-id="` + id + `"]`
	waitFor(t, ctx, "the tile playing", `document.querySelectorAll('[data-testid=tile]').length === 1 && document.querySelector('`+tile+`[data-player=playing][data-stream=main]') !== null`, 40*time.Second)
	got := framesAdvance(t, ctx, tileVideos, 1, 25, 20*time.Second)
	if got[0].W != 1280 {
		t.Errorf("the tile plays %dx%d, want the main stream's 1280x720", got[0].W, got[0].H)
	}
	note := eval[string](t, ctx, `(() => { const n = document.querySelector('`+tile+` [data-testid=tile-note]'); return n && !n.hidden ? n.textContent : ''; })()`)
	// in English or Chinese (another test may have chosen it)
	if !strings.Contains(note, "playing main") && !strings.Contains(note, "主码流") {
		t.Errorf("the tile's note is %q, want it to say it plays main", note)
	}
	shot(t, ctx, "30-wall-bad-substream")

	// the sub-stream fixed: the tile asks for it again and plays it
	cam["subUrl"] = e2e.sim.URL(5, true)
	if _, err := e2e.admin.do("PUT", "/api/v1/cameras/"+id, cam, http.StatusOK); err != nil {
		t.Fatal(err)
	}
	waitFor(t, ctx, "the tile back on the sub-stream", `(() => {
	  const el = document.querySelector('`+tile+`');
	  return el.dataset.stream === 'sub' && el.dataset.player === 'playing' && el.querySelector('[data-testid=tile-note]').hidden;
	})()`, 40*time.Second)
	if got := framesAdvance(t, ctx, tileVideos, 1, 25, 20*time.Second); got[0].W != 640 {
		t.Errorf("the tile plays %dx%d, want the sub-stream's 640x360", got[0].W, got[0].H)
	}
	shot(t, ctx, "33-wall-substream-back")
}

// The audit page shows a row's detail: an export's SHA-256 and size.
func TestAuditShowsExportDetail(t *testing.T) {
	if e2e.skip != "" {
		t.Skip(e2e.skip)
	}
	_, e := recordedSpan(t, "cam-03", 10*time.Second)
	from, to := e.Add(-8*time.Second).Truncate(time.Second), e.Add(-3*time.Second).Truncate(time.Second)
	q := url.Values{"start": {from.UTC().Format(time.RFC3339)}, "end": {to.UTC().Format(time.RFC3339)}}
	b, err := e2e.admin.do("GET", "/api/v1/cameras/cam-03/export?"+q.Encode(), nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	want := hex.EncodeToString(sum[:])
	ctx := adminTab(t, "/audit?camera=cam-03&action=export")
	waitFor(t, ctx, "the export's SHA-256 in the audit page", `[...document.querySelectorAll('[data-testid=audit-row][data-action=export][data-camera-id="cam-03"] [data-testid=audit-detail]')]
	  .some((d) => d.textContent.includes(`+jsString(want)+`) && d.textContent.includes(`+jsString(fmt.Sprint(len(b)))+`))`, 15*time.Second)
	if v := eval[string](t, ctx, `document.querySelector('[data-testid=audit-csv]').getAttribute('href')`); !strings.Contains(v, "format=csv") || !strings.Contains(v, "action=export") {
		t.Errorf("the CSV link is %q, want the page's filters with format=csv", v)
	}
	shot(t, ctx, "32-audit-detail")
}
