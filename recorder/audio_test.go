package recorder

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// TestAudioCodecs records the fixture's video with each audio codec a camera
// may send: AAC and Opus as they are, G.711 (µ-law, A-law) as 16-bit LPCM.
func TestAudioCodecs(t *testing.T) {
	fx := loadRecFixture(t)
	for _, tc := range []struct {
		track    *ingest.Track
		frame    []byte // one audio frame
		frameDur time.Duration
		want     func(fmp4.Codec) bool
		probe    string // codec name ffprobe reports
	}{
		{&ingest.Track{Codec: ingest.CodecAAC, ClockRate: fx.rate, SampleRate: fx.rate, ChannelCount: 1, AACConfig: fx.aacConf},
			fx.aac[10], 1024 * time.Second / time.Duration(fx.rate),
			func(c fmp4.Codec) bool { _, ok := c.(*fmp4.CodecMPEG4Audio); return ok }, "aac"},
		{&ingest.Track{Codec: ingest.CodecOpus, ClockRate: 48000, SampleRate: 48000, ChannelCount: 2},
			[]byte{0xfc, 0xff, 0xfe}, 20 * time.Millisecond, // a 20 ms CELT silence frame
			func(c fmp4.Codec) bool { o, ok := c.(*fmp4.CodecOpus); return ok && o.ChannelCount == 2 }, "opus"},
		{&ingest.Track{Codec: ingest.CodecPCMU, ClockRate: 8000, SampleRate: 8000, ChannelCount: 1},
			bytes.Repeat([]byte{0xff, 0x7f, 0x80, 0x00}, 40), 20 * time.Millisecond,
			func(c fmp4.Codec) bool {
				l, ok := c.(*fmp4.CodecLPCM)
				return ok && l.BitDepth == 16 && l.SampleRate == 8000
			}, "pcm_s16be"},
		{&ingest.Track{Codec: ingest.CodecPCMA, ClockRate: 8000, SampleRate: 8000, ChannelCount: 1},
			bytes.Repeat([]byte{0xd5, 0x55}, 80), 20 * time.Millisecond,
			func(c fmp4.Codec) bool { _, ok := c.(*fmp4.CodecLPCM); return ok }, "pcm_s16be"},
	} {
		t.Run(tc.track.Codec, func(t *testing.T) {
			media := ingest.NewStream("a/main").SetTracks([]*ingest.Track{fx.tracks(false)[0], tc.track})
			vi, ai := 0, 0
			next := func() *ingest.Unit {
				vp := time.Duration(vi) * time.Second / recFPS
				ap := time.Duration(ai) * tc.frameDur
				if ap < vp {
					ai++
					return &ingest.Unit{Media: media, Track: media.Tracks[1], PTS: ap, Data: [][]byte{tc.frame}}
				}
				i := vi % len(fx.aus)
				vi++
				return &ingest.Unit{Media: media, Track: media.Tracks[0], PTS: vp, Data: fx.aus[i], Keyframe: fx.keyframe[i]}
			}
			const length = 3 * time.Second
			seg, _ := fragmentUnits(t, next, length)

			sc, err := archive.ScanSegment(bytes.NewReader(seg))
			if err != nil || sc.Cut {
				t.Fatalf("scan: %+v, %v", sc, err)
			}
			var init fmp4.Init
			if err := init.Unmarshal(bytes.NewReader(seg[:sc.InitSize])); err != nil {
				t.Fatal(err)
			}
			if len(init.Tracks) != 2 || !tc.want(init.Tracks[1].Codec) {
				t.Fatalf("audio track %#v", init.Tracks[len(init.Tracks)-1].Codec)
			}
			var parts fmp4.Parts
			if err := parts.Unmarshal(seg[sc.InitSize:]); err != nil {
				t.Fatal(err)
			}
			var ticks uint64
			var samples int
			for _, p := range parts {
				for _, pt := range p.Tracks {
					if pt.ID != 2 {
						continue
					}
					if pt.BaseTime != ticks {
						t.Errorf("audio base time %d, want %d", pt.BaseTime, ticks)
					}
					for _, s := range pt.Samples {
						ticks += uint64(s.Duration)
						samples++
						if tc.track.Codec == ingest.CodecPCMU && len(s.Payload) != 2*len(tc.frame) {
							t.Errorf("LPCM sample of %d bytes", len(s.Payload))
						}
					}
				}
			}
			if got := scaleDuration(ticks, init.Tracks[1].TimeScale); got < length-tc.frameDur || got > length+tc.frameDur || samples != ai {
				t.Errorf("audio lasts %v in %d samples, want %v in %d", got, samples, length, ai)
			}
			if ffprobe, err := exec.LookPath("ffprobe"); err == nil {
				p := filepath.Join(t.TempDir(), "seg.mp4")
				if err := writeFile(p, seg); err != nil {
					t.Fatal(err)
				}
				out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "stream=codec_name", "-of", "csv=p=0", p).CombinedOutput()
				if err != nil || string(out) != "h264\n"+tc.probe+"\n" {
					t.Errorf("ffprobe: %v: %s", err, out)
				}
			}
		})
	}
}

func writeFile(p string, b []byte) error { return os.WriteFile(p, b, 0o600) }
