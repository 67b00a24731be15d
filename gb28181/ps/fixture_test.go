package ps

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// fixture describes a PS file made by an independent muxer (testdata/README.md).
type fixture struct {
	file       string
	video      StreamType
	videoID    uint8
	frames     int
	firstPTS   int64
	keyframes  []int
	audio      StreamType // 0: none we carry
	audioUnits int
	audioStep  int64
	errs       []string
}

var fixtures = []fixture{
	{
		file: "gst_h264_aac.ps", video: TypeH264, videoID: 0xE0, frames: 50, firstPTS: 0, keyframes: []int{0, 25},
		audio: TypeAAC, audioUnits: 33, audioStep: 5760,
	},
	{
		file: "ff_h265.ps", video: TypeH265, videoID: 0xE0, frames: 50, firstPTS: 45000, keyframes: []int{0, 25},
		errs: []string{"MPEG-PS has no program stream map (PSM): stream 0xE0 taken as H.265 from its payload"},
	},
	{
		file: "ff_h264_mp2.ps", video: TypeH264, videoID: 0xE2, frames: 50, firstPTS: 47706, keyframes: []int{0, 25},
		errs: []string{
			"MPEG-PS has no program stream map (PSM): stream 0xE2 taken as H.264 from its payload",
			"MPEG-PS has no program stream map (PSM): stream 0xC0 taken as MPEG audio (stream type 0x03) from its payload",
			"MPEG-PS stream 0xC0 has unsupported codec MPEG audio (stream type 0x03) (supported: H.264 0x1B, H.265 0x24, AAC 0x0F, G.711A 0x90, G.711U 0x91)",
		},
	},
}

func readFixture(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// demuxRTP demuxes b in RTP-sized chunks.
func demuxRTP(b []byte) collector {
	return demuxChunks(b, func(int) int { return 1400 })
}

func checkFixture(t *testing.T, f fixture, c collector) (video, audio []Unit) {
	t.Helper()
	for _, u := range c.units {
		switch {
		case u.StreamID == f.videoID:
			video = append(video, u)
		case u.StreamID >= 0xC0 && u.StreamID < 0xE0:
			audio = append(audio, u)
		default:
			t.Errorf("unit from stream 0x%02X", u.StreamID)
		}
	}
	if len(video) != f.frames {
		t.Fatalf("%d video units, want %d", len(video), f.frames)
	}
	var keys []int
	for i, u := range video {
		if u.Type != f.video {
			t.Fatalf("unit %d is %v, want %v", i, u.Type, f.video)
		}
		if want := f.firstPTS + int64(3600*i); u.PTS != want || u.DTS != want {
			t.Errorf("video unit %d: pts %d dts %d, want %d", i, u.PTS, u.DTS, want)
		}
		if !bytes.HasPrefix(u.Payload, []byte{0, 0, 1}) && !bytes.HasPrefix(u.Payload, []byte{0, 0, 0, 1}) {
			t.Errorf("video unit %d does not start with a start code: % X", i, u.Payload[:min(8, len(u.Payload))])
		}
		if u.Keyframe {
			keys = append(keys, i)
		}
	}
	if !slices.Equal(keys, f.keyframes) {
		t.Errorf("keyframes at %v, want %v", keys, f.keyframes)
	}
	if len(audio) != f.audioUnits {
		t.Errorf("%d audio units, want %d", len(audio), f.audioUnits)
	}
	for i, u := range audio {
		if u.Type != f.audio {
			t.Errorf("audio unit %d is %v, want %v", i, u.Type, f.audio)
		}
		if i > 0 && u.PTS-audio[i-1].PTS != f.audioStep {
			t.Errorf("audio unit %d: pts step %d, want %d", i, u.PTS-audio[i-1].PTS, f.audioStep)
		}
	}
	if !slices.Equal(c.errs, f.errs) {
		t.Errorf("errors %q, want %q", c.errs, f.errs)
	}
	return video, audio
}

func TestDemuxIndependentFixtures(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.file, func(t *testing.T) {
			b := readFixture(t, f.file)
			video, _ := checkFixture(t, f, demuxRTP(b))
			// Cut anywhere, the units are the same.
			whole := demuxChunks(b, func(r int) int { return r })
			diffUnits(t, whole.units, demuxRTP(b).units)
			ones := demuxChunks(b, func(int) int { return 1 })
			diffUnits(t, ones.units, whole.units)
			// The video units hold the whole elementary stream: nothing is lost
			// between them (the ES starts at the first PES payload).
			var es []byte
			for _, u := range video {
				es = append(es, u.Payload...)
			}
			if len(es) < len(b)/2 {
				t.Errorf("video units hold %d bytes of a %d byte file", len(es), len(b))
			}
		})
	}
}

// TestRoundTrip muxes the units demuxed from the independent files and
// demuxes the result: the same units come back.
func TestRoundTrip(t *testing.T) {
	for _, f := range fixtures {
		t.Run(f.file, func(t *testing.T) {
			in := demuxRTP(readFixture(t, f.file))
			m := &Muxer{VideoType: f.video, AudioType: f.audio}
			var out []byte
			var want []Unit
			for i := range in.units {
				u := in.units[i]
				if u.Type != f.video && u.Type != f.audio {
					continue
				}
				var err error
				if out, err = m.AppendUnit(out, &u); err != nil {
					t.Fatal(err)
				}
				u.StreamID = 0xE0
				if !u.Type.IsVideo() {
					u.StreamID = 0xC0
				}
				want = append(want, u)
			}
			got := demuxRTP(out)
			if len(got.errs) != 0 {
				t.Errorf("errors %q", got.errs)
			}
			diffUnits(t, byStream(got.units, 0xE0), byStream(want, 0xE0))
			diffUnits(t, byStream(got.units, 0xC0), byStream(want, 0xC0))
		})
	}
}

func byStream(u []Unit, id uint8) []Unit {
	var out []Unit
	for _, v := range u {
		if v.StreamID == id {
			out = append(out, v)
		}
	}
	return out
}

func FuzzDemux(f *testing.F) {
	for _, ca := range demuxCases {
		f.Add(ca.in)
	}
	for _, fx := range fixtures {
		b := readFixture(f, fx.file)
		f.Add(b[:min(len(b), 6000)])
		f.Add(b[len(b)/2 : min(len(b), len(b)/2+6000)])
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		const maxUnit = 1 << 16
		units := 0
		d := &Demuxer{
			MaxUnitSize: maxUnit,
			OnUnit: func(u *Unit) {
				units++
				if len(u.Payload) == 0 || len(u.Payload) > maxUnit {
					t.Fatalf("unit of %d bytes", len(u.Payload))
				}
				if !u.Type.supported() {
					t.Fatalf("unit of unsupported type %v", u.Type)
				}
			},
			OnError: func(err error) {
				if err.Error() == "" {
					t.Fatal("empty error")
				}
			},
		}
		// Cut the input by its own bytes; lose a chunk now and then.
		chunk := 1
		if len(b) > 0 {
			chunk = 1 + int(b[0])%97
		}
		for i := 0; i < len(b); i += chunk {
			p := b[i:min(len(b), i+chunk)]
			if p[0] == 0x77 && len(p) > 3 && p[1] == 0x77 {
				d.Lost()
				continue
			}
			d.Write(p)
			if n := d.buffered(); n > 2*maxUnit+6+0xFFFF+chunk {
				t.Fatalf("%d bytes buffered", n)
			}
		}
		d.Flush()
	})
}
