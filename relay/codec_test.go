package relay

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

const sdpHead = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"

// offerCases feed TestParseOffer and the seeds of FuzzParseOffer.
var offerCases = []struct {
	name  string
	sdp   string
	err   error  // kind, nil for success
	video string // first video codec name
	audio bool
}{
	{"browser-like", validOffer, nil, "H264", false},
	{"video and audio", sdpHead +
		"m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=recvonly\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 H264/90000\r\na=fmtp:97 packetization-mode=1\r\na=rtcp-fb:97 nack pli\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 0\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\n", nil, "VP8", true},
	{"static PCMU without rtpmap", sdpHead +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/90000\r\nm=audio 9 UDP/TLS/RTP/SAVPF 0\r\n", nil, "H264", true},
	{"sendonly video is no video", sdpHead +
		"m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=sendonly\r\na=rtpmap:96 H264/90000\r\n", apierr.ErrInvalid, "", false},
	{"audio only", sdpHead + "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=rtpmap:111 opus/48000/2\r\n", apierr.ErrInvalid, "", false},
	{"not SDP", "hello", apierr.ErrInvalid, "", false},
	{"empty", "", apierr.ErrInvalid, "", false},
	{"bad payload type", sdpHead + "m=video 9 UDP/TLS/RTP/SAVPF abc\r\n", apierr.ErrInvalid, "", false},
	{"payload type too large", sdpHead + "m=video 9 UDP/TLS/RTP/SAVPF 300\r\n", apierr.ErrInvalid, "", false},
	{"bad clock rate", sdpHead + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 H264/fast\r\n", apierr.ErrInvalid, "", false},
	{"bad channels", sdpHead + "m=audio 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 opus/48000/x\r\nm=video 9 RTP/AVP 97\r\n", apierr.ErrInvalid, "", false},
	{"rtpmap without name", sdpHead + "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=rtpmap:96 /90000\r\n", apierr.ErrInvalid, "", false},
	{"too large", sdpHead + strings.Repeat("a=x\r\n", maxOfferBytes/5+1), apierr.ErrInvalid, "", false},
}

func TestParseOffer(t *testing.T) {
	for _, tc := range offerCases {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseOffer(tc.sdp)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want kind %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Video[0].Name != tc.video || o.HasAudio != tc.audio {
				t.Fatalf("video %q audio %v, want %q %v", o.Video[0].Name, o.HasAudio, tc.video, tc.audio)
			}
		})
	}
}

func FuzzParseOffer(f *testing.F) {
	for _, tc := range offerCases {
		f.Add(tc.sdp)
	}
	f.Fuzz(func(t *testing.T, s string) {
		o, err := parseOffer(s)
		if err != nil {
			if apierr.Status(err) != 400 {
				t.Fatalf("error of no client kind: %v", err)
			}
			return
		}
		if len(o.Video) == 0 {
			t.Fatal("success without a video codec")
		}
		// planning against any camera must not panic either
		for _, codec := range []string{ingest.CodecH264, ingest.CodecH265} {
			m := &ingest.Media{Tracks: []*ingest.Track{{Video: true, Codec: codec}, {Codec: ingest.CodecPCMA, Index: 1}}}
			if _, err := planTracks(m, o); err != nil && !errors.Is(err, apierr.ErrUnsupported) {
				t.Fatalf("plan: %v", err)
			}
		}
	})
}

func TestPlanTracks(t *testing.T) {
	h264 := readFixture(t, "cam.h264", ingest.CodecH264)
	vt := videoTrack(t, ingest.CodecH264, h264[0])
	bf := videoTrack(t, ingest.CodecH264, readFixture(t, "bframes.h264", ingest.CodecH264)[0])
	h265 := videoTrack(t, ingest.CodecH265, readFixture(t, "cam.h265", ingest.CodecH265)[0])
	parse := func(s string) *offer {
		o, err := parseOffer(s)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	browser := parse(sdpHead +
		"m=video 9 UDP/TLS/RTP/SAVPF 100 102 104 106 108\r\na=recvonly\r\n" +
		"a=rtpmap:100 VP8/90000\r\n" +
		"a=rtpmap:102 H264/90000\r\na=fmtp:102 level-asymmetry-allowed=1;packetization-mode=0;profile-level-id=42e01f\r\n" +
		"a=rtpmap:104 H264/90000\r\na=fmtp:104 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=640034\r\n" +
		"a=rtpmap:106 H264/90000\r\na=fmtp:106 level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=42e01f\r\n" +
		"a=rtpmap:108 rtx/90000\r\na=fmtp:108 apt=106\r\n" +
		"m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8\r\na=recvonly\r\na=rtpmap:111 opus/48000/2\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:8 PCMA/8000\r\n")
	vp8Only := parse(sdpHead + "m=video 9 UDP/TLS/RTP/SAVPF 96 97\r\na=rtpmap:96 VP8/90000\r\na=rtpmap:97 VP9/90000\r\n")
	audio := func(codec string) *ingest.Track { return &ingest.Track{Index: 1, Codec: codec} }
	cases := []struct {
		name    string
		tracks  []*ingest.Track
		o       *offer
		err     error
		wantPT  webrtc.PayloadType
		audioPT int // -1: no audio sent
		msg     string
	}{
		{"baseline picks constrained baseline mode 1", []*ingest.Track{vt}, browser, nil, 106, -1, ""},
		{"PCMA audio", []*ingest.Track{vt, audio(ingest.CodecPCMA)}, browser, nil, 106, 8, ""},
		{"Opus audio", []*ingest.Track{vt, audio(ingest.CodecOpus)}, browser, nil, 106, 111, ""},
		{"AAC skipped, video plays", []*ingest.Track{vt, audio(ingest.CodecAAC)}, browser, nil, 106, -1, ""},
		{"no common codec", []*ingest.Track{vt}, vp8Only, apierr.ErrUnsupported, 0, 0, "camera sends H.264, which this browser does not offer (it offers VP8, VP9)"},
		{"H.265 to an H.264 browser", []*ingest.Track{h265}, browser, apierr.ErrUnsupported, 0, 0, "set the camera's sub-stream to H.264"},
		{"B-frames", []*ingest.Track{bf}, browser, apierr.ErrUnsupported, 0, 0, "B-frames"},
		{"no video", []*ingest.Track{audio(ingest.CodecPCMA)}, browser, apierr.ErrUnsupported, 0, 0, "no video"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planTracks(&ingest.Media{Tracks: tc.tracks}, tc.o)
			if tc.err != nil {
				if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
					t.Fatalf("error %v, want kind %v with %q", err, tc.err, tc.msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Video.PayloadType != tc.wantPT {
				t.Fatalf("video payload type %d, want %d", p.Video.PayloadType, tc.wantPT)
			}
			got := -1
			if p.Audio != nil {
				got = int(p.Audio.PayloadType)
			}
			if got != tc.audioPT {
				t.Fatalf("audio payload type %d, want %d (skipped: %q)", got, tc.audioPT, p.AudioSkipped)
			}
		})
	}
}

// fragmentCases feed TestParseSDPFragment and the seeds of FuzzParseSDPFragment.
var fragmentCases = []struct {
	name       string
	frag       string
	ok         bool
	candidates int
}{
	{"candidates", "a=ice-ufrag:abcd\r\na=ice-pwd:xyz\r\nm=video 9 UDP/TLS/RTP/SAVPF 0\r\na=mid:0\r\n" +
		"a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n", true, 1},
	{"end only", "a=end-of-candidates\n", true, 0},
	{"short candidate", "a=candidate:1 1 udp\r\n", false, 0},
	{"not SDP", "hello\r\n", false, 0},
	{"nothing", "", false, 0},
}

func TestParseSDPFragment(t *testing.T) {
	for _, tc := range fragmentCases {
		t.Run(tc.name, func(t *testing.T) {
			f, err := parseSDPFragment(tc.frag)
			if !tc.ok {
				if !errors.Is(err, apierr.ErrInvalid) {
					t.Fatalf("error %v, want ErrInvalid", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(f.Candidates) != tc.candidates {
				t.Fatalf("%d candidates, want %d", len(f.Candidates), tc.candidates)
			}
			if tc.candidates > 0 && (f.Candidates[0].Mid != "0" || !strings.HasPrefix(f.Candidates[0].Candidate, "candidate:")) {
				t.Fatalf("candidate %+v", f.Candidates[0])
			}
		})
	}
}

func FuzzParseSDPFragment(f *testing.F) {
	for _, tc := range fragmentCases {
		f.Add(tc.frag)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := parseSDPFragment(s); err != nil && !errors.Is(err, apierr.ErrInvalid) {
			t.Fatalf("error of another kind: %v", err)
		}
	})
}

func TestTicks(t *testing.T) {
	for _, tc := range []struct {
		p     time.Duration
		clock uint32
		want  uint32
	}{
		{0, 90000, 0},
		{40 * time.Millisecond, 90000, 3600},
		{backlogStep, 90000, 9},
		{20 * time.Millisecond, 48000, 960},
		{100 * time.Hour, 90000, uint32(uint64(100*3600*90000) & 0xffffffff)},
		{-40 * time.Millisecond, 90000, uint32(0xffffffff - 3600 + 1)},
	} {
		if got := ticks(tc.p, tc.clock); got != tc.want {
			t.Errorf("ticks(%v, %d) = %d, want %d", tc.p, tc.clock, got, tc.want)
		}
	}
}

// TestSenderTimeline checks the mapping of PTS to RTP time: the cached GOP is
// compressed to backlogStep apart, live units follow at the camera's pace
// right after it, a PLI restart keeps timestamps increasing, and pictures
// whose PTS goes backwards (B-frames) switch to keyframes only.
func TestSenderTimeline(t *testing.T) {
	vt := &ingest.Track{Video: true, Codec: ingest.CodecH264}
	p := &plan{VideoTrack: vt, Video: webrtc.RTPCodecParameters{PayloadType: 102}}
	track := newRTPTrack(p.Video, "video")
	s, err := newSender(p, newPacketCache(), track, nil)
	if err != nil {
		t.Fatal(err)
	}
	var sentP []time.Duration
	unit := func(pts time.Duration, key bool) *ingest.Unit {
		return &ingest.Unit{Track: vt, PTS: pts, Keyframe: key, Data: [][]byte{{0x65}}}
	}
	gop := []*ingest.Unit{unit(10*time.Second, true)}
	for i := 1; i < 25; i++ {
		gop = append(gop, unit(10*time.Second+time.Duration(i)*40*time.Millisecond, false))
	}
	if err := s.writeBacklog(gop); err != nil {
		t.Fatal(err)
	}
	sentP = append(sentP, s.lastP)
	if want := 24 * backlogStep; s.lastP != want {
		t.Fatalf("after the backlog P = %v, want %v (compressed)", s.lastP, want)
	}
	live := unit(gop[24].PTS+40*time.Millisecond, false)
	if err := s.writeLive(live); err != nil {
		t.Fatal(err)
	}
	if want := 24*backlogStep + 40*time.Millisecond; s.lastP != want {
		t.Fatalf("first live P = %v, want %v (the live edge continues at once)", s.lastP, want)
	}
	sentP = append(sentP, s.lastP)
	// PLI: restart from the same GOP plus the live unit
	if err := s.writeBacklog(append(gop, live)); err != nil {
		t.Fatal(err)
	}
	if s.lastP <= sentP[1] {
		t.Fatalf("restart went back in time: %v after %v", s.lastP, sentP[1])
	}
	// B-frames: a picture with an earlier PTS switches to keyframes only
	before := s.lastP
	if err := s.writeLive(unit(live.PTS+120*time.Millisecond, false)); err != nil {
		t.Fatal(err)
	}
	if err := s.writeLive(unit(live.PTS+80*time.Millisecond, false)); err != nil {
		t.Fatal(err)
	}
	if !s.keyframesOnly {
		t.Fatal("PTS going backwards not detected")
	}
	afterB := s.lastP
	if afterB != before+120*time.Millisecond {
		t.Fatalf("P %v, want %v", afterB, before+120*time.Millisecond)
	}
	if err := s.writeLive(unit(live.PTS+160*time.Millisecond, false)); err != nil {
		t.Fatal(err)
	}
	if s.lastP != afterB {
		t.Fatal("a delta picture was sent in keyframes-only mode")
	}
	if err := s.writeLive(unit(live.PTS+2*time.Second, true)); err != nil {
		t.Fatal(err)
	}
	if s.lastP <= afterB {
		t.Fatal("keyframe not sent in keyframes-only mode")
	}
}

// TestSenderSkipsToANewerKeyframe: a viewer so far behind that its next
// picture is older than the cached GOPs is not sent it (nor packetized for
// it alone): it skips to the next keyframe.
func TestSenderSkipsToANewerKeyframe(t *testing.T) {
	vt := &ingest.Track{Video: true, Codec: ingest.CodecH264}
	p := &plan{VideoTrack: vt, Video: webrtc.RTPCodecParameters{PayloadType: 102}}
	c := newPacketCache()
	s, err := newSender(p, c, newRTPTrack(p.Video, "video"), nil)
	if err != nil {
		t.Fatal(err)
	}
	unit := func(seq uint64, key bool) *ingest.Unit {
		return &ingest.Unit{Track: vt, Seq: seq, PTS: time.Duration(seq) * 40 * time.Millisecond, Keyframe: key, Data: [][]byte{{0x65}}}
	}
	send := func(u *ingest.Unit) (sent bool) {
		t.Helper()
		before := s.vseq
		if err := s.writeLive(u); err != nil {
			t.Fatal(err)
		}
		return s.vseq != before
	}
	old := unit(2, false)
	if !send(unit(1, true)) || !send(old) {
		t.Fatal("live pictures not sent")
	}
	// other viewers move the cache on by two GOPs
	for _, seq := range []uint64{10, 20} {
		if _, err := c.get(unit(seq, true)); err != nil {
			t.Fatal(err)
		}
	}
	if send(unit(3, false)) {
		t.Fatal("a picture older than the cached GOPs was sent")
	}
	if send(unit(4, false)) {
		t.Fatal("a picture after a skipped one was sent")
	}
	if !send(unit(20, true)) || !send(unit(21, false)) {
		t.Fatal("the viewer did not resume at the cached keyframe")
	}
}
