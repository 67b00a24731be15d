package ingest

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtpmpeg4audio"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/pion/rtp"

	"github.com/vigil-vms/vigil/camsim"
)

// Parameter sets made by ffmpeg (libx264 baseline 1280x720, libx265 640x360).
var (
	testSPS720  = mustHex("6742c01fd9005005bb011000000300100000030320f1832480")
	testPPS     = mustHex("68cb83cb20")
	testVPS265  = mustHex("40010c01ffff01600000030090000003000003003f928090")
	testSPS265  = mustHex("42010101600000030090000003000003003fa0050201696592a4932bc05a020000030002000003003210")
	testPPS265  = mustHex("4401c172b46240")
	testAACConf = &mpeg4audio.AudioSpecificConfig{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 48000, ChannelCount: 1}
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// fakeSlice returns a slice NAL unit of the given type and size with random content.
func fakeSlice(header byte, size int) []byte {
	b := make([]byte, size)
	rand.Read(b)
	b[0] = header
	for i := 1; i < len(b); i++ {
		if b[i] == 0 { // avoid start-code emulation
			b[i] = 1
		}
	}
	return b
}

// testServer is a small RTSP server (gortsplib) with one synthetic H.264
// camera: 1280x720, 25 fps, a keyframe every 50 frames, SPS/PPS in the SDP and
// before every keyframe, and optionally AAC audio.
type testServer struct {
	t        *testing.T
	srv      *gortsplib.Server
	stream   *gortsplib.ServerStream
	desc     *description.Session
	addr     string
	user     string
	pass     string
	mu       sync.Mutex // guards stream until it is ready
	stall    atomic.Bool
	noKeys   atomic.Bool
	frameLen int

	stop chan struct{}
	wg   sync.WaitGroup
}

type testServerOptions struct {
	Addr     string // "" = 127.0.0.1:0
	UDP      bool
	Audio    bool
	User     string
	Pass     string
	FrameLen int // bytes per P-frame, default 1000
}

func startTestServer(t *testing.T, o testServerOptions) *testServer {
	t.Helper()
	ts := &testServer{t: t, user: o.User, pass: o.Pass, stop: make(chan struct{}), frameLen: o.FrameLen}
	if ts.frameLen == 0 {
		ts.frameLen = 1000
	}
	addr := o.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	var ln net.Listener
	ts.srv = &gortsplib.Server{
		Handler:     ts,
		RTSPAddress: addr,
		Listen: func(network, address string) (net.Listener, error) {
			l, err := net.Listen(network, address)
			ln = l
			return l, err
		},
	}
	if o.UDP {
		rtpc, rtcpc, err := camsim.ListenUDPPair("127.0.0.1")
		if err != nil {
			t.Fatal(err)
		}
		camsim.UseUDPPair(ts.srv, rtpc, rtcpc)
	}
	if err := ts.srv.Start(); err != nil {
		t.Fatalf("start rtsp server: %v", err)
	}
	ts.addr = ln.Addr().String()

	video := &description.Media{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H264{
		PayloadTyp: 96, SPS: testSPS720, PPS: testPPS, PacketizationMode: 1,
	}}}
	ts.desc = &description.Session{Medias: []*description.Media{video}}
	if o.Audio {
		ts.desc.Medias = append(ts.desc.Medias, &description.Media{Type: description.MediaTypeAudio,
			Formats: []format.Format{&format.MPEG4Audio{PayloadTyp: 97, Config: testAACConf, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}}})
	}
	stream := &gortsplib.ServerStream{Server: ts.srv, Desc: ts.desc}
	if err := stream.Initialize(); err != nil {
		t.Fatalf("init server stream: %v", err)
	}
	ts.mu.Lock()
	ts.stream = stream // a reader may have connected already
	ts.mu.Unlock()
	ts.wg.Add(1)
	go ts.send(o.Audio)
	return ts
}

func (ts *testServer) url(path string) string {
	if ts.user != "" {
		return fmt.Sprintf("rtsp://%s:%s@%s/%s", ts.user, ts.pass, ts.addr, path)
	}
	return fmt.Sprintf("rtsp://%s/%s", ts.addr, path)
}

// Close stops the server and its sender.
func (ts *testServer) Close() {
	select {
	case <-ts.stop:
		return
	default:
	}
	close(ts.stop)
	ts.wg.Wait()
	ts.stream.Close()
	ts.srv.Close()
}

// writeAU packetizes one access unit (H.264 NAL units, or AAC frames)
// with enc and writes its RTP packets of media m, stamped rtpTime.
func (ts *testServer) writeAU(m *description.Media, enc interface {
	Encode([][]byte) ([]*rtp.Packet, error)
}, au [][]byte, rtpTime uint32) {
	pkts, err := enc.Encode(au)
	if err != nil {
		panic(err)
	}
	for _, p := range pkts {
		p.Timestamp = rtpTime
		ts.stream.WritePacketRTP(m, p)
	}
}

func (ts *testServer) send(audio bool) {
	defer ts.wg.Done()
	vm := ts.desc.Medias[0]
	venc, _ := vm.Formats[0].(*format.H264).CreateEncoder()
	var am *description.Media
	var aacEnc *rtpmpeg4audio.Encoder
	if audio {
		am = ts.desc.Medias[1]
		aacEnc, _ = am.Formats[0].(*format.MPEG4Audio).CreateEncoder()
	}
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	base := mrand.Uint32()
	abase := mrand.Uint32()
	for i := 0; ; i++ {
		select {
		case <-ts.stop:
			return
		case <-tick.C:
		}
		if ts.stall.Load() {
			continue
		}
		var au [][]byte
		if i%50 == 0 && !ts.noKeys.Load() {
			au = [][]byte{testSPS720, testPPS, fakeSlice(0x65, ts.frameLen*4)}
		} else {
			au = [][]byte{fakeSlice(0x41, ts.frameLen)}
		}
		ts.writeAU(vm, venc, au, base+uint32(i*3600))
		if aacEnc != nil {
			// 48 kHz: 320 ms (8 ticks) is 15 frames of 1024 samples
			if i%8 == 0 {
				aus := make([][]byte, 0, 15)
				for range 15 {
					aus = append(aus, fakeSlice(0x21, 30))
				}
				ts.writeAU(am, aacEnc, aus, abase+uint32(i*1920))
			}
		}
	}
}

// OnDescribe implements gortsplib.ServerHandlerOnDescribe.
func (ts *testServer) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ts.user != "" && !ctx.Conn.VerifyCredentials(ctx.Request, ts.user, ts.pass) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	if ctx.Path == "/missing" || ctx.Path == "missing" {
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return ts.current()
}

// OnSetup implements gortsplib.ServerHandlerOnSetup.
func (ts *testServer) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ts.user != "" && !ctx.Conn.VerifyCredentials(ctx.Request, ts.user, ts.pass) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	return ts.current()
}

// OnPlay implements gortsplib.ServerHandlerOnPlay.
func (ts *testServer) OnPlay(*gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (ts *testServer) current() (*base.Response, *gortsplib.ServerStream, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if ts.stream == nil {
		return &base.Response{StatusCode: base.StatusServiceUnavailable}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, ts.stream, nil
}
