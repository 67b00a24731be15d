package app_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// timelineOf returns the starts of the segments that GET .../recordings
// shows c over [from, to).
func timelineOf(t *testing.T, c *client, camera string, from, to time.Time) (int, []time.Time) {
	t.Helper()
	q := url.Values{"start": {from.UTC().Format(time.RFC3339)}, "end": {to.UTC().Format(time.RFC3339)}}
	code, body := c.do("GET", "/api/v1/cameras/"+camera+"/recordings?"+q.Encode(), nil)
	if code != http.StatusOK {
		return code, nil
	}
	var r struct{ Segments []struct{ Start time.Time } }
	if err := json.Unmarshal(body, &r); err != nil {
		t.Fatalf("recordings: %v: %s", err, body)
	}
	var out []time.Time
	for _, s := range r.Segments {
		out = append(out, s.Start)
	}
	return code, out
}

// reviewCodes returns the status of a playback and of an export of
// [from, to) of the camera for c.
func reviewCodes(t *testing.T, c *client, camera string, from, to time.Time) (playback, export int) {
	t.Helper()
	q := url.Values{"start": {from.UTC().Format(time.RFC3339Nano)}, "duration": {to.Sub(from).String()}}
	playback, _ = c.do("GET", "/api/v1/cameras/"+camera+"/playback?"+q.Encode(), nil)
	q = url.Values{"start": {from.UTC().Format(time.RFC3339Nano)}, "end": {to.UTC().Format(time.RFC3339Nano)}}
	export, _ = c.do("GET", "/api/v1/cameras/"+camera+"/export?"+q.Encode(), nil)
	return playback, export
}

func keysOf(segs []archive.Segment) []string {
	var out []string
	for _, s := range segs {
		out = append(out, s.Key)
	}
	return out
}

// A deleted camera's archive does not go to the camera that reuses its id
// (issue 12, item 5): police footage of cam-x stays police footage, in the
// store and the index, and a flood-control responder's cam-x shows, plays
// and exports none of it — also after the index is rebuilt from the store.
// And a camera moved to another department keeps what it recorded before
// the move from that department's users.
func TestReusedCameraIDStartsEmpty(t *testing.T) {
	sim := simcam.Start(t, camsim.Options{Count: 2, Codec: "h264"})
	cfg := testConfig(t, t.TempDir())
	a, ctx, cancel := newApp(t, cfg)
	runDone := runApp(ctx, a)
	admin := login(t, "http://"+a.Addr(), "admin", adminPassword)
	for _, u := range []map[string]any{
		{"username": "flood", "password": "flood-responder-pw", "role": "responder", "departments": []string{"flood-control"}},
		{"username": "cop", "password": "police-responder-pw", "role": "responder", "departments": []string{"police"}},
	} {
		if code, body := admin.do("POST", "/api/v1/users", u); code != http.StatusCreated && code != http.StatusOK {
			t.Fatalf("add user: %d %s", code, body)
		}
	}
	flood := login(t, "http://"+a.Addr(), "flood", "flood-responder-pw")
	cop := login(t, "http://"+a.Addr(), "cop", "police-responder-pw")
	camera := func(id, dept string, n int) map[string]any {
		return map[string]any{"id": id, "name": "Camera " + id, "department": dept,
			"mainUrl": sim.URL(n, false), "transport": "tcp", "record": true, "enabled": true}
	}
	bg := context.Background()
	far := time.Now().Add(time.Hour)
	indexed := func(id string, n int) {
		testkit.WaitFor(t, 40*time.Second, fmt.Sprintf("%d segments of %s indexed", n, id), func() bool {
			segs, _ := a.Index.Segments(bg, id, time.Time{}, far, false)
			return len(segs) >= n
		})
	}

	// cam-x records in police, then is deleted
	t0 := time.Now()
	if code, body := admin.do("POST", "/api/v1/cameras", camera("cam-x", "police", 1)); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	// cam-y records in police, then moves to flood-control
	if code, body := admin.do("POST", "/api/v1/cameras", camera("cam-y", "police", 2)); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	indexed("cam-x", 2)
	indexed("cam-y", 2)
	if _, starts := timelineOf(t, cop, "cam-x", t0.Add(-time.Minute), far); len(starts) < 2 {
		t.Fatalf("the police responder sees %d police segments of cam-x", len(starts))
	}
	incident := map[string]any{"title": "police matter", "cameras": []string{"cam-x"},
		"start": t0.UTC().Format(time.RFC3339), "end": time.Now().UTC().Format(time.RFC3339), "note": "a police note"}
	if code, body := cop.do("POST", "/api/v1/incidents", incident); code != http.StatusCreated {
		t.Fatalf("incident: %d %s", code, body)
	}
	if code, body := admin.do("DELETE", "/api/v1/cameras/cam-x", nil); code != http.StatusNoContent {
		t.Fatalf("delete: %d %s", code, body)
	}
	movedAt := time.Now()
	if code, body := admin.do("PUT", "/api/v1/cameras/cam-y", camera("cam-y", "flood-control", 2)); code != http.StatusOK {
		t.Fatalf("move: %d %s", code, body)
	}
	// wait for cam-x's last segment (closed by the delete) to be stored
	testkit.WaitFor(t, 20*time.Second, "cam-x's segments stored", func() bool {
		return len(a.Recorder.Spooled("cam-x", time.Time{}, far)) == 0
	})
	deletedAt := time.Now()

	// cam-x again, in flood-control (one more police segment may have been
	// stored meanwhile: its start decides whose it is): before it records, its archive is empty
	if code, body := admin.do("POST", "/api/v1/cameras", camera("cam-x", "flood-control", 1)); code != http.StatusCreated {
		t.Fatalf("create again: %d %s", code, body)
	}
	if _, starts := timelineOf(t, flood, "cam-x", t0.Add(-time.Minute), far); len(starts) != 0 {
		t.Errorf("the flood-control responder sees %d segments of the deleted police camera cam-x", len(starts))
	}
	if p, e := reviewCodes(t, flood, "cam-x", t0, deletedAt); p != http.StatusNotFound || e != http.StatusNotFound {
		t.Errorf("flood-control playback and export of police footage: %d %d, want 404 404", p, e)
	}
	if p, e := reviewCodes(t, admin, "cam-x", t0, deletedAt); p != http.StatusNotFound || e != http.StatusNotFound {
		t.Errorf("the new cam-x's playback and export of the old one's footage (admin): %d %d, want 404 404", p, e)
	}
	if code, body := flood.do("GET", "/api/v1/incidents", nil); code != http.StatusOK || strings.Contains(string(body), "police") {
		t.Errorf("flood-control's incidents: %d %s", code, body)
	}
	q := url.Values{"start": {t0.Add(-time.Minute).UTC().Format(time.RFC3339)}, "end": {far.UTC().Format(time.RFC3339)}}
	if code, body := flood.do("GET", "/api/v1/cameras/cam-x/recordings?"+q.Encode(), nil); code != http.StatusOK || strings.Contains(string(body), "police") {
		t.Errorf("flood-control's cam-x timeline: %d %s", code, body)
	}
	if code, body := admin.do("GET", "/api/v1/incidents", nil); code != http.StatusOK || !strings.Contains(string(body), `"pastCameras":["cam-x"]`) {
		t.Errorf("the admin's incidents: %d %s", code, body)
	}
	if code, _ := timelineOf(t, cop, "cam-x", t0, far); code != http.StatusNotFound {
		t.Errorf("the police responder's cam-x: %d, want 404 (a flood-control camera)", code)
	}
	indexed("cam-x", 2)
	indexed("cam-y", 3)

	_, starts := timelineOf(t, flood, "cam-x", t0.Add(-time.Minute), far)
	if len(starts) < 2 {
		t.Fatalf("the new cam-x shows %d segments", len(starts))
	}
	for _, s := range starts {
		if s.Before(deletedAt) {
			t.Errorf("the new cam-x shows a segment of %s, before it existed (%s)", s, deletedAt)
		}
	}
	if p, e := reviewCodes(t, flood, "cam-x", starts[0], starts[0].Add(time.Second)); p != http.StatusOK || e != http.StatusOK {
		t.Errorf("flood-control playback and export of the new cam-x: %d %d", p, e)
	}

	// cam-y: flood-control sees only what it recorded since the move; the
	// admin (every department) sees all of it
	_, ys := timelineOf(t, flood, "cam-y", t0.Add(-time.Minute), far)
	_, all := timelineOf(t, admin, "cam-y", t0.Add(-time.Minute), far)
	if len(ys) == 0 || len(all) <= len(ys) {
		t.Errorf("cam-y: flood-control sees %d segments, the admin %d", len(ys), len(all))
	}
	for _, s := range ys {
		if s.Before(movedAt) {
			t.Errorf("flood-control sees a segment of cam-y recorded in police (%s, moved at %s)", s, movedAt)
		}
	}
	if p, e := reviewCodes(t, flood, "cam-y", all[0], all[0].Add(time.Second)); p != http.StatusNotFound || e != http.StatusNotFound {
		t.Errorf("flood-control playback and export of cam-y's police footage: %d %d, want 404 404", p, e)
	}

	cancel()
	testkit.Returned(t, runDone, 15*time.Second, "server run")

	// the police footage is still in the store and the index, as the old
	// incarnation's
	owners, err := a.Index.Owners(bg, "cam-x")
	if err != nil || len(owners) != 2 || owners[0].UID == owners[1].UID || owners[0].Department != "police" || owners[1].Department != "flood-control" {
		t.Fatalf("owners of cam-x: %+v %v", owners, err)
	}
	old, _ := a.Index.OwnerSegments(bg, "cam-x", owners[0].UID, time.Time{}, far)
	cur, _ := a.Index.OwnerSegments(bg, "cam-x", owners[1].UID, time.Time{}, far)
	if len(old) < 2 || len(cur) < 2 {
		t.Fatalf("cam-x: %d rows of the police incarnation, %d of the new one", len(old), len(cur))
	}
	for _, s := range old {
		if s.Department != "police" || !s.Start.Before(deletedAt) {
			t.Errorf("police row %s: department %q", s.Key, s.Department)
		}
	}
	var stored []string
	if err := a.Store.List(bg, "cam-x/", func(o archive.ObjectInfo) error {
		stored = append(stored, o.Key)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	for _, k := range append(keysOf(old), keysOf(cur)...) {
		if !slices.Contains(stored, k) {
			t.Errorf("%s is not in the store", k)
		}
	}

	// rebuilding the index from the store keeps them apart
	for _, k := range stored {
		if err := a.Index.Delete(bg, k); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := archive.Reindex(bg, a.Store, a.Index); err != nil {
		t.Fatal(err)
	}
	old2, _ := a.Index.OwnerSegments(bg, "cam-x", owners[0].UID, time.Time{}, far)
	cur2, _ := a.Index.Segments(bg, "cam-x", time.Time{}, far, false)
	if !slices.Equal(keysOf(old2), keysOf(old)) || !slices.Equal(keysOf(cur2), keysOf(cur)) {
		t.Errorf("after reindex: police %v, current %v; before: police %v, current %v",
			keysOf(old2), keysOf(cur2), keysOf(old), keysOf(cur))
	}
}
