package ingest

import (
	"bytes"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// splitNALUs cuts fuzz input into NAL units at every 0x00 0x00 0x01.
func splitNALUs(b []byte) [][]byte {
	var out [][]byte
	for {
		i := bytes.Index(b, []byte{0, 0, 1})
		if i < 0 {
			return append(out, b)
		}
		out = append(out, b[:i])
		b = b[i+3:]
	}
}

func joinNALUs(nalus ...[]byte) []byte { return bytes.Join(nalus, []byte{0, 0, 1}) }

// accessUnitSeeds are the access units of the unit tests.
var accessUnitSeeds = [][]byte{
	joinNALUs(testSPS720, testPPS, []byte{0x65, 1, 2}),
	joinNALUs([]byte{0x09, 0xf0}, []byte{0x65, 1, 2}),
	joinNALUs([]byte{0x41, 1}),
	joinNALUs(testVPS265, testSPS265, testPPS265, []byte{0x26, 1, 2}),
	joinNALUs([]byte{0x67, 0xff, 0xff, 0xff}, testPPS, []byte{0x65}),
	joinNALUs([]byte{}, []byte{0x65}),
	{},
}

func FuzzAccessUnit(f *testing.F) {
	for _, s := range accessUnitSeeds {
		f.Add(false, []byte(nil), s)
		f.Add(true, testSPS265, s)
	}
	f.Fuzz(func(t *testing.T, h265 bool, sdpSPS []byte, au []byte) {
		codec := CodecH264
		if h265 {
			codec = CodecH265
		}
		p := newParamSets(codec, testVPS265, sdpSPS, testPPS)
		out, key := p.accessUnit(splitNALUs(au))
		for _, n := range out {
			if len(n) == 0 {
				t.Fatal("empty NAL unit in output")
			}
		}
		if key {
			if !p.ready() {
				t.Fatal("keyframe without parameter sets")
			}
			i := 0
			if h265 {
				if !bytes.Equal(out[0], p.vps) {
					t.Fatal("H.265 keyframe does not start with the VPS")
				}
				i = 1
			}
			if !bytes.Equal(out[i], p.sps) || !bytes.Equal(out[i+1], p.pps) {
				t.Fatal("keyframe does not start with SPS, PPS")
			}
			if p.width <= 0 || p.height <= 0 {
				t.Fatal("keyframe with a parsed SPS but no size")
			}
		}
	})
}

func FuzzSPSSize(f *testing.F) {
	for _, s := range [][]byte{testSPS720, testSPS265, {0x67}, {0x42, 0x01}, {}} {
		f.Add(false, s)
		f.Add(true, s)
	}
	f.Fuzz(func(t *testing.T, h265 bool, sps []byte) {
		codec := CodecH264
		if h265 {
			codec = CodecH265
		}
		w, h, err := spsSize(codec, sps)
		if err == nil && (w <= 0 || h <= 0) {
			t.Fatalf("size %dx%d without an error", w, h)
		}
	})
}

// sdpSeeds are session descriptions of real and hostile cameras.
var sdpSeeds = []string{
	sdpH264(testSPS720, testPPS),
	sdpH264([]byte{0x67, 0xff, 0xff}, testPPS),
	"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=audio 0 RTP/AVP 0\r\na=control:trackID=0\r\n",
	"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H265/90000\r\n" +
		"m=audio 0 RTP/AVP 97\r\na=rtpmap:97 mpeg4-generic/48000/1\r\n" +
		"a=fmtp:97 streamtype=5; profile-level-id=15; mode=AAC-hbr; config=1188; sizelength=13; indexlength=3; indexdeltalength=3\r\n",
	"v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=x\r\nt=0 0\r\nm=video 0 RTP/AVP 96\r\na=rtpmap:96 H264/90000\r\na=fmtp:96 packetization-mode=2\r\n",
	"v=0\r\ns=x\r\nm=audio 0 RTP/AVP 111\r\na=rtpmap:111 opus/48000/2\r\n",
	"garbage",
}

func FuzzPlanTracks(f *testing.F) {
	for _, s := range sdpSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		desc, err := parseSDP(b)
		if err != nil {
			return
		}
		readers, err := planTracks(desc)
		if err != nil {
			return
		}
		if len(readers) == 0 || readers[0].params == nil {
			t.Fatal("plan without a video track first")
		}
		for _, tr := range readers {
			tr.publishTrack()
		}
	})
}

// FuzzDecodePacket feeds arbitrary RTP payloads to the session decoder of
// an H.264 + G.711 camera: it must never panic, and every unit it writes must
// respect the hub's rules.
func FuzzDecodePacket(f *testing.F) {
	f.Add(false, uint32(0), []byte{24, 0, 2, 0x65, 0x88, 0xff, 0xff, 0x41})
	f.Add(false, uint32(3600), []byte{0x65, 1, 2, 3})
	f.Add(false, uint32(0), []byte{28, 0x85, 1, 2})
	f.Add(false, uint32(0), []byte{0x67, 0xff})
	f.Add(true, uint32(160), make([]byte, 160))
	f.Add(true, uint32(0), []byte{})
	h264f := &format.H264{PayloadTyp: 96, SPS: testSPS720, PPS: testPPS, PacketizationMode: 1}
	g711f := &format.G711{PayloadTyp: 8, SampleRate: 8000, ChannelCount: 1}
	f.Fuzz(func(t *testing.T, audio bool, ts uint32, payload []byte) {
		desc := &description.Session{Medias: []*description.Media{
			{Type: description.MediaTypeVideo, Formats: []format.Format{h264f}},
			{Type: description.MediaTypeAudio, Formats: []format.Format{g711f}},
		}}
		readers, err := planTracks(desc)
		if err != nil {
			t.Fatal(err)
		}
		fc := newFakeClient(desc)
		stream := NewStream("fuzz")
		sub := stream.Subscribe(SubscribeOptions{})
		p := newPuller(pullerConfig{stream: stream, log: testkit.Log(t), url: "rtsp://x/y"})
		w := &sessionWriter{p: p, c: fc, readers: readers}
		// a valid keyframe first, so that the fuzzed packet meets a published session
		key := &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, Marker: true}, Payload: append([]byte{0x65}, 1, 2, 3)}
		w.packet(readers[0], key)
		tr := readers[0]
		if audio {
			tr = readers[1]
		}
		w.packet(tr, &rtp.Packet{Header: rtp.Header{Version: 2, Timestamp: ts, Marker: true}, Payload: payload})
		for {
			sub.mu.Lock()
			n := sub.n
			sub.mu.Unlock()
			if n == 0 {
				break
			}
			u, _, _ := sub.Next(t.Context())
			if u.Keyframe && !bytes.Equal(u.Data[0], testSPS720) {
				t.Fatal("keyframe without its SPS in front")
			}
			if len(u.Data) == 0 {
				t.Fatal("empty unit")
			}
		}
		sub.Close()
	})
}

func FuzzNotRTSP(f *testing.F) {
	for _, s := range []string{"RTSP/1.0 200 OK", "HTTP/1.1 400", "RTS", "$\x00\x00\x10", "\x00\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		pe := notRTSP(b)
		if pe != nil && bytes.HasPrefix(b, []byte("RTSP/")) {
			t.Fatal("an RTSP answer taken for something else")
		}
		if pe != nil && len(printable(b)) > len(b) {
			t.Fatal("printable grew")
		}
	})
}
