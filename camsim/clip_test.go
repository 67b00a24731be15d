package camsim

import (
	"bytes"
	"io/fs"
	"math"
	"slices"
	"testing"
	"time"
)

func fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := media.ReadFile("media/" + name)
	if err != nil {
		t.Fatalf("embedded fixture %s: %v", name, err)
	}
	return b
}

// TestEmbeddedFixtures checks that every fixture is embedded and stays small.
func TestEmbeddedFixtures(t *testing.T) {
	want := map[string]bool{"h264_main.ts": true, "h264_main_high.ts": true, "h264_sub.ts": true, "h265_main.ts": true, "h265_sub.ts": true, "audio_aac.adts": true}
	entries, err := fs.ReadDir(media, "media")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		if info.Size() > 700<<10 {
			t.Errorf("%s is %d bytes, want well under 1 MB", e.Name(), info.Size())
		}
		delete(want, e.Name())
	}
	for name := range want {
		t.Errorf("fixture %s not embedded", name)
	}
}

func TestParseVideoFixtures(t *testing.T) {
	cases := []struct {
		file          string
		codec         string
		width, height int
		frames        int     // 25 fps: 100 frames are two 2 s GOPs
		kbps          float64 // expected bitrate of the clip, within 15 %
	}{
		{"h264_main.ts", CodecH264, 1280, 720, 100, 1100},
		{"h264_main_high.ts", CodecH264, 1280, 720, 50, 2000},
		{"h264_sub.ts", CodecH264, 640, 360, 100, 340},
		{"h265_main.ts", CodecH265, 1280, 720, 100, 850},
		{"h265_sub.ts", CodecH265, 640, 360, 100, 280},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			cl, err := parseVideoTS(fixture(t, c.file), c.codec)
			if err != nil {
				t.Fatal(err)
			}
			if cl.width != c.width || cl.height != c.height {
				t.Errorf("size %dx%d, want %dx%d", cl.width, cl.height, c.width, c.height)
			}
			if len(cl.frames) != c.frames || cl.duration != int64(c.frames)*3600 || cl.clockRate != 90000 {
				t.Errorf("%d frames, loop %d ticks at %d Hz; want %d frames of 3600 ticks at 90 kHz",
					len(cl.frames), cl.duration, cl.clockRate, c.frames)
			}
			var bytesTotal int
			for i, f := range cl.frames {
				if f.pts != int64(i)*3600 {
					t.Errorf("frame %d: pts %d, want %d", i, f.pts, i*3600)
				}
				if want := i%50 == 0; f.key != want {
					t.Errorf("frame %d: keyframe %v, want %v (a keyframe every 2 s)", i, f.key, want)
				}
				if len(f.payloads) == 0 || !f.payloads[len(f.payloads)-1].marker {
					t.Errorf("frame %d: %d payloads, last without marker", i, len(f.payloads))
				}
				for _, p := range f.payloads {
					if len(p.data) > 1450 {
						t.Errorf("frame %d: payload of %d bytes exceeds the MTU budget", i, len(p.data))
					}
					bytesTotal += len(p.data)
				}
			}
			// keyframes are IDRs that begin with their parameter sets, as the hub expects
			aus, _, err := readVideoTS(fixture(t, c.file), c.codec)
			if err != nil {
				t.Fatal(err)
			}
			for i, au := range aus {
				if i%50 != 0 {
					continue
				}
				var types []int
				for _, nalu := range au {
					if c.codec == CodecH264 {
						types = append(types, int(nalu[0]&0x1f))
					} else {
						types = append(types, int(nalu[0]>>1)&0x3f)
					}
				}
				want := []int{7, 8} // SPS, PPS ... IDR (5)
				idr := func(t int) bool { return t == 5 }
				if c.codec == CodecH265 {
					want = []int{32, 33, 34} // VPS, SPS, PPS ... IDR_W_RADL (19) or IDR_N_LP (20)
					idr = func(t int) bool { return t == 19 || t == 20 }
				}
				if len(types) < len(want)+1 || !slices.Equal(types[:len(want)], want) || !idr(types[len(types)-1]) {
					t.Errorf("keyframe %d: NAL unit types %v, want %v first and an IDR last", i, types, want)
				}
			}
			// RTP payload bytes over the loop: what a reader receives
			kbps := float64(bytesTotal*8) / (float64(c.frames) / 25) / 1000
			t.Logf("%s: %.0f kbit/s", c.file, kbps)
			if kbps < c.kbps*0.85 || kbps > c.kbps*1.15 {
				t.Errorf("bitrate %.0f kbit/s, want %.0f within 15 %%", kbps, c.kbps)
			}
		})
	}
}

func TestParseADTSFixture(t *testing.T) {
	cl, err := parseADTS(fixture(t, "audio_aac.adts"))
	if err != nil {
		t.Fatal(err)
	}
	if cl.clockRate != 48000 {
		t.Errorf("clock rate %d, want 48000", cl.clockRate)
	}
	if cl.duration != int64(len(cl.frames))*1024 || len(cl.frames) < 300 {
		t.Errorf("%d frames, loop %d ticks", len(cl.frames), cl.duration)
	}
	if got := cl.format.ClockRate(); got != 48000 {
		t.Errorf("format clock rate %d", got)
	}
}

// parseCases are hostile inputs for parseVideoTS; all but the truncated file must be
// rejected with an error. They also seed the fuzzer.
func parseCases(t testing.TB) []struct {
	name  string
	data  []byte
	codec string
} {
	h264 := fixture(t, "h264_sub.ts")
	h265 := fixture(t, "h265_sub.ts")
	return []struct {
		name  string
		data  []byte
		codec string
	}{
		{"empty", nil, CodecH264},
		{"garbage", bytes.Repeat([]byte{0xde, 0xad}, 500), CodecH264},
		{"sync bytes only", bytes.Repeat(append([]byte{0x47}, make([]byte, 187)...), 10), CodecH264},
		{"h264 file read as h265", h264, CodecH265},
		{"h265 file read as h264", h265, CodecH264},
		{"truncated to one packet", h264[:188], CodecH264},
		// a cut file still yields the whole access units before the cut
		{"truncated mid-file", h264[:188*40+17], CodecH264},
		{"starts mid-gop", append(append([]byte(nil), h264[:188*3]...), h264[len(h264)/2/188*188:]...), CodecH264},
		{"unknown codec", h264, "vp9"},
	}
}

func TestParseVideoRejects(t *testing.T) {
	for _, c := range parseCases(t) {
		t.Run(c.name, func(t *testing.T) {
			cl, err := parseVideoTS(c.data, c.codec)
			if c.name == "truncated mid-file" {
				if err != nil || len(cl.frames) < 2 || !cl.frames[0].key {
					t.Errorf("truncated file: %v", err)
				}
				return
			}
			if err == nil {
				t.Errorf("parsed into %d frames, want an error", len(cl.frames))
			}
		})
	}
}

func TestParseADTSRejects(t *testing.T) {
	audio := fixture(t, "audio_aac.adts")
	for _, c := range []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"garbage", bytes.Repeat([]byte{0xde, 0xad}, 50)},
		{"truncated", audio[:len(audio)-3]},
		{"video", fixture(t, "h264_sub.ts")[:1000]},
	} {
		t.Run(c.name, func(t *testing.T) {
			if _, err := parseADTS(c.data); err == nil {
				t.Error("parsed, want an error")
			}
		})
	}
}

func FuzzParseVideoTS(f *testing.F) {
	for _, c := range parseCases(f) {
		f.Add(c.data, c.codec == CodecH265)
	}
	f.Add(fixture(f, "h264_sub.ts")[:188*60], false)
	f.Fuzz(func(t *testing.T, data []byte, h265 bool) {
		codec := CodecH264
		if h265 {
			codec = CodecH265
		}
		cl, err := parseVideoTS(data, codec)
		if err != nil {
			return
		}
		if len(cl.frames) < 2 || !cl.frames[0].key || cl.duration <= cl.frames[len(cl.frames)-1].pts {
			t.Fatalf("accepted an unusable clip: %d frames, duration %d", len(cl.frames), cl.duration)
		}
	})
}

func FuzzParseADTS(f *testing.F) {
	audio := fixture(f, "audio_aac.adts")
	f.Add(audio[:2000])
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff, 0xf1}, 20))
	f.Fuzz(func(t *testing.T, data []byte) {
		cl, err := parseADTS(data)
		if err != nil {
			return
		}
		if len(cl.frames) == 0 || cl.clockRate <= 0 || cl.duration <= 0 {
			t.Fatalf("accepted an unusable clip: %d frames at %d Hz", len(cl.frames), cl.clockRate)
		}
	})
}

func TestTicksToDuration(t *testing.T) {
	cases := []struct {
		ticks int64
		rate  int
		want  time.Duration
	}{
		{0, 90000, 0},
		{3600, 90000, 40 * time.Millisecond},
		{90000, 90000, time.Second},
		{1024, 48000, 21333333 * time.Nanosecond},
		// a year of 90 kHz ticks does not overflow
		{365 * 24 * 3600 * 90000, 90000, 365 * 24 * time.Hour},
	}
	for _, c := range cases {
		if got := ticksToDuration(c.ticks, c.rate); got != c.want {
			t.Errorf("ticksToDuration(%d, %d) = %v, want %v", c.ticks, c.rate, got, c.want)
		}
	}
}

// TestTrackWraps checks the loop and RTP timestamp arithmetic over many loops,
// including the 32-bit wrap of RTP timestamps.
func TestTrackWraps(t *testing.T) {
	c := &clip{clockRate: 90000, duration: 3 * 3600, frames: []clipFrame{{pts: 0, key: true}, {pts: 3600}, {pts: 7200}}}
	tr := &track{clip: c, tsBase: math.MaxUint32 - 10000}
	prevPos, prevTS := tr.position(), tr.rtpTimestamp()
	wrapped := false
	for i := 1; i < 1000; i++ {
		tr.advance()
		pos, ts := tr.position(), tr.rtpTimestamp()
		if pos-prevPos != 3600 {
			t.Fatalf("step %d: position advanced by %d", i, pos-prevPos)
		}
		if ts-prevTS != 3600 { // uint32 arithmetic: wraps like RTP
			t.Fatalf("step %d: timestamp advanced by %d", i, ts-prevTS)
		}
		if ts < prevTS {
			wrapped = true
		}
		if want := int64(i / 3); tr.loop != want {
			t.Fatalf("step %d: loop %d, want %d", i, tr.loop, want)
		}
		prevPos, prevTS = pos, ts
	}
	if !wrapped {
		t.Error("the test never crossed the 32-bit wrap")
	}
}
