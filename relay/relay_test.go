package relay

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"
	"go.uber.org/goleak"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// checkFirstFrame asserts that the first picture received decodes on its own:
// an IDR with its SPS (which parses) and PPS in front.
func checkFirstH264(t testing.TB, frames []frame, width int) {
	t.Helper()
	if len(frames) == 0 {
		t.Fatal("no frame received")
	}
	var sps, pps, idr bool
	for _, n := range frames[0].nalus {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			var s h264.SPS
			if err := s.Unmarshal(n); err != nil {
				t.Fatalf("first frame's SPS does not parse: %v", err)
			}
			if width != 0 && s.Width() != width {
				t.Fatalf("SPS says %dx%d, want width %d", s.Width(), s.Height(), width)
			}
			sps = true
		case h264.NALUTypePPS:
			pps = true
		case h264.NALUTypeIDR:
			idr = true
		}
	}
	if !sps || !pps || !idr {
		t.Fatalf("first frame is not a self-contained keyframe: sps=%v pps=%v idr=%v", sps, pps, idr)
	}
}

// checkTimestamps asserts RTP timestamps only increase.
func checkTimestamps(t testing.TB, frames []frame) {
	t.Helper()
	for i := 1; i < len(frames); i++ {
		if d := int32(frames[i].ts - frames[i-1].ts); d <= 0 {
			t.Fatalf("RTP timestamp of frame %d does not increase: %d after %d", i, frames[i].ts, frames[i-1].ts)
		}
	}
}

func TestViewerGetsKeyframeFirstAndLiveFrames(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	// let the GOP cache fill: the viewer must start from it, not wait for the next keyframe
	f := e.feedCached(t, "cam1", "cam.h264", ingest.CodecH264, "", 20)

	c := e.watch(t, "H264", "/whep/cam1", 1)
	frames, _ := c.snapshot()
	first := frames[0].at.Sub(c.posted)
	checkFirstH264(t, frames, 640)
	t.Logf("POST to first keyframe: %v; backlog frames received at once: %d", first, len(frames))

	start := time.Now()
	n0 := c.frameCount()
	testkit.WaitFor(t, 5*time.Second, "2 s of frames", func() bool { return time.Since(start) >= 2*time.Second })
	frames, errs := c.snapshot()
	if len(errs) > 0 {
		t.Fatalf("client errors: %v", errs)
	}
	if got := len(frames) - n0; got < 40 {
		t.Fatalf("%d frames in 2 s, want at least 40", got)
	}
	checkTimestamps(t, frames)
	for i, fr := range frames {
		for _, n := range fr.nalus {
			if typ := h264.NALUType(n[0] & 0x1f); typ == 0 || typ > 23 {
				t.Fatalf("frame %d has a NAL unit of type %d", i, typ)
			}
		}
	}
	if v := f.stream.Stats().Viewers; v != 1 {
		t.Fatalf("stream counts %d viewers, want 1", v)
	}
	if status := c.delete(t); status != http.StatusOK {
		t.Fatalf("DELETE: %d", status)
	}
	if n := e.relay.Sessions(); n != 0 {
		t.Fatalf("%d sessions after DELETE", n)
	}
	if st := f.stream.Stats(); st.Viewers != 0 || st.Subscribers != 0 {
		t.Fatalf("after DELETE: %d viewers, %d subscribers", st.Viewers, st.Subscribers)
	}
	e.relay.groups.mu.Lock()
	if len(e.relay.groups.by) != 0 {
		t.Errorf("groups left after DELETE: %d streams", len(e.relay.groups.by))
	}
	e.relay.groups.mu.Unlock()
	if status := c.delete(t); status != http.StatusNotFound {
		t.Fatalf("second DELETE: %d, want 404", status)
	}
}

func TestTwentyViewersAndDeleteFreesEverything(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	f := e.feedCached(t, "cam1", "cam.h264", ingest.CodecH264, ingest.CodecPCMU, 5)
	// with the relay and the camera running, every goroutine a session starts must end with it
	running := goleak.IgnoreCurrent()

	const n = 20
	clients := make([]*client, n)
	for i := range clients {
		clients[i] = newClient(t, "H264", true)
		clients[i].mustPlay(t, e.server.URL, "/whep/cam1")
	}
	if s := e.relay.Sessions(); s != n {
		t.Fatalf("%d sessions, want %d", s, n)
	}
	for i, c := range clients {
		testkit.WaitFor(t, 10*time.Second, "frames for every viewer", func() bool { return c.frameCount() >= 30 && c.audioCount() > 0 })
		frames, errs := c.snapshot()
		if len(errs) > 0 {
			t.Fatalf("viewer %d: %v", i, errs)
		}
		checkFirstH264(t, frames, 640)
		checkTimestamps(t, frames)
	}
	if v := f.stream.Stats().Viewers; v != n {
		t.Fatalf("stream counts %d viewers, want %d", v, n)
	}
	// the viewers (UDP) are served by one group of the stream
	e.relay.groups.mu.Lock()
	gs := e.relay.groups.by[f.stream]
	if len(gs) != 1 || len(gs[0].members) != n {
		t.Errorf("%d groups (want 1) for %d viewers", len(gs), n)
	}
	e.relay.groups.mu.Unlock()
	for _, c := range clients {
		if status := c.delete(t); status != http.StatusOK {
			t.Fatalf("DELETE: %d", status)
		}
		c.close()
	}
	if s := e.relay.Sessions(); s != 0 {
		t.Fatalf("%d sessions after DELETE", s)
	}
	if st := f.stream.Stats(); st.Viewers != 0 || st.Subscribers != 0 {
		t.Fatalf("after DELETE: %d viewers, %d subscribers", st.Viewers, st.Subscribers)
	}
	e.relay.groups.mu.Lock()
	if len(e.relay.groups.by) != 0 {
		t.Errorf("groups left after DELETE: %d streams", len(e.relay.groups.by))
	}
	e.relay.groups.mu.Unlock()
	http.DefaultClient.CloseIdleConnections()
	goleak.VerifyNone(t, running)
}

func TestViewerResumesAfterSourceReconnects(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	f := e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
	c := e.watch(t, "H264", "/whep/cam1", 10)

	f.setPaused(true)
	before := f.stream.Media()
	time.Sleep(300 * time.Millisecond) // the camera is away for a while (a scenario, not a wait for a condition)
	if m := f.reconnect(t); m != before {
		t.Fatalf("reconnect with the same parameters made a new Media generation")
	}
	n := c.frameCount()
	f.setPaused(false)
	testkit.WaitFor(t, 5*time.Second, "frames after the reconnect", func() bool { return c.frameCount() >= n+25 })
	frames, errs := c.snapshot()
	if len(errs) > 0 {
		t.Fatalf("client errors: %v", errs)
	}
	checkTimestamps(t, frames)
	if c.pc.SignalingState().String() != "stable" || e.relay.Sessions() != 1 {
		t.Fatalf("session renegotiated or ended: signaling %s, %d sessions", c.pc.SignalingState(), e.relay.Sessions())
	}
}

func TestH265ToAClientThatOffersIt(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	e.feedCached(t, "cam5", "cam.h265", ingest.CodecH265, "", 10)
	c := e.watch(t, "H265", "/whep/cam5", 40)
	frames, errs := c.snapshot()
	if len(errs) > 0 {
		t.Fatalf("client errors: %v", errs)
	}
	var vps, sps, pps, irap bool
	for _, n := range frames[0].nalus {
		switch typ := h265.NALUType((n[0] >> 1) & 0x3f); {
		case typ == h265.NALUType_VPS_NUT:
			vps = true
		case typ == h265.NALUType_SPS_NUT:
			var s h265.SPS
			if err := s.Unmarshal(n); err != nil {
				t.Fatalf("SPS: %v", err)
			}
			sps = s.Width() == 640
		case typ == h265.NALUType_PPS_NUT:
			pps = true
		case typ >= 16 && typ <= 21:
			irap = true
		}
	}
	if !vps || !sps || !pps || !irap {
		t.Fatalf("first H.265 frame not self-contained: vps=%v sps=%v pps=%v irap=%v", vps, sps, pps, irap)
	}
	checkTimestamps(t, frames)

	// a browser that offers only H.264 is told what to do
	c2 := newClient(t, "H264", false)
	status, body := c2.post(t, e.server.URL, "/whep/cam5")
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "H.265") || !strings.Contains(body, "sub-stream") {
		t.Fatalf("H.264-only offer for an H.265 camera: %d %s", status, body)
	}
}

func TestBadRequestsLeaveRunningViewerAlone(t *testing.T) {
	e := startEnv(t, Options{TrackWait: 300 * time.Millisecond}, nil)
	e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
	e.src.set("cold", ingest.Main, ingest.NewStream("cold/main")) // registered, never connected
	viewer := e.watch(t, "H264", "/whep/cam1", 5)

	post := func(path, ctype, body string) (int, string) {
		resp, err := http.Post(e.server.URL+path, ctype, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	audioOffer := "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n"
	cases := []struct {
		name, path, ctype, body string
		status                  int
		want                    string
	}{
		{"malformed SDP", "/whep/cam1", "application/sdp", "this is not SDP", 400, "malformed"},
		{"empty body", "/whep/cam1", "application/sdp", "", 400, "empty"},
		{"wrong content type", "/whep/cam1", "application/json", `{"sdp":"v=0"}`, 415, "application/sdp"},
		{"oversized body", "/whep/cam1", "application/sdp", strings.Repeat("a", maxOfferBytes+10), 413, "too large"},
		{"offer without video", "/whep/cam1", "application/sdp", audioOffer, 400, "no video"},
		{"unknown camera", "/whep/nosuch", "application/sdp", validOffer, 404, "not found"},
		{"camera not connected", "/whep/cold", "application/sdp", validOffer, 503, "not connected"},
		{"bad stream kind", "/whep/cam1?stream=third", "application/sdp", validOffer, 400, "stream"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, body := post(tc.path, tc.ctype, tc.body)
			if status != tc.status || !strings.Contains(body, tc.want) || !strings.HasPrefix(body, `{"error":`) {
				t.Fatalf("%d %s; want %d with %q", status, body, tc.status, tc.want)
			}
		})
	}
	vp8 := newClient(t, "VP8", false)
	status, body := vp8.post(t, e.server.URL, "/whep/cam1")
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "H.264") || !strings.Contains(body, "VP8") {
		t.Fatalf("VP8-only offer: %d %s", status, body)
	}
	for _, m := range []string{http.MethodDelete, http.MethodPatch} {
		req, _ := http.NewRequest(m, e.server.URL+"/whep/session/nosuch", strings.NewReader("a=end-of-candidates\r\n"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Fatalf("%s of an unknown session: %d", m, resp.StatusCode)
		}
	}
	if s := e.relay.Sessions(); s != 1 {
		t.Fatalf("%d sessions, want the one viewer", s)
	}
	n := viewer.frameCount()
	testkit.WaitFor(t, 3*time.Second, "the running viewer to keep receiving", func() bool { return viewer.frameCount() >= n+10 })
}

// postOffer posts validOffer to the WHEP endpoint of camera id and returns
// the status of the answer.
func (e *env) postOffer(t testing.TB, id string) int {
	t.Helper()
	resp, err := http.Post(e.server.URL+"/whep/"+id, "application/sdp", strings.NewReader(validOffer))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// validOffer is a minimal browser-like offer (never connected: only for error paths).
const validOffer = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n" +
	"m=video 9 UDP/TLS/RTP/SAVPF 102\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=recvonly\r\na=rtcp-mux\r\n" +
	"a=ice-ufrag:abcd\r\na=ice-pwd:abcdefghijklmnopqrstuvwx\r\n" +
	"a=fingerprint:sha-256 00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF\r\n" +
	"a=setup:actpass\r\na=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n"

func TestSubFallsBackToMain(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
	e.watch(t, "H264", "/whep/cam1?stream=sub", 5)
}

func TestSessionEnds(t *testing.T) {
	t.Run("never connected", func(t *testing.T) {
		e := startEnv(t, Options{SessionTimeout: 300 * time.Millisecond}, nil)
		e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
		if code := e.postOffer(t, "cam1"); code != http.StatusCreated {
			t.Fatalf("POST: %d", code)
		}
		if e.relay.Sessions() != 1 {
			t.Fatal("no session")
		}
		testkit.WaitFor(t, 3*time.Second, "the unconnected session to end", func() bool { return e.relay.Sessions() == 0 })
	})
	t.Run("camera removed", func(t *testing.T) {
		e := startEnv(t, Options{}, nil)
		f := e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
		e.watch(t, "H264", "/whep/cam1", 5)
		f.stream.Close()
		testkit.WaitFor(t, 3*time.Second, "the session to end", func() bool { return e.relay.Sessions() == 0 })
	})
	t.Run("viewer goes away", func(t *testing.T) {
		e := startEnv(t, Options{}, nil)
		e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
		c := e.watch(t, "H264", "/whep/cam1", 5)
		c.close() // DTLS close_notify: the relay notices at once
		testkit.WaitFor(t, 20*time.Second, "the session to end", func() bool { return e.relay.Sessions() == 0 })
	})
}

func TestPictureLossAnsweredFromCache(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	f := e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
	c := e.watch(t, "H264", "/whep/cam1", 5)
	// wait until we are well inside a GOP, so the camera's next keyframe is far away
	testkit.WaitFor(t, 5*time.Second, "mid-GOP", func() bool {
		n := f.count() % len(f.aus)
		return n%50 >= 10 && n%50 <= 20 && time.Since(c.posted) > 1200*time.Millisecond
	})
	keys := func() int {
		frames, _ := c.snapshot()
		k := 0
		for _, fr := range frames {
			for _, n := range fr.nalus {
				if h264.NALUType(n[0]&0x1f) == h264.NALUTypeIDR {
					k++
					break
				}
			}
		}
		return k
	}
	k0 := keys()
	sent := time.Now()
	if err := c.sendPLI(); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 2*time.Second, "a keyframe after the PLI", func() bool { return keys() > k0 })
	if d := time.Since(sent); d > 500*time.Millisecond {
		t.Fatalf("keyframe came %v after the PLI: not from the cache", d)
	}
	frames, _ := c.snapshot()
	checkTimestamps(t, frames)
}

func TestBFramesRefused(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	e.feed(t, "bf", "bframes.h264", ingest.CodecH264, "")
	c := newClient(t, "H264", false)
	status, body := c.post(t, e.server.URL, "/whep/bf")
	if status != http.StatusUnprocessableEntity || !strings.Contains(body, "B-frames") {
		t.Fatalf("B-frame camera: %d %s", status, body)
	}
}

func TestOpusAudio(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	e.feed(t, "cam1", "cam.h264", ingest.CodecH264, ingest.CodecOpus)
	c := newClient(t, "H264", true)
	c.mustPlay(t, e.server.URL, "/whep/cam1")
	testkit.WaitFor(t, 5*time.Second, "opus packets", func() bool { return c.audioCount() >= 20 && c.frameCount() >= 5 })
	c.mu.Lock()
	codecs := append([]string(nil), c.trackCodecs...)
	c.mu.Unlock()
	sort.Strings(codecs)
	if strings.Join(codecs, ",") != "audio/opus,video/H264" {
		t.Fatalf("tracks %v", codecs)
	}
}

func TestICETCPFallback(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
	c := newClientOn(t, "H264", false, webrtc.NetworkTypeTCP4)
	c.mustPlay(t, e.server.URL, "/whep/cam1")
	testkit.WaitFor(t, 10*time.Second, "frames over ICE-TCP", func() bool { return c.frameCount() >= 30 })
	frames, errs := c.snapshot()
	if len(errs) > 0 {
		t.Fatalf("client errors: %v", errs)
	}
	checkFirstH264(t, frames, 640)
	pair, err := c.pc.SCTP().Transport().ICETransport().GetSelectedCandidatePair()
	if err == nil && pair != nil && pair.Remote.Protocol != webrtc.ICEProtocolTCP {
		t.Fatalf("selected pair is %s, want TCP", pair.Remote.Protocol)
	}
}

func TestAnswerCandidates(t *testing.T) {
	e := startEnv(t, Options{PublicIPs: []string{"203.0.113.7"}}, nil)
	e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
	c := newClient(t, "H264", false)
	_, answer := c.post(t, e.server.URL, "/whep/cam1")
	port := e.relay.UDPPort()
	for _, proto := range []string{"udp", "tcp"} { // the UDP mux and ICE-TCP, same port, rewritten to the public IP
		if !containsCandidate(answer, proto, fmt.Sprintf("203.0.113.7 %d typ host", port)) {
			t.Errorf("answer lacks a %s candidate at 203.0.113.7:%d:\n%s", proto, port, answer)
		}
	}
	if strings.Contains(answer, "127.0.0.1") {
		t.Errorf("answer still shows the private address:\n%s", answer)
	}
}

// containsCandidate reports whether sdp has an a=candidate line of the
// transport proto whose address part contains addr.
func containsCandidate(sdp, proto, addr string) bool {
	for line := range strings.SplitSeq(sdp, "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[0], "a=candidate:") && strings.EqualFold(f[2], proto) &&
			strings.Contains(strings.Join(f[4:], " "), addr) {
			return true
		}
	}
	return false
}

func TestTrickleCandidates(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
	c := newClient(t, "H264", false)
	c.mustPlay(t, e.server.URL, "/whep/cam1")
	ufrag := remoteUfrag(c.pc.LocalDescription().SDP)
	patch := func(body string) int {
		req, _ := http.NewRequest(http.MethodPatch, e.server.URL+c.location, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/trickle-ice-sdpfrag")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if s := patch("a=ice-ufrag:" + ufrag + "\r\na=mid:0\r\na=candidate:1 1 udp 2130706431 127.0.0.1 9 typ host\r\na=end-of-candidates\r\n"); s != http.StatusNoContent {
		t.Fatalf("PATCH with a candidate: %d", s)
	}
	if s := patch("a=ice-ufrag:other\r\na=ice-pwd:otherpassword\r\n"); s != http.StatusUnprocessableEntity {
		t.Fatalf("PATCH with an ICE restart: %d, want 422", s)
	}
	if s := patch("a=candidate:broken\r\n"); s != http.StatusBadRequest {
		t.Fatalf("PATCH with a broken candidate: %d, want 400", s)
	}
	testkit.WaitFor(t, 5*time.Second, "frames", func() bool { return c.frameCount() >= 10 })
}

func TestNewValidates(t *testing.T) {
	src := &testSource{}
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"port", Options{UDPPort: 70000}, "not a port"},
		{"listen IP", Options{ListenIP: "localhost"}, "not an IPv4"},
		{"public IP", Options{PublicIPs: []string{"1.2.3"}}, "not an IP"},
		{"ICE URL", Options{ICEServers: []ICEServer{{URLs: []string{"http://x"}}}}, "ICE server URL"},
		{"TURN without credentials", Options{ICEServers: []ICEServer{{URLs: []string{"turn:turn.example.com:3478"}}}}, "username"},
		{"timeout", Options{SessionTimeout: -time.Second}, "negative"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.opts, src); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := New(Options{}, nil); err == nil {
		t.Fatal("nil source accepted")
	}
	r, err := New(Options{ICEServers: []ICEServer{{URLs: []string{"stun:stun.example.com:3478"}}}}, src)
	if err != nil {
		t.Fatal(err)
	}
	if got := r.ICEServers(); len(got) != 1 || got[0].URLs[0] != "stun:stun.example.com:3478" {
		t.Fatalf("ICEServers() = %+v", got)
	}
	// not running: Offer says so at once
	if _, _, err := r.Offer(t.Context(), "cam1", ingest.Main, validOffer); apierr.Status(err) != http.StatusServiceUnavailable {
		t.Fatalf("Offer before Run: %v", err)
	}
}

// TestNACKResendsThePacket asks for packets again that the viewer received
// (from the backlog and live) and checks that the same packets come back:
// the NACK responder keeps the viewer's headers and the shared payloads intact.
func TestNACKResendsThePacket(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	e.feedCached(t, "cam1", "cam.h264", ingest.CodecH264, "", 10)
	// replay protection would drop the resent copies of packets already received
	c := newClientWith(t, "H264", false, webrtc.NetworkTypeUDP4, func(se *webrtc.SettingEngine) {
		se.DisableSRTPReplayProtection(true)
	})
	var mu sync.Mutex
	got := map[uint16][]*rtp.Packet{}
	var order []uint16
	var ssrc uint32
	pictures := 0
	c.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				mu.Lock()
				if len(got[pkt.SequenceNumber]) == 0 {
					order = append(order, pkt.SequenceNumber)
				}
				if len(got[pkt.SequenceNumber]) == 0 && pkt.Marker {
					pictures++
				}
				got[pkt.SequenceNumber] = append(got[pkt.SequenceNumber], pkt)
				ssrc = pkt.SSRC
				mu.Unlock()
			}
		}()
	})
	c.mustPlay(t, e.server.URL, "/whep/cam1")
	// the history keeps the last nackUnits pictures
	testkit.WaitFor(t, 5*time.Second, "40 pictures", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return pictures >= 40 && len(order) >= 100
	})
	mu.Lock()
	asked := []uint16{order[0], order[1], order[len(order)/2], order[len(order)/2+1], order[len(order)-1]}
	media := ssrc
	mu.Unlock()
	if err := c.pc.WriteRTCP([]rtcp.Packet{&rtcp.TransportLayerNack{
		MediaSSRC: media, Nacks: rtcp.NackPairsFromSequenceNumbers(asked),
	}}); err != nil {
		t.Fatal(err)
	}
	testkit.WaitFor(t, 3*time.Second, "the packets sent again", func() bool {
		mu.Lock()
		defer mu.Unlock()
		for _, seq := range asked {
			if len(got[seq]) < 2 {
				return false
			}
		}
		return true
	})
	mu.Lock()
	defer mu.Unlock()
	for _, seq := range asked {
		a, b := got[seq][0], got[seq][1]
		if a.Timestamp != b.Timestamp || a.Marker != b.Marker || a.PayloadType != b.PayloadType ||
			a.SSRC != b.SSRC || !bytes.Equal(a.Payload, b.Payload) {
			t.Fatalf("packet %d sent again differs: ts %d/%d marker %v/%v pt %d/%d ssrc %d/%d payload equal %v",
				seq, a.Timestamp, b.Timestamp, a.Marker, b.Marker, a.PayloadType, b.PayloadType,
				a.SSRC, b.SSRC, bytes.Equal(a.Payload, b.Payload))
		}
	}
}

// TestSenderReports: the relay makes its sender reports itself (no pion
// interceptor): each track gets them, with its SSRC, the packets and bytes
// sent so far, the wall clock, and an RTP time that follows the packets'.
func TestSenderReports(t *testing.T) {
	e := startEnv(t, Options{}, nil)
	e.feed(t, "cam1", "cam.h264", ingest.CodecH264, ingest.CodecOpus)
	c := newClient(t, "H264", true)
	type seen struct {
		packets, octets uint32 // received when the report came
		lastTS          uint32
		report          *rtcp.SenderReport
		at              time.Time
	}
	var mu sync.Mutex
	got := map[webrtc.RTPCodecType]*seen{}
	c.pc.OnTrack(func(tr *webrtc.TrackRemote, rcv *webrtc.RTPReceiver) {
		s := &seen{}
		mu.Lock()
		got[tr.Kind()] = s
		mu.Unlock()
		c.wg.Add(2)
		go func() {
			defer c.wg.Done()
			for {
				p, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				mu.Lock()
				s.packets++
				s.octets += uint32(len(p.Payload))
				s.lastTS = p.Timestamp
				mu.Unlock()
			}
		}()
		go func() {
			defer c.wg.Done()
			for {
				pkts, _, err := rcv.ReadRTCP()
				if err != nil {
					return
				}
				for _, p := range pkts {
					if sr, ok := p.(*rtcp.SenderReport); ok && sr.SSRC == uint32(tr.SSRC()) {
						mu.Lock()
						if s.report == nil && s.packets > 0 {
							s.report, s.at = sr, time.Now()
						}
						mu.Unlock()
					}
				}
			}
		}()
	})
	c.mustPlay(t, e.server.URL, "/whep/cam1")
	testkit.WaitFor(t, 5*time.Second, "a sender report of each track", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) == 2 && got[webrtc.RTPCodecTypeVideo].report != nil && got[webrtc.RTPCodecTypeAudio].report != nil
	})
	mu.Lock()
	defer mu.Unlock()
	for kind, s := range got {
		sr := s.report
		if sr.PacketCount == 0 || sr.OctetCount == 0 || sr.PacketCount > s.packets+50 {
			t.Errorf("%s: report says %d packets, %d bytes; the viewer had %d packets", kind, sr.PacketCount, sr.OctetCount, s.packets)
		}
		// NTP: seconds since 1900
		sec := int64(sr.NTPTime>>32) - 2208988800
		if d := time.Since(time.Unix(sec, 0)); d < -2*time.Second || d > 3*time.Second {
			t.Errorf("%s: report's wall clock %v off by %v", kind, time.Unix(sec, 0), d)
		}
		clock := 90000
		if kind == webrtc.RTPCodecTypeAudio {
			clock = 48000
		}
		// the RTP time of the report is near the last packet's (within 2 s)
		if d := int32(sr.RTPTime - s.lastTS); d < -2*int32(clock) || d > 2*int32(clock) {
			t.Errorf("%s: report's RTP time %d is %d ticks from the last packet's %d", kind, sr.RTPTime, d, s.lastTS)
		}
	}
}
