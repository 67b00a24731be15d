package remote

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"net/http/httptest"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/review"
	"github.com/vigil-vms/vigil/relay"
)

// owners is a fake cluster: camera → owning node, as seen from one node.
type owners struct {
	self string
	mu   sync.Mutex
	own  map[string]string // camera → node
	adv  map[string]string // node → advertise URL
}

func newOwners(self string) *owners {
	return &owners{self: self, own: map[string]string{}, adv: map[string]string{}}
}

func (o *owners) set(camera, node string) {
	o.mu.Lock()
	o.own[camera] = node
	o.mu.Unlock()
}

func (o *owners) advertise(node, url string) {
	o.mu.Lock()
	o.adv[node] = url
	o.mu.Unlock()
}

func (o *owners) Owner(camera string) (string, string, bool, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	n, ok := o.own[camera]
	if !ok {
		return "", "", false, false
	}
	return n, o.adv[n], n == o.self, true
}

var testSecret = []byte("0123456789abcdef0123456789abcdef")

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// whepAPI is the WHEP part of ui's API over a ui.Live, as package ui mounts
// it (without users): POST /whep/{camera}?stream=, PATCH and DELETE
// /whep/session/{id}. Errors answer their apierr status, code and English
// text, as ui does.
func whepAPI(live Relay) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, err error) {
		code, text := apierr.Localize(err, apierr.English)
		_, zh := apierr.Localize(err, apierr.Chinese)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(apierr.Status(err))
		_ = json.NewEncoder(w).Encode(map[string]string{"error": text, "code": code, "zh": zh})
	}
	mux.HandleFunc("POST /whep/{camera}", func(w http.ResponseWriter, r *http.Request) {
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/sdp" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		body, _ := io.ReadAll(r.Body)
		kind := ingest.StreamKind(r.URL.Query().Get("stream"))
		if kind == "" {
			kind = ingest.Main
		}
		id, answer, err := live.Offer(r.Context(), r.PathValue("camera"), kind, string(body))
		if err != nil {
			fail(w, err)
			return
		}
		w.Header().Set("Content-Type", "application/sdp")
		w.Header().Set("Location", "/whep/session/"+id)
		w.WriteHeader(http.StatusCreated)
		io.WriteString(w, answer)
	})
	mux.HandleFunc("PATCH /whep/session/{id}", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := live.Patch(r.Context(), r.PathValue("id"), string(body)); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /whep/session/{id}", func(w http.ResponseWriter, r *http.Request) {
		if err := live.Delete(r.PathValue("id")); err != nil {
			fail(w, err)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	return mux
}

// testNode is one Vigil node: its own ingest (fleet) and relay, the remote
// node, and an HTTP server with the user-facing WHEP API over remote.Live
// and the internal endpoints.
type testNode struct {
	name   string
	fleet  *ingest.Fleet
	relay  *relay.Relay
	owners *owners
	node   *Node
	server *httptest.Server
}

// startNode runs a node until the test ends. spool may be nil.
func startNode(t *testing.T, name string, spool review.Spooled, relayOpts relay.Options) *testNode {
	t.Helper()
	fleet := ingest.NewFleet(ingest.FleetOptions{Log: quietLog(), BackoffMin: 100 * time.Millisecond, BackoffMax: 500 * time.Millisecond})
	relayOpts.ListenIP, relayOpts.Log = "127.0.0.1", quietLog()
	r, err := relay.New(relayOpts, fleet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	fleetDone, relayDone := make(chan error, 1), make(chan error, 1)
	go func() { fleetDone <- fleet.Run(ctx) }()
	go func() { relayDone <- r.Run(ctx) }()
	<-r.Ready()
	o := newOwners(name)
	n, err := New(Options{Node: name, Secret: testSecret, Owners: o, Relay: r, Spool: spool, Log: quietLog(),
		AliveFor: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(n.Handler(whepAPI(n.Live())))
	tn := &testNode{name: name, fleet: fleet, relay: r, owners: o, node: n, server: srv}
	t.Cleanup(func() {
		srv.Close()
		n.Close()
		cancel()
		<-relayDone
		<-fleetDone
	})
	return tn
}

// cluster makes every node know every node's address and camera's owner.
func cluster(nodes []*testNode, cameras map[string]string) {
	for _, n := range nodes {
		for _, m := range nodes {
			n.owners.advertise(m.name, m.server.URL)
		}
		for cam, owner := range cameras {
			n.owners.set(cam, owner)
		}
	}
}

// startCamsim runs one camsim H.264 camera ingested by node a as "cam1".
func startCamsim(t *testing.T, a *testNode) {
	t.Helper()
	sim, err := camsim.New(camsim.Options{Addr: "127.0.0.1:0", Count: 1, Codec: camsim.CodecH264})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	a.fleet.Set(ingest.Camera{ID: "cam1", MainURL: sim.URL(1, false), SubURL: sim.URL(1, true), Transport: "tcp", Enabled: true})
	t.Cleanup(func() {
		a.fleet.Remove("cam1")
		sim.Close()
	})
}

func leakCheck(t *testing.T) {
	t.Cleanup(func() { goleak.VerifyNone(t, goleak.IgnoreCurrent()) })
}

// TestLiveThroughAnotherNode: a camera ingested on node A plays through
// node B (its offer answered by A's relay, RTP straight from A), PATCH and
// DELETE pass through, and Alive follows the session's life on A.
func TestLiveThroughAnotherNode(t *testing.T) {
	leakCheck(t)
	a := startNode(t, "a", nil, relay.Options{})
	b := startNode(t, "b", nil, relay.Options{})
	cluster([]*testNode{a, b}, map[string]string{"cam1": "a"})
	startCamsim(t, a)

	v := newViewer(t)
	v.mustPlay(t, b.server.URL, "/whep/cam1")
	testkit.WaitFor(t, 10*time.Second, "frames through node b", func() bool { return v.stats().frames >= 10 })
	if st := v.stats(); !st.firstIDR {
		t.Fatal("the first picture through node b is not a keyframe")
	}
	if a.relay.Sessions() != 1 || b.relay.Sessions() != 0 {
		t.Fatalf("sessions: a %d, b %d; want the one on a, the owner (media is packetized once)", a.relay.Sessions(), b.relay.Sessions())
	}
	if b.node.Live().Remote() != 1 {
		t.Fatalf("node b remembers %d remote sessions, want 1", b.node.Live().Remote())
	}
	id := strings.TrimPrefix(v.location, "/whep/session/")
	if !b.node.Live().Alive(id) {
		t.Fatal("Alive on node b: false for a playing session")
	}

	// trickle ICE through b to a's relay, and its errors with their kind
	if s := v.send(t, http.MethodPatch, "application/trickle-ice-sdpfrag",
		"a=ice-ufrag:"+v.ufrag()+"\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n"); s != http.StatusNoContent {
		t.Fatalf("PATCH with a candidate through b: %d", s)
	}
	if s := v.send(t, http.MethodPatch, "application/trickle-ice-sdpfrag", "a=ice-ufrag:other\r\na=ice-pwd:otherpassword\r\n"); s != http.StatusUnprocessableEntity {
		t.Fatalf("PATCH with an ICE restart through b: %d, want a's 422", s)
	}
	if s := v.send(t, http.MethodPatch, "application/trickle-ice-sdpfrag", "a=candidate:broken\r\n"); s != http.StatusBadRequest {
		t.Fatalf("PATCH with a broken candidate through b: %d, want a's 400", s)
	}
	n := v.stats().frames
	testkit.WaitFor(t, 5*time.Second, "frames after the PATCHes", func() bool { return v.stats().frames >= n+10 })

	// DELETE through b ends the session on a
	if s := v.send(t, http.MethodDelete, "", ""); s != http.StatusOK {
		t.Fatalf("DELETE through b: %d", s)
	}
	testkit.WaitFor(t, 5*time.Second, "the session on a to end", func() bool { return a.relay.Sessions() == 0 })
	if b.node.Live().Alive(id) || b.node.Live().Remote() != 0 {
		t.Fatal("node b still counts the deleted session")
	}
	if s := v.send(t, http.MethodDelete, "", ""); s != http.StatusNotFound {
		t.Fatalf("second DELETE through b: %d, want 404", s)
	}

	// a session that ends on its owner (its viewer goes away) is seen dead on b
	v2 := newViewer(t)
	v2.mustPlay(t, b.server.URL, "/whep/cam1")
	testkit.WaitFor(t, 10*time.Second, "frames of the second viewer", func() bool { return v2.stats().frames > 0 })
	id2 := strings.TrimPrefix(v2.location, "/whep/session/")
	v2.close()
	testkit.WaitFor(t, 20*time.Second, "node b to see the session end on a", func() bool { return !b.node.Live().Alive(id2) })
	if b.node.Live().Remote() != 0 {
		t.Fatal("node b still remembers the ended session")
	}
}

// TestLiveLocalCamera: a camera the node owns goes to its own relay, no hop.
func TestLiveLocalCamera(t *testing.T) {
	leakCheck(t)
	a := startNode(t, "a", nil, relay.Options{})
	cluster([]*testNode{a}, map[string]string{"cam1": "a"})
	startCamsim(t, a)
	v := newViewer(t)
	v.mustPlay(t, a.server.URL, "/whep/cam1")
	testkit.WaitFor(t, 10*time.Second, "frames", func() bool { return v.stats().frames >= 5 })
	if a.node.Live().Remote() != 0 {
		t.Fatal("a local camera went through the remote path")
	}
	if s := v.send(t, http.MethodDelete, "", ""); s != http.StatusOK {
		t.Fatalf("DELETE: %d", s)
	}
}

type apiError struct {
	status         int
	code, text, zh string
}

func postError(t *testing.T, base, path string) apiError {
	t.Helper()
	v := newViewer(t)
	status, body := v.post(t, base, path)
	var e map[string]string
	_ = json.Unmarshal([]byte(body), &e)
	return apiError{status: status, code: e["code"], text: e["error"], zh: e["zh"]}
}

// TestOwnerErrorsKeepTheirKind: what the owner's relay refuses is refused
// through another node with the same status, code and wording.
func TestOwnerErrorsKeepTheirKind(t *testing.T) {
	leakCheck(t)
	a := startNode(t, "a", nil, relay.Options{MaxSessions: 1})
	b := startNode(t, "b", nil, relay.Options{})
	cluster([]*testNode{a, b}, map[string]string{"cam1": "a", "ghost": "a"})
	startCamsim(t, a)

	// a camera the owner does not ingest: 404 camera.not_found
	direct, through := postError(t, a.server.URL, "/whep/ghost"), postError(t, b.server.URL, "/whep/ghost")
	if direct.status != http.StatusNotFound || direct != through {
		t.Fatalf("unknown camera: direct %+v, through b %+v; want the same 404", direct, through)
	}
	if through.code != "camera.not_found" || !strings.Contains(through.zh, "未找到摄像机") {
		t.Fatalf("unknown camera through b: %+v, want code camera.not_found worded in Chinese", through)
	}
	// a malformed offer: 400 from the owner's SDP parser
	req, _ := http.NewRequest(http.MethodPost, b.server.URL+"/whep/cam1", strings.NewReader("v=0\r\nnot sdp"))
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed offer through b: %d, want 400", resp.StatusCode)
	}
	// the owner's relay is full: 503 live.relay_full
	v := newViewer(t)
	v.mustPlay(t, b.server.URL, "/whep/cam1")
	full := postError(t, b.server.URL, "/whep/cam1")
	if full.status != http.StatusServiceUnavailable || full.code != "live.relay_full" || !strings.Contains(full.text, "maximum of 1 sessions") {
		t.Fatalf("full relay through b: %+v, want 503 live.relay_full", full)
	}
	// no owner: 503 remote.no_owner
	if e := postError(t, b.server.URL, "/whep/orphan"); e.status != http.StatusServiceUnavailable || e.code != "remote.no_owner" {
		t.Fatalf("camera of no node: %+v, want 503 remote.no_owner", e)
	}
}

// TestOwnerDown: an owner that cannot be reached is a clear 503.
func TestOwnerDown(t *testing.T) {
	leakCheck(t)
	a := startNode(t, "a", nil, relay.Options{})
	b := startNode(t, "b", nil, relay.Options{})
	cluster([]*testNode{a, b}, map[string]string{"cam1": "a"})
	a.server.Close()
	e := postError(t, b.server.URL, "/whep/cam1")
	if e.status != http.StatusServiceUnavailable || e.code != "remote.unreachable" || !strings.Contains(e.text, "node a cannot be reached") {
		t.Fatalf("owner down: %+v, want 503 remote.unreachable naming node a", e)
	}
	if !strings.Contains(e.zh, "无法连接节点 a") {
		t.Fatalf("owner down in Chinese: %q", e.zh)
	}
}

// TestFirstFrameDelay measures, over several viewers, the time from the
// WHEP POST to the first RTP packet and to the first whole picture, directly
// on the owner and through another node (go test -run FirstFrameDelay -v).
func TestFirstFrameDelay(t *testing.T) {
	if testing.Short() {
		t.Skip("measurement")
	}
	leakCheck(t)
	a := startNode(t, "a", nil, relay.Options{})
	b := startNode(t, "b", nil, relay.Options{})
	cluster([]*testNode{a, b}, map[string]string{"cam1": "a"})
	startCamsim(t, a)
	warm := newViewer(t)
	warm.mustPlay(t, a.server.URL, "/whep/cam1")
	testkit.WaitFor(t, 10*time.Second, "the camera to play", func() bool { return warm.stats().frames > 0 })
	warm.close()

	const runs = 7
	measure := func(base string) (ans, pkt, frame []time.Duration) {
		for range runs {
			v := newViewer(t)
			v.mustPlay(t, base, "/whep/cam1")
			testkit.WaitFor(t, 10*time.Second, "first frame", func() bool { return v.stats().frames > 0 })
			st := v.stats()
			ans, pkt, frame = append(ans, v.answered), append(pkt, st.firstPacket), append(frame, st.firstFrame)
			v.send(t, http.MethodDelete, "", "")
			v.close()
		}
		return ans, pkt, frame
	}
	med := func(d []time.Duration) time.Duration {
		s := append([]time.Duration(nil), d...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	// alternate, so that neither side always comes first
	var da, dp, df, pa, pp, pf []time.Duration
	for range 2 {
		a1, p1, f1 := measure(a.server.URL)
		a2, p2, f2 := measure(b.server.URL)
		da, dp, df = append(da, a1...), append(dp, p1...), append(df, f1...)
		pa, pp, pf = append(pa, a2...), append(pp, p2...), append(pf, f2...)
	}
	t.Logf("answer:       direct median %v; through node b median %v", med(da), med(pa))
	t.Logf("first packet: direct median %v (max %v); through node b median %v (max %v)", med(dp), slices.Max(dp), med(pp), slices.Max(pp))
	t.Logf("first frame:  direct median %v (max %v); through node b median %v (max %v)", med(df), slices.Max(df), med(pf), slices.Max(pf))
	if med(pf) > med(df)+500*time.Millisecond {
		t.Errorf("the proxy adds %v to the first frame (median), more than 500 ms", med(pf)-med(df))
	}
}

// TestOfferFollowsAMovedCamera: an owner that no longer has the camera (its
// lease moved meanwhile) is not the last word: the new owner is asked.
func TestOfferFollowsAMovedCamera(t *testing.T) {
	leakCheck(t)
	var b *spoolNode
	a := startFakeNode(t, "a", &fakeRelay{offerErr: apierr.New(apierr.ErrNotFound, "camera %q not found", "cam1"),
		onOffer: func() { b.owners.set("cam1", "c") }}, nil) // a lets cam1 go while b's offer is on its way
	c := startFakeNode(t, "c", &fakeRelay{}, nil)
	b = startFakeNode(t, "b", &fakeRelay{}, nil)
	spoolCluster([]*spoolNode{a, b, c}, map[string]string{"cam1": "a"})
	id, answer, err := b.node.Live().Offer(context.Background(), "cam1", ingest.Main, "v=0")
	if err != nil || id != "s-cam1" || answer != "answer to v=0" {
		t.Fatalf("offer of a camera that moved from a to c: %q %q %v", id, answer, err)
	}
	// not found on an owner that still has the lease: the answer stands
	spoolCluster([]*spoolNode{a, b, c}, map[string]string{"cam1": "a"})
	a.node.opts.Relay.(*fakeRelay).onOffer = nil
	if _, _, err := b.node.Live().Offer(context.Background(), "cam1", ingest.Main, "v=0"); apierr.Status(err) != http.StatusNotFound {
		t.Fatalf("offer of a camera its owner does not have: %v, want 404", err)
	}
}

// TestOfferWaitsForAnAcquiredCamera: the lease of a camera is this node's
// a moment before the camera runs here (the dispatcher reads it from the
// database first). An offer in that moment, made here or through another
// node, waits for it instead of answering 404; a camera that does not start
// within startWait is not found.
func TestOfferWaitsForAnAcquiredCamera(t *testing.T) {
	leakCheck(t)
	starting := func(misses int) *fakeRelay {
		f := &fakeRelay{offerErr: apierr.New(apierr.ErrNotFound, "camera %q not found", "cam1")}
		f.onOffer = func() {
			if misses--; misses < 0 {
				f.offerErr = nil
			}
		}
		return f
	}
	a := startFakeNode(t, "a", starting(3), nil)
	b := startFakeNode(t, "b", &fakeRelay{}, nil)
	spoolCluster([]*spoolNode{a, b}, map[string]string{"cam1": "a"})
	if id, _, err := a.node.Live().Offer(context.Background(), "cam1", ingest.Main, "v=0"); err != nil || id != "s-cam1" {
		t.Fatalf("offer here for a camera starting here: %q %v", id, err)
	}
	a.node.opts.Relay = starting(3)
	if id, _, err := b.node.Live().Offer(context.Background(), "cam1", ingest.Main, "v=0"); err != nil || id != "s-cam1" {
		t.Fatalf("offer through b for a camera starting on a: %q %v", id, err)
	}

	old := startWait
	startWait = 300 * time.Millisecond
	defer func() { startWait = old }()
	a.node.opts.Relay = starting(1 << 30)
	start := time.Now()
	if _, _, err := a.node.Live().Offer(context.Background(), "cam1", ingest.Main, "v=0"); apierr.Status(err) != http.StatusNotFound {
		t.Fatalf("offer for a camera that never starts: %v, want 404", err)
	}
	if waited := time.Since(start); waited < startWait {
		t.Fatalf("gave up after %v, before startWait", waited)
	}
	// not this node's (any more): no wait
	a.owners.set("cam1", "b")
	a.node.opts.Relay = starting(1 << 30)
	b.node.opts.Relay = starting(1 << 30)
	if _, _, err := b.node.Live().Offer(context.Background(), "cam1", ingest.Main, "v=0"); apierr.Status(err) != http.StatusNotFound {
		t.Fatalf("offer through b for a camera a no longer holds: %v, want 404", err)
	}
}

// TestOfferWaitsForAnOwner: a camera created a moment ago has no owner for
// the few milliseconds until a node takes its lease; its offer waits for
// one, and is refused as unavailable (503) when none comes within startWait.
func TestOfferWaitsForAnOwner(t *testing.T) {
	leakCheck(t)
	a := startFakeNode(t, "a", &fakeRelay{}, nil)
	b := startFakeNode(t, "b", &fakeRelay{}, nil)
	spoolCluster([]*spoolNode{a, b}, nil)
	time.AfterFunc(200*time.Millisecond, func() { spoolCluster([]*spoolNode{a, b}, map[string]string{"cam1": "a"}) })
	if id, _, err := b.node.Live().Offer(context.Background(), "cam1", ingest.Main, "v=0"); err != nil || id != "s-cam1" {
		t.Fatalf("offer for a camera taken 200 ms later: %q %v", id, err)
	}

	old := startWait
	startWait = 300 * time.Millisecond
	defer func() { startWait = old }()
	if _, _, err := b.node.Live().Offer(context.Background(), "cam2", ingest.Main, "v=0"); apierr.Status(err) != http.StatusServiceUnavailable {
		t.Fatalf("offer for a camera nobody takes: %v, want 503", err)
	}
}
