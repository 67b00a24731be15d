package remote

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/registry"
	"github.com/vigil-vms/vigil/relay"
	"github.com/vigil-vms/vigil/ui"
)

// TestUserAPIOnAnotherNode: the real API (package ui: login by token,
// authorization, audit) on node b, with remote.Live as its ui.Live, plays a
// camera ingested on node a, ends it with DELETE, and words the owner's
// refusals and an unreachable owner in the user's language.
func TestUserAPIOnAnotherNode(t *testing.T) {
	leakCheck(t)
	ctx := context.Background()
	a := startNode(t, "a", nil, relay.Options{})
	b := startNode(t, "b", nil, relay.Options{})
	cluster([]*testNode{a, b}, map[string]string{"cam1": "a", "cam2": "a"})
	startCamsim(t, a)

	reg, closeDB, err := registry.OpenFile(ctx, filepath.Join(t.TempDir(), "vigil.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { closeDB() })
	if _, err := reg.EnsureAdmin(ctx, "admin-password-1"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"cam1", "cam2"} { // cam2: registered, but a does not ingest it
		if _, err := reg.CreateCamera(ctx, ingest.Camera{ID: id, Name: id, Department: "police", MainURL: "rtsp://127.0.0.1:1/" + id, Enabled: true}); err != nil {
			t.Fatal(err)
		}
	}
	_, token, err := reg.CreateToken(ctx, "admin", "test")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ui.New(ui.Deps{Registry: reg, Live: b.node.Live(), Log: quietLog()}, ui.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api := httptest.NewServer(b.node.Handler(srv.Handler()))
	t.Cleanup(api.Close)
	auth := "Bearer " + token

	v := newViewer(t)
	v.auth = auth
	v.mustPlay(t, api.URL, "/api/v1/cameras/cam1/whep")
	testkit.WaitFor(t, 10*time.Second, "frames through node b's API", func() bool { return v.stats().frames >= 10 })
	if !strings.HasPrefix(v.location, "/api/v1/whep/") || a.relay.Sessions() != 1 {
		t.Fatalf("location %q, sessions on a %d", v.location, a.relay.Sessions())
	}
	// a second viewer of the same user: ui counts the first through Alive
	v2 := newViewer(t)
	v2.auth = auth
	v2.mustPlay(t, api.URL, "/api/v1/cameras/cam1/whep")
	testkit.WaitFor(t, 10*time.Second, "frames of the second viewer", func() bool { return v2.stats().frames >= 1 })
	if s := v.send(t, http.MethodDelete, "", ""); s != http.StatusOK {
		t.Fatalf("DELETE through node b's API: %d", s)
	}
	if s := v2.send(t, http.MethodDelete, "", ""); s != http.StatusOK {
		t.Fatalf("DELETE of the second viewer: %d", s)
	}
	testkit.WaitFor(t, 5*time.Second, "the sessions on a to end", func() bool { return a.relay.Sessions() == 0 })

	// the owner's refusal, in Chinese, as a would word it
	e := postAPIError(t, api.URL+"/api/v1/cameras/cam2/whep", auth, "zh-CN")
	if e.status != http.StatusNotFound || e.Code != "camera.not_found" || e.Error != `未找到摄像机 "cam2"` {
		t.Fatalf("camera a does not ingest, through b's API: %+v", e)
	}
	// the owner out of reach: 503, the node named
	a.server.Close()
	e = postAPIError(t, api.URL+"/api/v1/cameras/cam1/whep", auth, "en")
	if e.status != http.StatusServiceUnavailable || e.Code != "remote.unreachable" || !strings.HasPrefix(e.Error, "node a cannot be reached: ") {
		t.Fatalf("owner down, through b's API: %+v", e)
	}
}

type apiErrorBody struct {
	status int
	Error  string `json:"error"`
	Code   string `json:"code"`
}

func postAPIError(t *testing.T, url, auth, lang string) apiErrorBody {
	t.Helper()
	v := newViewer(t)
	sdp := v.offer(t)
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(sdp))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", auth)
	req.Header.Set("Accept-Language", lang)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiErrorBody
	_ = json.Unmarshal(b, &e)
	e.status = resp.StatusCode
	return e
}
