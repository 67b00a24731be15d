package ingest

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"
	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// fakeClient is an rtspClient without a network: the test calls the packet
// callbacks itself. PTS is the RTP timestamp minus the first one of the track.
type fakeClient struct {
	desc *description.Session

	mu    sync.Mutex
	cbs   map[format.Format]gortsplib.OnPacketRTPFunc
	first map[*description.Media]uint32
	done  chan struct{}
	once  sync.Once
}

func newFakeClient(desc *description.Session) *fakeClient {
	return &fakeClient{desc: desc, cbs: map[format.Format]gortsplib.OnPacketRTPFunc{},
		first: map[*description.Media]uint32{}, done: make(chan struct{})}
}

func (c *fakeClient) Describe(*base.URL) (*description.Session, *base.Response, error) {
	return c.desc, &base.Response{StatusCode: base.StatusOK}, nil
}

func (c *fakeClient) Setup(*base.URL, *description.Media, int, int) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (c *fakeClient) OnPacketRTP(_ *description.Media, f format.Format, cb gortsplib.OnPacketRTPFunc) {
	c.mu.Lock()
	c.cbs[f] = cb
	c.mu.Unlock()
}

func (c *fakeClient) PacketPTS2(m *description.Media, pkt *rtp.Packet) (int64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.first[m]
	if !ok {
		f = pkt.Timestamp
		c.first[m] = f
	}
	return int64(int32(pkt.Timestamp - f)), true
}

func (c *fakeClient) OnPacketRTCP(*description.Media, gortsplib.OnPacketRTCPFunc) {}

func (c *fakeClient) Play(*headers.Range) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (c *fakeClient) Wait() error { <-c.done; return errFakeClosed }

func (c *fakeClient) Close() { c.once.Do(func() { close(c.done) }) }

func (c *fakeClient) feed(f format.Format, pkts []*rtp.Packet) {
	c.mu.Lock()
	cb := c.cbs[f]
	c.mu.Unlock()
	for _, p := range pkts {
		cb(p)
	}
}

var errFakeClosed = context.Canceled

// TestDecodeWithoutNetwork runs a puller session on a fake client: H.264 with
// parameter sets only in the SDP (keyframes get them prepended), an in-band
// SPS change, AAC with several frames per packet.
func TestDecodeWithoutNetwork(t *testing.T) {
	h264f := &format.H264{PayloadTyp: 96, SPS: testSPS720, PPS: testPPS, PacketizationMode: 1}
	aacf := &format.MPEG4Audio{PayloadTyp: 97, Config: testAACConf, SizeLength: 13, IndexLength: 3, IndexDeltaLength: 3}
	desc := &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{h264f}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{aacf}},
	}}
	fc := newFakeClient(desc)
	stream := NewStream("fake/main")
	p := newPuller(pullerConfig{camera: "fake", kind: Main, url: "rtsp://u:p@cam/x", stream: stream,
		log: testkit.Log(t), stall: time.Hour, readTimeout: time.Second,
		dial: func(*base.URL, string, time.Duration, *slog.Logger) (rtspClient, error) { return fc, nil }})
	sub := stream.Subscribe(SubscribeOptions{})
	defer sub.Close()

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := p.session(ctx); done <- err }()
	testkit.WaitFor(t, 5*time.Second, "callbacks", func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return len(fc.cbs) == 2
	})

	venc, _ := h264f.CreateEncoder()
	aenc, _ := aacf.CreateEncoder()
	send := func(ts uint32, au [][]byte) {
		pkts, err := venc.Encode(au)
		if err != nil {
			t.Fatal(err)
		}
		for _, pk := range pkts {
			pk.Timestamp = ts
		}
		fc.feed(h264f, pkts)
	}
	// a P-frame before any keyframe: dropped
	send(1000, [][]byte{fakeSlice(0x41, 100)})
	// keyframe without parameter sets, big enough to be fragmented (FU-A)
	send(1000+3600, [][]byte{{0x09, 0xf0}, fakeSlice(0x65, 5000)})
	send(1000+7200, [][]byte{fakeSlice(0x41, 100)})
	// AAC: 3 frames in one packet
	apkts, err := aenc.Encode([][]byte{{0x21, 1}, {0x21, 2}, {0x21, 3}})
	if err != nil {
		t.Fatal(err)
	}
	for _, pk := range apkts {
		pk.Timestamp = 5000
	}
	fc.feed(aacf, apkts)
	// in-band parameter sets with the next keyframe: kept in front, not duplicated
	send(1000+10800, [][]byte{bytes.Clone(testSPS720), testPPS, fakeSlice(0x65, 300)})

	get := func() *Unit {
		t.Helper()
		c, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		u, _, err := sub.Next(c)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	u := get()
	if !u.Keyframe || len(u.Data) != 3 || !bytes.Equal(u.Data[0], testSPS720) || !bytes.Equal(u.Data[1], testPPS) ||
		len(u.Data[2]) != 5000 || u.Data[2][0] != 0x65 {
		t.Fatalf("keyframe: %d NAL units, key=%v", len(u.Data), u.Keyframe)
	}
	if u.PTS != 40*time.Millisecond {
		t.Errorf("keyframe PTS %v, want 40ms", u.PTS)
	}
	if u.Track.Width != 1280 || u.Track.Height != 720 {
		t.Errorf("track size %dx%d", u.Track.Width, u.Track.Height)
	}
	if u := get(); u.Keyframe || u.PTS != 80*time.Millisecond {
		t.Errorf("P-frame: key=%v PTS=%v", u.Keyframe, u.PTS)
	}
	for i := range 3 {
		u := get()
		if u.Track.Video || u.Track.Codec != CodecAAC || u.Data[0][1] != byte(i+1) {
			t.Fatalf("audio frame %d: %+v", i, u)
		}
		if want := time.Duration(i) * 1024 * time.Second / 48000; u.PTS != want {
			t.Errorf("audio frame %d PTS %v, want %v", i, u.PTS, want)
		}
	}
	if u := get(); !u.Keyframe || len(u.Data) != 3 {
		t.Errorf("second keyframe: %d NAL units", len(u.Data))
	}
	st := p.status()
	if st.State != StateOnline || st.Video == nil || st.Audio == nil || st.Audio.SampleRate != 48000 {
		t.Errorf("status %+v", st)
	}
	cancel()
	<-done
	fc.Close()
}

// TestProbeFromSDP: a camera whose SDP carries the SPS is probed without PLAY.
func TestProbeFromSDP(t *testing.T) {
	desc := &description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{&format.H265{PayloadTyp: 96, VPS: testVPS265, SPS: testSPS265, PPS: testPPS265}}},
		{Type: description.MediaTypeAudio, Formats: []format.Format{&format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}}},
	}}
	fc := newFakeClient(desc)
	res, err := probe(context.Background(), "rtsp://cam/x", "tcp", func(*base.URL, string, time.Duration, *slog.Logger) (rtspClient, error) { return fc, nil })
	if err != nil {
		t.Fatal(err)
	}
	if res.Video.Codec != CodecH265 || res.Video.Width != 640 || res.Video.Height != 360 {
		t.Errorf("video %+v", *res.Video)
	}
	if res.Audio == nil || res.Audio.Codec != CodecPCMA || res.Audio.SampleRate != 8000 {
		t.Errorf("audio %+v", res.Audio)
	}
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		failures int
		want     time.Duration
	}{{1, time.Second}, {2, 2 * time.Second}, {3, 4 * time.Second}, {5, 16 * time.Second}, {6, 30 * time.Second}, {100, 30 * time.Second}} {
		for range 20 {
			d := backoff(tc.failures, time.Second, 30*time.Second)
			lo, hi := time.Duration(float64(tc.want)*0.8), time.Duration(float64(tc.want)*1.2)
			if d < lo || d > hi {
				t.Errorf("backoff(%d) = %v, want %v ±20%%", tc.failures, d, tc.want)
			}
		}
	}
}

// TestRetryWait: a session that delivered video is no failure, whatever its
// length; one that delivered nothing backs off.
func TestRetryWait(t *testing.T) {
	const lo, hi = time.Second, 30 * time.Second
	for _, tc := range []struct {
		failures     int
		streamed     bool
		lasted       time.Duration
		want         time.Duration // ±20 % when it is a backoff
		wantFailures int
	}{
		{5, true, 20 * time.Second, 0, 0},
		{0, true, 2 * time.Second, 0, 0},
		{3, true, 300 * time.Millisecond, 700 * time.Millisecond, 0}, // not sooner than lo after the last start
		{0, false, 20 * time.Second, time.Second, 1},
		{3, false, time.Second, 8 * time.Second, 4},
		{9, false, time.Second, 30 * time.Second, 10},
	} {
		got, failures := retryWait(tc.failures, tc.streamed, tc.lasted, lo, hi)
		slack := time.Duration(0)
		if !tc.streamed {
			slack = tc.want / 5
		}
		if failures != tc.wantFailures || got < tc.want-slack || got > tc.want+slack {
			t.Errorf("retryWait(%d, %v, %v) = %v, %d; want %v, %d", tc.failures, tc.streamed, tc.lasted, got, failures, tc.want, tc.wantFailures)
		}
	}
}

func TestRedactedErrors(t *testing.T) {
	pe := classify(&PullError{Kind: ErrBadReply, Msg: "x", Err: errString("dial rtsp://admin:topsecret@10.0.0.1/x")}, "h")
	if strings.Contains(pe.Error(), "topsecret") {
		t.Errorf("password in %q", pe.Error())
	}
}

type errString string

func (e errString) Error() string { return string(e) }
