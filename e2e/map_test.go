package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

type mapMarker struct {
	ID    string  `json:"id"`
	State string  `json:"state"`
	X     float64 `json:"x"`
	Y     float64 `json:"y"`
}

// mapMarkers lists the markers on the map with their state and their
// centre on the page.
func mapMarkers(t *testing.T, ctx context.Context) []mapMarker {
	t.Helper()
	return eval[[]mapMarker](t, ctx, `[...document.querySelectorAll('[data-testid=map-marker]')].map((m) => {
	  const d = m.querySelector('.map-dot').getBoundingClientRect();
	  return { id: m.dataset.cameraId, state: m.dataset.state, x: d.left + d.width / 2, y: d.top + d.height / 2 };
	})`)
}

// cameraPlaces reads every camera's position and state from the API.
func cameraPlaces(t *testing.T) (map[string][2]float64, map[string]string) {
	t.Helper()
	b, err := e2e.admin.do("GET", "/api/v1/cameras", nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	var cams []struct {
		ID       string
		Location struct{ Lat, Lng float64 }
	}
	if err := json.Unmarshal(b, &cams); err != nil {
		t.Fatal(err)
	}
	places := map[string][2]float64{}
	for _, c := range cams {
		places[c.ID] = [2]float64{c.Location.Lat, c.Location.Lng}
	}
	b, err = e2e.admin.do("GET", "/api/v1/status", nil, http.StatusOK)
	if err != nil {
		t.Fatal(err)
	}
	var st []struct{ ID, State string }
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, s := range st {
		states[s.ID] = s.State
	}
	return places, states
}

// TestMapShowsCamerasAndOpensLive opens the map on a closed network (no
// tile server, no site map: the grid): every camera is drawn at its
// coordinates — one linear mapping from latitude and longitude to the page
// fits all of them to a pixel, north up — with its state; a click on a
// marker opens its live view, which plays; the department filter hides the
// others.
func TestMapShowsCamerasAndOpensLive(t *testing.T) {
	ctx := adminTab(t, "/map")
	waitFor(t, ctx, "the map's markers with their states", `document.querySelector('[data-testid=map-stage]').dataset.statusAt && document.querySelectorAll('[data-testid=map-marker]').length === `+fmt.Sprint(cameraCount), 30*time.Second)
	if mode := eval[string](t, ctx, `document.querySelector('[data-testid=map-stage]').dataset.mode`); mode != "grid" {
		t.Fatalf("map mode %q, want grid (no tile server, no site map)", mode)
	}
	places, states := cameraPlaces(t)
	ms := mapMarkers(t, ctx)
	shot(t, ctx, "map-grid")
	// The fleet spreads over latitude at one longitude: fit y = a·lat + b
	// on the two extremes, then every marker must sit on it.
	byID := map[string]mapMarker{}
	for _, m := range ms {
		byID[m.ID] = m
	}
	lo, hi := byID[fleetID(1)], byID[fleetID(cameraCount)]
	a := (hi.Y - lo.Y) / (places[hi.ID][0] - places[lo.ID][0])
	if a >= 0 {
		t.Fatalf("north is not up: %s (lat %.3f) at y %.1f, %s (lat %.3f) at y %.1f", lo.ID, places[lo.ID][0], lo.Y, hi.ID, places[hi.ID][0], hi.Y)
	}
	for _, id := range fleetIDs() {
		m, ok := byID[id]
		if !ok {
			t.Fatalf("camera %s has no marker", id)
		}
		wantY := lo.Y + a*(places[id][0]-places[lo.ID][0])
		if math.Abs(m.Y-wantY) > 1.5 || math.Abs(m.X-lo.X) > 1.5 {
			t.Errorf("%s at (%.1f, %.1f), want (%.1f, %.1f) for lat %.4f lng %.4f", id, m.X, m.Y, lo.X, wantY, places[id][0], places[id][1])
		}
		if m.State != states[id] {
			t.Errorf("%s drawn %q, its status is %q", id, m.State, states[id])
		}
	}

	// A click opens the camera's live view, which plays.
	target := byID[fleetID(3)]
	do(t, ctx, "click a marker", chromedp.MouseClickXY(target.X, target.Y))
	waitFor(t, ctx, "the live view of "+target.ID, `document.querySelector('[data-testid=map-live]')?.dataset.cameraId === `+jsString(target.ID), 10*time.Second)
	framesAdvance(t, ctx, `[data-testid=map-live] video`, 1, 10, 30*time.Second)
	shot(t, ctx, "map-live")
	do(t, ctx, "close the live view", chromedp.Click(chromedp.CSS(`[data-testid=map-live-close]`)))

	// The department filter keeps that department's cameras only.
	do(t, ctx, "filter by department", chromedp.Evaluate[chromedp.Void](`(() => {
	  const s = document.querySelector('[data-testid=map-dept]'); s.value = 'police'; s.dispatchEvent(new Event('change'));
	})()`))
	for _, m := range mapMarkers(t, ctx) {
		if !strings.HasPrefix(fleetDept(fleetNum(m.ID)), "police") {
			t.Errorf("the police filter shows %s (%s)", m.ID, fleetDept(fleetNum(m.ID)))
		}
	}
	do(t, ctx, "all departments again", chromedp.Evaluate[chromedp.Void](`(() => {
	  const s = document.querySelector('[data-testid=map-dept]'); s.value = ''; s.dispatchEvent(new Event('change'));
	})()`))
}

func fleetNum(id string) int {
	var n int
	fmt.Sscanf(id, "cam-%d", &n)
	return n
}

// TestMapDragMovesCamera drags a marker as admin: the camera's position
// changes through the camera API, in the direction dragged (east and
// south), and the change is audited.
func TestMapDragMovesCamera(t *testing.T) {
	id := fleetID(7)
	places, _ := cameraPlaces(t)
	before := places[id]
	t.Cleanup(func() {
		// put it back for the other tests
		b, err := e2e.admin.do("GET", "/api/v1/cameras/"+id, nil, http.StatusOK)
		if err != nil {
			t.Error(err)
			return
		}
		var cam map[string]any
		json.Unmarshal(b, &cam)
		body := map[string]any{}
		for _, k := range []string{"id", "name", "department", "mainUrl", "subUrl", "transport", "record", "retentionDays", "enabled", "tags"} {
			body[k] = cam[k]
		}
		body["location"] = map[string]any{"lat": before[0], "lng": before[1], "address": cam["location"].(map[string]any)["address"]}
		if _, err := e2e.admin.do("PUT", "/api/v1/cameras/"+id, body, http.StatusOK); err != nil {
			t.Error(err)
		}
	})
	ctx := adminTab(t, "/map")
	waitFor(t, ctx, "the markers", `document.querySelectorAll('[data-testid=map-marker]').length === `+fmt.Sprint(cameraCount), 30*time.Second)
	var m mapMarker
	for _, x := range mapMarkers(t, ctx) {
		if x.ID == id {
			m = x
		}
	}
	held := func(p *input.DispatchMouseEventParams) { p.Buttons = 1 }
	do(t, ctx, "drag the marker of "+id,
		chromedp.MouseEvent(chromedp.MousePressed, m.X, m.Y, chromedp.ButtonLeft, chromedp.ClickCount(1), held),
		chromedp.MouseEvent(chromedp.MouseMoved, m.X+40, m.Y+20, chromedp.ButtonLeft, held),
		chromedp.MouseEvent(chromedp.MouseMoved, m.X+120, m.Y+60, chromedp.ButtonLeft, held),
		chromedp.MouseEvent(chromedp.MouseReleased, m.X+120, m.Y+60, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	deadline := time.Now().Add(15 * time.Second)
	for {
		places, _ = cameraPlaces(t)
		after := places[id]
		if after != before {
			if after[1] <= before[1] || after[0] >= before[0] {
				t.Fatalf("dragged east and south, the camera moved from %v to %v", before, after)
			}
			break
		}
		if time.Now().After(deadline) {
			shot(t, ctx, "FAILED-"+t.Name())
			t.Fatal("the drag did not change the camera's position")
		}
		time.Sleep(200 * time.Millisecond) // polling interval
	}
	if moved := eval[bool](t, ctx, `document.querySelector('[data-testid=map-live]') === null`); !moved {
		t.Error("the drag also opened the live view")
	}
	b, err := e2e.admin.do("GET", "/api/v1/audit?camera="+id, nil, http.StatusOK)
	if err != nil || !strings.Contains(string(b), `"camera.update"`) || !strings.Contains(string(b), "location") {
		t.Fatalf("no camera.update audit row naming the location: %v %s", err, b)
	}
}
