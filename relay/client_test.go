package relay

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/pion/ice/v4"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// whepHandler is the test's WHEP endpoint (RFC 9725) over the relay's API, as
// package ui mounts it: POST /whep/{camera}?stream=, PATCH and DELETE /whep/session/{id}.
func whepHandler(r *Relay, extra http.Handler) http.Handler {
	mux := http.NewServeMux()
	fail := func(w http.ResponseWriter, status int, err error) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
	}
	mux.HandleFunc("POST /whep/{camera}", func(w http.ResponseWriter, req *http.Request) {
		if ct, _, _ := mime.ParseMediaType(req.Header.Get("Content-Type")); ct != "application/sdp" {
			fail(w, http.StatusUnsupportedMediaType, errors.New("the offer must be application/sdp"))
			return
		}
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxOfferBytes))
		if err != nil {
			fail(w, http.StatusRequestEntityTooLarge, errors.New("the offer is too large"))
			return
		}
		kind := ingest.StreamKind(req.URL.Query().Get("stream"))
		if kind == "" {
			kind = ingest.Main
		}
		id, answer, err := r.Offer(req.Context(), req.PathValue("camera"), kind, string(body))
		if err != nil {
			fail(w, apierr.Status(err), err)
			return
		}
		w.Header().Set("Content-Type", "application/sdp")
		w.Header().Set("Location", "/whep/session/"+id)
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, answer)
	})
	mux.HandleFunc("PATCH /whep/session/{id}", func(w http.ResponseWriter, req *http.Request) {
		body, err := io.ReadAll(http.MaxBytesReader(w, req.Body, maxOfferBytes))
		if err != nil {
			fail(w, http.StatusRequestEntityTooLarge, errors.New("the fragment is too large"))
			return
		}
		if err := r.Patch(req.Context(), req.PathValue("id"), string(body)); err != nil {
			fail(w, apierr.Status(err), err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("DELETE /whep/session/{id}", func(w http.ResponseWriter, req *http.Request) {
		if err := r.Delete(req.PathValue("id")); err != nil {
			fail(w, apierr.Status(err), err)
			return
		}
		w.WriteHeader(http.StatusOK)
	})
	if extra != nil {
		mux.Handle("/", extra)
	}
	return mux
}

// env is a running relay with a test source and WHEP server.
type env struct {
	relay  *Relay
	src    *testSource
	server *httptest.Server
}

func quietLog() *slog.Logger {
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// startEnv runs a relay on 127.0.0.1 until the test ends.
func startEnv(t testing.TB, opts Options, extra http.Handler) *env {
	t.Helper()
	opts.ListenIP = "127.0.0.1"
	if opts.Log == nil {
		opts.Log = quietLog()
	}
	src := &testSource{}
	r, err := New(opts, src)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	select {
	case <-r.Ready():
	case err := <-done:
		cancel()
		t.Fatalf("relay did not start: %v", err)
	}
	srv := httptest.NewServer(whepHandler(r, extra))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		if err := <-done; err != nil {
			t.Errorf("relay run: %v", err)
		}
	})
	return &env{relay: r, src: src, server: srv}
}

// feed starts a feeder for camera id until the test ends.
func (e *env) feed(t *testing.T, id, fixture, codec, audio string) *feeder {
	t.Helper()
	f := newFeeder(t, id+"/main", fixture, codec, audio)
	e.src.set(id, ingest.Main, f.stream)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); f.run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// feedCached feeds camera id like feed and waits until the feeder has sent
// at least frames frames, so that the hub's GOP cache holds them.
func (e *env) feedCached(t *testing.T, id, fixture, codec, audio string, frames int) *feeder {
	t.Helper()
	f := e.feed(t, id, fixture, codec, audio)
	testkit.WaitFor(t, 5*time.Second, "fixture frames", func() bool { return f.count() >= frames })
	return f
}

// watch plays path (video codec, no audio) with a new client and waits
// until it has received at least frames frames.
func (e *env) watch(t *testing.T, codec, path string, frames int) *client {
	t.Helper()
	c := newClient(t, codec, false)
	c.mustPlay(t, e.server.URL, path)
	testkit.WaitFor(t, 5*time.Second, fmt.Sprintf("%d frames", frames), func() bool { return c.frameCount() >= frames })
	return c
}

// frame is one depacketized access unit received by a client.
type frame struct {
	nalus [][]byte
	ts    uint32
	at    time.Time
}

// client is an in-process WebRTC viewer (pion) that speaks WHEP.
type client struct {
	pc       *webrtc.PeerConnection
	codec    string // video codec offered: "H264", "H265" or "VP8"
	location string
	base     string
	posted   time.Time

	mu          sync.Mutex
	frames      []frame
	audio       int
	videoSSRC   webrtc.SSRC
	videoPT     uint8
	errs        []error
	wg          sync.WaitGroup
	closeOnce   sync.Once
	trackCodecs []string
}

// newClient makes a viewer that offers video in codec (and audio when audio is true).
func newClient(t testing.TB, codec string, audio bool) *client {
	t.Helper()
	return newClientOn(t, codec, audio, webrtc.NetworkTypeUDP4)
}

// newClientOn makes a viewer whose ICE uses only the given network type.
func newClientOn(t testing.TB, codec string, audio bool, network webrtc.NetworkType) *client {
	t.Helper()
	return newClientWith(t, codec, audio, network, nil)
}

// newClientWith is newClientOn with further settings (tune may be nil).
func newClientWith(t testing.TB, codec string, audio bool, network webrtc.NetworkType, tune func(*webrtc.SettingEngine)) *client {
	t.Helper()
	me := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	var vc []webrtc.RTPCodecParameters
	switch codec {
	case "H264":
		vc = []webrtc.RTPCodecParameters{
			{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f", RTCPFeedback: fb}, PayloadType: 100},
			{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb}, PayloadType: 102},
			{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640032", RTCPFeedback: fb}, PayloadType: 104},
		}
	case "H265":
		vc = []webrtc.RTPCodecParameters{{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH265,
			ClockRate: 90000, SDPFmtpLine: "level-id=93;profile-id=1;tier-flag=0;tx-mode=SRST", RTCPFeedback: fb}, PayloadType: 49}}
	case "VP8":
		vc = []webrtc.RTPCodecParameters{{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8,
			ClockRate: 90000, RTCPFeedback: fb}, PayloadType: 96}}
	default:
		t.Fatalf("unknown codec %q", codec)
	}
	for _, c := range vc {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeVideo); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []webrtc.RTPCodecParameters{
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, PayloadType: 111},
		{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000}, PayloadType: 0},
	} {
		if err := me.RegisterCodec(c, webrtc.RTPCodecTypeAudio); err != nil {
			t.Fatal(err)
		}
	}
	se := webrtc.SettingEngine{LoggerFactory: newPionLogs(quietLog())}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{network})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	if tune != nil {
		tune(&se)
	}
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	c := &client{pc: pc, codec: codec}
	t.Cleanup(c.close)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	if audio {
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeAudio,
			webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			t.Fatal(err)
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		c.mu.Lock()
		c.trackCodecs = append(c.trackCodecs, tr.Codec().MimeType)
		c.mu.Unlock()
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			if tr.Kind() == webrtc.RTPCodecTypeVideo {
				c.readVideo(tr)
				return
			}
			for {
				if _, _, err := tr.ReadRTP(); err != nil {
					return
				}
				c.mu.Lock()
				c.audio++
				c.mu.Unlock()
			}
		}()
	})
	return c
}

// auDecoder is the RTP depacketizer of H.264 or H.265 access units.
type auDecoder interface {
	Init() error
	Decode(*rtp.Packet) ([][]byte, error)
}

func (c *client) readVideo(tr *webrtc.TrackRemote) {
	var dec auDecoder
	switch c.codec {
	case "H264":
		dec = &rtph264.Decoder{}
	case "H265":
		dec = &rtph265.Decoder{}
	}
	if dec != nil {
		if err := dec.Init(); err != nil {
			c.fail(err)
			return
		}
	}
	c.mu.Lock()
	c.videoSSRC = tr.SSRC()
	c.videoPT = uint8(tr.PayloadType())
	c.mu.Unlock()
	for {
		pkt, _, err := tr.ReadRTP()
		if err != nil {
			return
		}
		if len(pkt.Payload) > maxPayload {
			c.fail(fmt.Errorf("RTP payload of %d bytes (max %d)", len(pkt.Payload), maxPayload))
		}
		au, err := dec.Decode(pkt)
		if err != nil {
			if errors.Is(err, rtph264.ErrMorePacketsNeeded) || errors.Is(err, rtph265.ErrMorePacketsNeeded) {
				continue
			}
			c.fail(fmt.Errorf("depacketize: %w", err))
			continue
		}
		c.mu.Lock()
		c.frames = append(c.frames, frame{nalus: au, ts: pkt.Timestamp, at: time.Now()})
		c.mu.Unlock()
	}
}

func (c *client) fail(err error) {
	c.mu.Lock()
	c.errs = append(c.errs, err)
	c.mu.Unlock()
}

// offer makes the SDP offer with candidates gathered.
func (c *client) offer(t testing.TB) string {
	t.Helper()
	o, err := c.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(c.pc)
	if err := c.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return c.pc.LocalDescription().SDP
}

// post sends the offer to the WHEP endpoint; on 201 it applies the answer.
// It returns the status and the body (the JSON error for a failure).
func (c *client) post(t testing.TB, base, path string) (int, string) {
	t.Helper()
	sdp := c.offer(t)
	c.posted = time.Now()
	resp, err := http.Post(base+path, "application/sdp", strings.NewReader(sdp))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, string(body)
	}
	c.base = base
	c.location = resp.Header.Get("Location")
	if err := c.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatalf("set answer: %v", err)
	}
	return resp.StatusCode, string(body)
}

// mustPlay posts and expects 201.
func (c *client) mustPlay(t testing.TB, base, path string) {
	t.Helper()
	if status, body := c.post(t, base, path); status != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", path, status, body)
	}
}

// delete ends the session with a WHEP DELETE.
func (c *client) delete(t testing.TB) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodDelete, c.base+c.location, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (c *client) sendPLI() error {
	c.mu.Lock()
	ssrc := c.videoSSRC
	c.mu.Unlock()
	return c.pc.WriteRTCP([]rtcp.Packet{&rtcp.PictureLossIndication{MediaSSRC: uint32(ssrc)}})
}

func (c *client) frameCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.frames)
}

func (c *client) audioCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.audio
}

func (c *client) snapshot() ([]frame, []error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]frame(nil), c.frames...), append([]error(nil), c.errs...)
}

func (c *client) close() {
	c.closeOnce.Do(func() {
		_ = c.pc.Close()
		c.wg.Wait()
	})
}
