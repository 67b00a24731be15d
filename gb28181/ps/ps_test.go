package ps

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
)

type demuxCase struct {
	name  string
	in    []byte
	units []Unit
	errs  []string // OnError messages, in order
	// mux: the muxer with these types, given units, writes exactly in.
	mux          bool
	video, audio StreamType
}

func vu(t StreamType, pts, dts int64, key bool, payload ...[]byte) Unit {
	return Unit{StreamID: 0xE0, Type: t, PTS: pts, DTS: dts, Keyframe: key, Payload: cat(payload...)}
}

func au(t StreamType, pts int64, payload []byte) Unit {
	return Unit{StreamID: 0xC0, Type: t, PTS: pts, DTS: pts, Payload: payload}
}

var bigFrame = func() []byte {
	b := cat(h264IDR[:6])
	r := rand.New(rand.NewPCG(1, 2))
	for len(b) < 150000 {
		v := byte(r.IntN(256))
		if n := len(b); v <= 3 && b[n-1] == 0 && b[n-2] == 0 {
			v = 0x55 // no start codes inside the slice
		}
		b = append(b, v)
	}
	return b
}()

var demuxCases = []demuxCase{
	{
		name: "h264 keyframe with system header and PSM, then P",
		in: cat(
			packHdr(3600, 0), sysHdr(sysVideo), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}),
			pesPkt(0xE0, ts(3600), h264Key),
			packHdr(7200, 0), pesPkt(0xE0, ts(7200), h264P)),
		units: []Unit{vu(TypeH264, 3600, 3600, true, h264Key), vu(TypeH264, 7200, 7200, false, h264P)},
		mux:   true,
		video: TypeH264,
	},
	{
		name: "h265 with AAC audio",
		in: cat(
			packHdr(3600, 0), sysHdr(sysVideo, sysAudio), psmPkt(false, psmEntry{TypeH265, 0xE0, nil}, psmEntry{TypeAAC, 0xC0, nil}),
			pesPkt(0xE0, ts(3600), h265Key),
			packHdr(4000, 0), pesPkt(0xC0, ts(4000), aacFrame),
			packHdr(7200, 0), pesPkt(0xE0, ts(7200), h265P)),
		units: []Unit{au(TypeAAC, 4000, aacFrame), vu(TypeH265, 3600, 3600, true, h265Key), vu(TypeH265, 7200, 7200, false, h265P)},
		mux:   true, video: TypeH265, audio: TypeAAC,
	},
	{
		name: "h264 with G.711A audio",
		in: cat(
			packHdr(90000, 0), sysHdr(sysVideo, sysAudio), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}, psmEntry{TypeG711A, 0xC0, nil}),
			pesPkt(0xE0, ts(90000), h264Key),
			packHdr(90100, 0), pesPkt(0xC0, ts(90100), alaw),
			packHdr(93600, 0), pesPkt(0xE0, ts(93600), h264P)),
		units: []Unit{au(TypeG711A, 90100, alaw), vu(TypeH264, 90000, 90000, true, h264Key), vu(TypeH264, 93600, 93600, false, h264P)},
		mux:   true, video: TypeH264, audio: TypeG711A,
	},
	{
		name: "DTS differs from PTS",
		in: cat(
			packHdr(3600, 0), sysHdr(sysVideo), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}),
			pesPkt(0xE0, tsd(10800, 3600), h264Key),
			packHdr(7200, 0), pesPkt(0xE0, tsd(18000, 7200), h264P)),
		units: []Unit{vu(TypeH264, 10800, 3600, true, h264Key), vu(TypeH264, 18000, 7200, false, h264P)},
		mux:   true, video: TypeH264,
	},
	{
		name: "picture over 64 KiB in several PES packets",
		in: cat(
			packHdr(3600, 0), sysHdr(sysVideo), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}),
			pesPkt(0xE0, ts(3600), cat(h264SPS, h264PPS, bigFrame)[:maxPESPayload]),
			pesPkt(0xE0, noTS(), cat(h264SPS, h264PPS, bigFrame)[maxPESPayload:2*maxPESPayload]),
			pesPkt(0xE0, noTS(), cat(h264SPS, h264PPS, bigFrame)[2*maxPESPayload:]),
			packHdr(7200, 0), pesPkt(0xE0, ts(7200), h264P)),
		units: []Unit{vu(TypeH264, 3600, 3600, true, h264SPS, h264PPS, bigFrame), vu(TypeH264, 7200, 7200, false, h264P)},
		mux:   true, video: TypeH264,
	},
	{
		name: "pack stuffing, no system header (some cameras)",
		in: cat(
			packHdr(3600, 7), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}),
			pesPkt(0xE0, ts(3600), h264Key),
			packHdr(7200, 3), pesPkt(0xE0, ts(7200), h264P)),
		units: []Unit{vu(TypeH264, 3600, 3600, true, h264Key), vu(TypeH264, 7200, 7200, false, h264P)},
	},
	{
		name: "video PES_packet_length 0",
		in: cat(
			packHdr(3600, 0), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}),
			pesPkt(0xE0, zeroLen(3600), h264Key),
			packHdr(7200, 0), pesPkt(0xE0, zeroLen(7200), h264P),
			packHdr(10800, 0), pesPkt(0xE0, zeroLen(10800), h264P2)),
		units: []Unit{vu(TypeH264, 3600, 3600, true, h264Key), vu(TypeH264, 7200, 7200, false, h264P), vu(TypeH264, 10800, 10800, false, h264P2)},
	},
	{
		name: "frame split over PES packets, PES header stuffing",
		in: cat(
			packHdr(3600, 0), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}),
			pesPkt(0xE0, pesOpt{pts: 3600, dts: -1, stuffing: 4}, h264SPS),
			pesPkt(0xE0, noTS(), h264PPS),
			pesPkt(0xE0, noTS(), h264IDR[:7]),
			packHdr(5000, 0), pesPkt(0xE0, noTS(), h264IDR[7:]),
			packHdr(7200, 0), pesPkt(0xE0, ts(7200), h264P)),
		units: []Unit{vu(TypeH264, 3600, 3600, true, h264Key), vu(TypeH264, 7200, 7200, false, h264P)},
	},
	{
		name: "parameter sets in a PES without PTS, the IDR in one with",
		in: cat(
			packHdr(3600, 0), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}),
			pesPkt(0xE0, ts(3600), h264P),
			packHdr(7200, 0), pesPkt(0xE0, noTS(), cat(h264SPS, h264PPS)), pesPkt(0xE0, ts(7200), h264IDR),
			packHdr(10800, 0), pesPkt(0xE0, noTS(), cat(h264SPS, h264PPS)), pesPkt(0xE0, ts(10800), h264IDR)),
		units: []Unit{vu(TypeH264, 3600, 3600, false, h264P), vu(TypeH264, 7200, 7200, true, h264Key), vu(TypeH264, 10800, 10800, true, h264Key)},
	},
	{
		name: "frames not aligned to PES packets (ffmpeg)",
		in: cat(
			packHdr(3600, 0), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}),
			pesPkt(0xE0, ts(3600), h264Key),
			pesPkt(0xE0, ts(7200), cat(h264P, h264P2[:6])),
			pesPkt(0xE0, noTS(), h264P2[6:]),
			pesPkt(0xE0, ts(14400), h264P)),
		units: []Unit{vu(TypeH264, 3600, 3600, true, h264Key), vu(TypeH264, 7200, 7200, false, h264P), vu(TypeH264, 10800, 10800, false, h264P2), vu(TypeH264, 14400, 14400, false, h264P)},
	},
	{
		name: "private streams, padding and program end skipped",
		in: cat(
			packHdr(3600, 0), sysHdr(sysVideo), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}),
			[]byte{0, 0, 1, 0xBD, 0, 5, 0, 0, 1, 0xBA, 0xFF},
			pesPkt(0xE0, ts(3600), h264Key),
			[]byte{0, 0, 1, 0xBE, 0, 3, 0xFF, 0xFF, 0xFF},
			[]byte{0, 0, 1, 0xBF, 0, 2, 0xAB, 0xCD},
			packHdr(7200, 0), pesPkt(0xE0, ts(7200), h264P),
			[]byte{0, 0, 1, 0xB9}),
		units: []Unit{vu(TypeH264, 3600, 3600, true, h264Key), vu(TypeH264, 7200, 7200, false, h264P)},
	},
	{
		name: "PSM with a wrong CRC and descriptors is accepted",
		in: cat(
			packHdr(3600, 0), psmPkt(true, psmEntry{TypeH265, 0xE0, []byte{0x0A, 0x04, 'c', 'h', 'i', 0}}, psmEntry{TypeG711A, 0xC0, nil}),
			pesPkt(0xE0, ts(3600), h265Key),
			packHdr(3700, 0), pesPkt(0xC0, ts(3700), alaw)),
		units: []Unit{au(TypeG711A, 3700, alaw), vu(TypeH265, 3600, 3600, true, h265Key)},
	},
	{
		name: "no PSM: H.265 inferred from NAL headers",
		in: cat(
			packHdr(3600, 0), pesPkt(0xE0, ts(3600), h265Key),
			packHdr(7200, 0), pesPkt(0xE0, ts(7200), h265P)),
		units: []Unit{vu(TypeH265, 3600, 3600, true, h265Key), vu(TypeH265, 7200, 7200, false, h265P)},
		errs:  []string{"MPEG-PS has no program stream map (PSM): stream 0xE0 taken as H.265 from its payload"},
	},
	{
		name: "no PSM: H.264 and G.711A inferred, AAC told by ADTS",
		in: cat(
			packHdr(3600, 0), pesPkt(0xE0, ts(3600), h264Key),
			packHdr(3600, 0), pesPkt(0xC0, ts(3600), alaw), pesPkt(0xC1, ts(3600), aacFrame),
			packHdr(7200, 0), pesPkt(0xE0, ts(7200), h264P)),
		units: []Unit{
			{StreamID: 0xC0, Type: TypeG711A, PTS: 3600, DTS: 3600, Payload: alaw},
			{StreamID: 0xC1, Type: TypeAAC, PTS: 3600, DTS: 3600, Payload: aacFrame},
			vu(TypeH264, 3600, 3600, true, h264Key), vu(TypeH264, 7200, 7200, false, h264P)},
		errs: []string{
			"MPEG-PS has no program stream map (PSM): stream 0xE0 taken as H.264 from its payload",
			"MPEG-PS has no program stream map (PSM): stream 0xC0 taken as G.711A from its payload",
			"MPEG-PS has no program stream map (PSM): stream 0xC1 taken as AAC from its payload",
		},
	},
	{
		name: "garbage before the first pack",
		in: cat([]byte{0x12, 0, 0, 1, 0xE0, 0, 0, 1, 0, 0x80, 0x99},
			packHdr(3600, 0), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}), pesPkt(0xE0, ts(3600), h264Key),
			packHdr(7200, 0), pesPkt(0xE0, ts(7200), h264P)),
		units: []Unit{vu(TypeH264, 3600, 3600, true, h264Key), vu(TypeH264, 7200, 7200, false, h264P)},
		errs:  []string{"MPEG-PS: 11 bytes of invalid data skipped to the next pack header"},
	},
	{
		name: "unsupported stream type dropped, audio kept",
		in: cat(
			packHdr(3600, 0), psmPkt(false, psmEntry{0x02, 0xE0, nil}, psmEntry{TypeG711A, 0xC0, nil}),
			pesPkt(0xE0, ts(3600), []byte{0, 0, 1, 0xB3, 1, 2, 3}),
			pesPkt(0xC0, ts(3600), alaw),
			packHdr(7200, 0), pesPkt(0xE0, ts(7200), []byte{0, 0, 1, 0, 1, 2, 3})),
		units: []Unit{au(TypeG711A, 3600, alaw)},
		errs:  []string{"MPEG-PS stream 0xE0 has unsupported codec MPEG-2 video (stream type 0x02) (supported: H.264 0x1B, H.265 0x24, AAC 0x0F, G.711A 0x90, G.711U 0x91)"},
	},
	{
		name: "bare pack start code before a PES (Hikvision H.265)",
		in: cat(
			packHdr(3600, 0), psmPkt(false, psmEntry{TypeH265, 0xE0, nil}), pesPkt(0xE0, ts(3600), h265Key),
			[]byte{0, 0, 1, 0xBA}, pesPkt(0xE0, ts(7200), h265P),
			packHdr(10800, 0), pesPkt(0xE0, ts(10800), h265P)),
		units: []Unit{vu(TypeH265, 3600, 3600, true, h265Key), vu(TypeH265, 7200, 7200, false, h265P), vu(TypeH265, 10800, 10800, false, h265P)},
	},
	{
		name: "MPEG-1 pack and PES headers",
		in: cat(
			mpeg1Pack(3600), psmPkt(false, psmEntry{TypeH264, 0xE0, nil}), mpeg1PES(0xE0, 3600, h264Key),
			mpeg1Pack(7200), mpeg1PES(0xE0, 7200, h264P)),
		units: []Unit{vu(TypeH264, 3600, 3600, true, h264Key), vu(TypeH264, 7200, 7200, false, h264P)},
	},
}

type collector struct {
	units []Unit
	errs  []string
}

func (c *collector) demuxer() *Demuxer {
	return &Demuxer{
		OnUnit: func(u *Unit) {
			v := *u
			v.Payload = bytes.Clone(u.Payload)
			c.units = append(c.units, v)
		},
		OnError: func(err error) { c.errs = append(c.errs, err.Error()) },
	}
}

// demuxChunks demuxes in, cut into chunks by cut, and flushes.
func demuxChunks(in []byte, cut func(rest int) int) collector {
	var c collector
	d := c.demuxer()
	for len(in) > 0 {
		n := min(len(in), max(1, cut(len(in))))
		d.Write(in[:n])
		in = in[n:]
	}
	d.Flush()
	return c
}

func diffUnits(t *testing.T, got, want []Unit) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %d units, want %d", len(got), len(want))
	}
	for i := range min(len(got), len(want)) {
		g, w := got[i], want[i]
		if !bytes.Equal(g.Payload, w.Payload) {
			t.Errorf("unit %d: payload %d bytes % X…, want %d bytes % X…", i, len(g.Payload), g.Payload[:min(len(g.Payload), 16)], len(w.Payload), w.Payload[:min(len(w.Payload), 16)])
		}
		g.Payload, w.Payload = nil, nil
		if !reflect.DeepEqual(g, w) {
			t.Errorf("unit %d: %+v, want %+v", i, g, w)
		}
	}
}

func TestDemux(t *testing.T) {
	for _, ca := range demuxCases {
		t.Run(ca.name, func(t *testing.T) {
			cuts := map[string]func(int) int{
				"whole":  func(r int) int { return r },
				"1 byte": func(int) int { return 1 },
				"rtp":    func(int) int { return 1400 },
			}
			r := rand.New(rand.NewPCG(3, 4))
			cuts["random"] = func(int) int { return 1 + r.IntN(40) }
			for cname, cut := range cuts {
				c := demuxChunks(ca.in, cut)
				diffUnits(t, c.units, ca.units)
				if !reflect.DeepEqual(c.errs, ca.errs) {
					t.Errorf("%s: errors %q, want %q", cname, c.errs, ca.errs)
				}
			}
		})
	}
}

func TestMux(t *testing.T) {
	for _, ca := range demuxCases {
		if !ca.mux {
			continue
		}
		t.Run(ca.name, func(t *testing.T) {
			m := &Muxer{VideoType: ca.video, AudioType: ca.audio}
			// The muxer is given units in decoding order.
			units := append([]Unit(nil), ca.units...)
			sortByDTS(units)
			var out []byte
			for i := range units {
				var err error
				out, err = m.AppendUnit(out, &units[i])
				if err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(out, ca.in) {
				t.Errorf("muxer wrote\n% X\nwant\n% X", out[:min(len(out), 200)], ca.in[:min(len(ca.in), 200)])
			}
		})
	}
}

func sortByDTS(u []Unit) {
	for i := 1; i < len(u); i++ {
		for j := i; j > 0 && u[j].DTS < u[j-1].DTS; j-- {
			u[j], u[j-1] = u[j-1], u[j]
		}
	}
}

func TestMuxErrors(t *testing.T) {
	m := &Muxer{VideoType: TypeH264}
	if _, err := m.AppendUnit(nil, &Unit{Type: TypeAAC, Payload: aacFrame}); err == nil || !errorsIs(err, ErrUnitType) {
		t.Errorf("AAC into a video-only muxer: %v, want ErrUnitType", err)
	}
	m = &Muxer{AudioType: TypeAAC}
	if _, err := m.AppendUnit(nil, &Unit{Type: TypeAAC, Payload: make([]byte, 70000)}); err == nil {
		t.Error("an audio unit over 64 KiB was accepted")
	}
}

func TestPayloads(t *testing.T) {
	b := make([]byte, 3000)
	for i := range b {
		b[i] = byte(i)
	}
	p := Payloads(nil, b, 1400)
	if len(p) != 3 || len(p[0]) != 1400 || len(p[1]) != 1400 || len(p[2]) != 200 {
		t.Fatalf("pieces %d", len(p))
	}
	if !bytes.Equal(cat(p...), b) {
		t.Error("pieces do not join to the input")
	}
	if got := Payloads(nil, nil, 1400); len(got) != 0 {
		t.Errorf("empty input gave %d pieces", len(got))
	}
}

func ExampleDemuxer() {
	d := &Demuxer{
		OnUnit: func(u *Unit) {
			fmt.Printf("%v pts=%d key=%v %d bytes\n", u.Type, u.PTS, u.Keyframe, len(u.Payload))
		},
		OnError: func(err error) { fmt.Println("error:", err) },
	}
	m := &Muxer{VideoType: TypeH264}
	pack, _ := m.AppendUnit(nil, &Unit{Type: TypeH264, PTS: 3600, DTS: 3600, Keyframe: true, Payload: h264Key})
	for _, p := range Payloads(nil, pack, 20) { // as RTP payloads arrive
		d.Write(p)
	}
	d.Flush()
	// Output: H.264 pts=3600 key=true 39 bytes
}

// TestMidPacket: between the packets a camera-style muxer writes,
// MidPacket is false, inside them true; flushing whenever it is false (an
// RTP marker bit on every packet) gives the same units as not flushing.
func TestMidPacket(t *testing.T) {
	f := fixtureByName("gst_h264_aac.ps")
	in := demuxRTP(readFixture(t, f.file))
	m := &Muxer{VideoType: f.video, AudioType: f.audio}
	var out []byte
	var ends []int
	for i := range in.units {
		var err error
		if out, err = m.AppendUnit(out, &in.units[i]); err != nil {
			t.Fatal(err)
		}
		ends = append(ends, len(out))
	}
	want := demuxRTP(out)
	var c collector
	d := c.demuxer()
	mid := make([]bool, len(out)+1)
	for i := range out {
		d.Write(out[i : i+1])
		mid[i+1] = d.MidPacket()
		if !mid[i+1] {
			d.Flush()
		}
	}
	d.Flush()
	for _, e := range ends {
		if mid[e] || !mid[e-1] {
			t.Fatalf("MidPacket at the end of a unit's packets (byte %d): %v, one byte before: %v", e, mid[e], mid[e-1])
		}
	}
	// Each stream's units are the same; a picture comes out sooner (before
	// the audio that follows it).
	diffUnits(t, byStream(c.units, 0xE0), byStream(want.units, 0xE0))
	diffUnits(t, byStream(c.units, 0xC0), byStream(want.units, 0xC0))
	if len(c.units) != len(want.units) {
		t.Errorf("%d units, want %d", len(c.units), len(want.units))
	}
}
