package remote

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/pion/ice/v4"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
)

// viewer is a WebRTC viewer as a browser would be: it offers recvonly
// H.264 and counts what arrives (loopback only).
type viewer struct {
	pc       *webrtc.PeerConnection
	posted   time.Time
	answered time.Duration // from the POST to its answer
	base     string
	location string
	auth     string // Authorization of every request, when set
	lang     string // Accept-Language of the offer

	mu          sync.Mutex
	packets     int
	firstPacket time.Time
	frames      int
	firstFrame  time.Time
	firstIDR    bool // the first whole picture is a keyframe
	wg          sync.WaitGroup
	closeOnce   sync.Once
}

func newViewer(t testing.TB) *viewer {
	t.Helper()
	me := &webrtc.MediaEngine{}
	fb := []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}}
	if err := me.RegisterCodec(webrtc.RTPCodecParameters{RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
		SDPFmtpLine: "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f", RTCPFeedback: fb}, PayloadType: 102}, webrtc.RTPCodecTypeVideo); err != nil {
		t.Fatal(err)
	}
	se := webrtc.SettingEngine{LoggerFactory: quietPion{}}
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(me), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	v := &viewer{pc: pc}
	t.Cleanup(v.close)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		v.wg.Add(1)
		go func() {
			defer v.wg.Done()
			dec := &rtph264.Decoder{}
			if err := dec.Init(); err != nil {
				return
			}
			for {
				pkt, _, err := tr.ReadRTP()
				if err != nil {
					return
				}
				now := time.Now()
				v.mu.Lock()
				if v.packets == 0 {
					v.firstPacket = now
				}
				v.packets++
				v.mu.Unlock()
				au, err := dec.Decode(pkt)
				if err != nil {
					continue
				}
				v.mu.Lock()
				if v.frames == 0 {
					v.firstFrame = now
					for _, nalu := range au {
						if len(nalu) > 0 && nalu[0]&0x1f == 5 {
							v.firstIDR = true
						}
					}
				}
				v.frames++
				v.mu.Unlock()
			}
		}()
	})
	return v
}

// offer is the SDP offer with the candidates gathered.
func (v *viewer) offer(t testing.TB) string {
	t.Helper()
	o, err := v.pc.CreateOffer(nil)
	if err != nil {
		t.Fatal(err)
	}
	gathered := webrtc.GatheringCompletePromise(v.pc)
	if err := v.pc.SetLocalDescription(o); err != nil {
		t.Fatal(err)
	}
	<-gathered
	return v.pc.LocalDescription().SDP
}

// post offers to base+path; on 201 it applies the answer. It returns the
// status and the body.
func (v *viewer) post(t testing.TB, base, path string) (int, string) {
	t.Helper()
	sdp := v.offer(t)
	v.posted = time.Now()
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(sdp))
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Accept-Language", v.lang)
	if v.auth != "" {
		req.Header.Set("Authorization", v.auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, string(body)
	}
	v.answered = time.Since(v.posted)
	v.base, v.location = base, resp.Header.Get("Location")
	if err := v.pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		t.Fatalf("set answer: %v", err)
	}
	return resp.StatusCode, string(body)
}

func (v *viewer) mustPlay(t testing.TB, base, path string) {
	t.Helper()
	if status, body := v.post(t, base, path); status != http.StatusCreated {
		t.Fatalf("POST %s: %d %s", path, status, body)
	}
}

// send makes a request on the session (PATCH or DELETE) and returns its status.
func (v *viewer) send(t testing.TB, method, ctype, body string) int {
	t.Helper()
	req, _ := http.NewRequest(method, v.base+v.location, strings.NewReader(body))
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if v.auth != "" {
		req.Header.Set("Authorization", v.auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

var ufragRE = regexp.MustCompile(`a=ice-ufrag:(\S+)`)

// ufrag is the viewer's ICE user fragment (what a trickle PATCH names).
func (v *viewer) ufrag() string {
	m := ufragRE.FindStringSubmatch(v.pc.LocalDescription().SDP)
	if m == nil {
		return ""
	}
	return m[1]
}

type stats struct {
	packets, frames         int
	firstPacket, firstFrame time.Duration // from the POST
	firstIDR                bool
}

func (v *viewer) stats() stats {
	v.mu.Lock()
	defer v.mu.Unlock()
	s := stats{packets: v.packets, frames: v.frames, firstIDR: v.firstIDR}
	if v.packets > 0 {
		s.firstPacket = v.firstPacket.Sub(v.posted)
	}
	if v.frames > 0 {
		s.firstFrame = v.firstFrame.Sub(v.posted)
	}
	return s
}

func (v *viewer) close() {
	v.closeOnce.Do(func() {
		_ = v.pc.Close()
		v.wg.Wait()
	})
}

// quietPion discards pion's logs.
type quietPion struct{}

func (quietPion) NewLogger(string) logging.LeveledLogger { return quietLogger{} }

type quietLogger struct{}

func (quietLogger) Trace(string)          {}
func (quietLogger) Tracef(string, ...any) {}
func (quietLogger) Debug(string)          {}
func (quietLogger) Debugf(string, ...any) {}
func (quietLogger) Info(string)           {}
func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Warn(string)           {}
func (quietLogger) Warnf(string, ...any)  {}
func (quietLogger) Error(string)          {}
func (quietLogger) Errorf(string, ...any) {}
