package media

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// producer makes an MPEG-PS file with an independent muxer.
type producer struct {
	name      string
	tool      string // gst-launch-1.0 or ffmpeg
	env       string
	args      func(file string) []string
	video     ps.StreamType
	audio     ps.StreamType // 0: no audio we carry
	w, h      int
	transport string
	// errKinds are the causes the receiver must report on Err.
	errKinds []MediaErrorKind
}

const extFrames = 75 // 3 s at 25 fps

var producers = []producer{
	{
		name: "gstreamer mpegpsmux H.264+AAC", tool: "gst-launch-1.0", env: "VIGIL_REQUIRE_GSTREAMER",
		args: func(file string) []string {
			return []string{"-q",
				"videotestsrc", fmt.Sprintf("num-buffers=%d", extFrames), "!", "video/x-raw,width=640,height=360,framerate=25/1", "!",
				"x264enc", "key-int-max=25", "bframes=0", "tune=zerolatency", "bitrate=2000", "!", "h264parse", "!", "mpegpsmux", "name=m", "!", "filesink", "location=" + file,
				"audiotestsrc", "num-buffers=47", "samplesperbuffer=1024", "!", "audio/x-raw,rate=16000,channels=1", "!",
				"avenc_aac", "!", "aacparse", "!", "audio/mpeg,stream-format=adts", "!", "m."}
		},
		video: ps.TypeH264, audio: ps.TypeAAC, w: 640, h: 360, transport: TransportUDP,
	},
	{
		name: "ffmpeg mpeg H.264", tool: "ffmpeg", env: "VIGIL_REQUIRE_FFMPEG",
		args: func(file string) []string {
			return ffArgs(file, "mpeg", "-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-g", "25", "-bf", "0",
				"-b:v", "2M", "-x264-params", "repeat-headers=1:scenecut=0")
		},
		video: ps.TypeH264, w: 640, h: 360, transport: TransportTCPPassive, errKinds: []MediaErrorKind{MediaNoPSM},
	},
	{
		name: "ffmpeg vob H.265", tool: "ffmpeg", env: "VIGIL_REQUIRE_FFMPEG",
		args: func(file string) []string {
			return ffArgs(file, "vob", "-c:v", "libx265", "-preset", "ultrafast", "-b:v", "2M",
				"-x265-params", "keyint=25:min-keyint=25:scenecut=0:bframes=0:repeat-headers=1:log-level=error")
		},
		video: ps.TypeH265, w: 640, h: 360, transport: TransportTCPActive, errKinds: []MediaErrorKind{MediaNoPSM},
	},
	{
		// ffmpeg's PS muxers take no AAC or G.711: its MP2 audio is reported
		// as an unknown codec and dropped, the video flows.
		name: "ffmpeg vob H.264+MP2", tool: "ffmpeg", env: "VIGIL_REQUIRE_FFMPEG",
		args: func(file string) []string {
			return ffArgs(file, "vob", "-c:v", "libx264", "-preset", "veryfast", "-g", "25", "-bf", "0", "-b:v", "2M",
				"-x264-params", "repeat-headers=1:scenecut=0", "-c:a", "mp2", "-b:a", "64k")
		},
		video: ps.TypeH264, w: 640, h: 360, transport: TransportUDP, errKinds: []MediaErrorKind{MediaNoPSM, MediaUnknownCodec},
	},
}

func ffArgs(file, format string, codec ...string) []string {
	a := []string{"-v", "error", "-f", "lavfi", "-i", "testsrc2=size=640x360:rate=25",
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=16000", "-frames:v", fmt.Sprint(extFrames), "-t", "3", "-pix_fmt", "yuv420p"}
	a = append(a, codec...)
	if !slices.Contains(codec, "-c:a") {
		a = append(a, "-an")
	}
	return append(a, "-f", format, file)
}

// probePacket is one packet as ffprobe's MPEG-PS demuxer (with its parsers) reads it.
type probePacket struct {
	StreamIndex int    `json:"stream_index"`
	Size        string `json:"size"`
	Flags       string `json:"flags"`
}

type probeStream struct {
	Index     int    `json:"index"`
	CodecType string `json:"codec_type"`
	CodecName string `json:"codec_name"`
	Width     int    `json:"width"`
	Height    int    `json:"height"`
	Frames    string `json:"nb_read_frames"`
	Start     string `json:"start_time"`
	Duration  string `json:"duration"`
}

func ffprobeJSON(t *testing.T, v any, args ...string) {
	t.Helper()
	out, err := exec.Command("ffprobe", append([]string{"-v", "error", "-of", "json"}, args...)...).Output()
	if err != nil {
		t.Fatalf("ffprobe %q: %v", args, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatal(err)
	}
}

// TestIndependentProducers sends the MPEG-PS of GStreamer's mpegpsmux and
// ffmpeg's mpeg and vob muxers, packetized into RTP, through the real
// sockets, and checks the units against what ffprobe reads in the same file:
// the number of video and audio packets, the keyframes, the codec, each
// picture's size in bytes, and (decoding the units) the picture size.
// GStreamer 1.22's mpegpsmux takes no H.265 or G.711 ("could not link
// h265parse0 to mpegpsmux0"), ffmpeg's PS muxers no AAC or G.711: those
// combinations have no independent producer here.
func TestIndependentProducers(t *testing.T) {
	testkit.SkipShort(t, "runs encoders")
	testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	for i, p := range producers {
		t.Run(p.name, func(t *testing.T) {
			testkit.Tool(t, p.tool, p.env)
			file := filepath.Join(t.TempDir(), "out.ps")
			if out, err := exec.Command(p.tool, p.args(file)...).CombinedOutput(); err != nil {
				t.Fatalf("%s: %v\n%s", p.tool, err, out)
			}
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c := &collector{keep: true}
			ssrc := uint32(700 + i)
			r := expect(t, s, ssrc, p.transport, c)
			deviceSend(t, s, r, p.transport, rtpPackets(t, b, ssrc, uint16(i*20000)))

			var probe struct {
				Streams []probeStream
				Packets []probePacket
			}
			ffprobeJSON(t, &probe, "-f", "mpeg", "-show_entries", "stream=index,codec_type,codec_name,width,height:packet=stream_index,size,flags", file)
			vIdx, aIdx := -1, -1
			for _, st := range probe.Streams {
				switch {
				case st.CodecType == "video":
					vIdx = st.Index
					if st.CodecName != codecName(p.video) || st.Width != p.w || st.Height != p.h {
						t.Fatalf("ffprobe reads the file as %+v", st)
					}
				case st.CodecType == "audio" && p.audio != 0:
					aIdx = st.Index
					if st.CodecName != codecName(p.audio) {
						t.Fatalf("ffprobe reads the audio as %+v", st)
					}
				}
			}
			var wantSizes []int
			var wantKeys []int
			wantAudio := 0
			for _, pk := range probe.Packets {
				switch pk.StreamIndex {
				case vIdx:
					if strings.HasPrefix(pk.Flags, "K") {
						wantKeys = append(wantKeys, len(wantSizes))
					}
					var n int
					fmt.Sscan(pk.Size, &n)
					wantSizes = append(wantSizes, n)
				case aIdx:
					wantAudio++
				}
			}
			if len(wantSizes) != extFrames || len(wantKeys) < 3 {
				t.Fatalf("ffprobe read %d video packets, keyframes %v", len(wantSizes), wantKeys)
			}
			waitUnits(t, c, len(wantSizes))
			// The last packet has the marker bit: the last picture is out
			// with it; audio after the last picture is out already.
			n := uint64(len(ps.Payloads(nil, b, payloadSize)))
			testkit.WaitFor(t, 10*time.Second, "every packet taken", func() bool {
				st := r.Stats()
				return st.Packets+st.Lost+st.Duplicates >= n
			})
			if st := r.Stats(); st.Packets != n {
				t.Fatalf("stats %+v, want %d packets", st, n)
			}
			var sizes, keys []int
			audio := 0
			for _, u := range c.snapshot() {
				switch {
				case u.Type == p.video:
					if u.Keyframe {
						keys = append(keys, len(sizes))
					}
					sizes = append(sizes, u.Size)
				case u.Type == p.audio:
					audio++
				default:
					t.Errorf("unit of %v", u.Type)
				}
			}
			if !slices.Equal(keys, wantKeys) {
				t.Errorf("keyframes at %v, ffprobe says %v", keys, wantKeys)
			}
			// ffmpeg's HEVC parser leaves the zero_byte of a four-byte start
			// code to the previous picture; ours keeps it with its picture.
			if !sizesMatch(sizes, wantSizes) {
				t.Errorf("picture sizes differ from ffprobe's packets:\n got %v\nwant %v", sizes, wantSizes)
			}
			if p.audio != 0 && (audio != wantAudio || audio == 0) {
				t.Errorf("%d audio units, ffprobe reads %d packets", audio, wantAudio)
			}
			// The units decode: the elementary streams they make are what the file holds.
			c.mu.Lock()
			es := c.es
			c.mu.Unlock()
			for id, data := range es {
				typ := p.video
				if id < 0xE0 {
					typ = p.audio
				}
				esFile := filepath.Join(t.TempDir(), fmt.Sprintf("es-%02x", id))
				if err := os.WriteFile(esFile, data, 0o644); err != nil {
					t.Fatal(err)
				}
				var got struct{ Streams []probeStream }
				ffprobeJSON(t, &got, "-f", codecName(typ), "-count_frames", "-show_entries", "stream=codec_name,width,height,nb_read_frames", esFile)
				want := extFrames
				if !typ.IsVideo() {
					want = wantAudio
				}
				if len(got.Streams) != 1 || got.Streams[0].Frames != fmt.Sprint(want) || (typ.IsVideo() && (got.Streams[0].Width != p.w || got.Streams[0].Height != p.h)) {
					t.Errorf("ffprobe decodes the %v units as %+v, want %d frames", typ, got.Streams, want)
				}
			}
			var kinds []MediaErrorKind
			for more := true; more; {
				select {
				case err := <-r.Err():
					var me *MediaError
					if !errors.As(err, &me) {
						t.Fatalf("Err gave %v", err)
					}
					kinds = append(kinds, me.Kind)
				default:
					more = false
				}
			}
			slices.Sort(kinds)
			kinds = slices.Compact(kinds)
			if !slices.Equal(kinds, p.errKinds) {
				t.Errorf("errors of kinds %v, want %v", kinds, p.errKinds)
			}
			if st := r.Stats(); st.Lost != 0 || st.Dropped != 0 {
				t.Errorf("stats %+v", st)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			if err := r.WaitStart(ctx); err != nil {
				t.Error(err)
			}
		})
	}
}

func codecName(t ps.StreamType) string {
	switch t {
	case ps.TypeH264:
		return "h264"
	case ps.TypeH265:
		return "hevc"
	case ps.TypeAAC:
		return "aac"
	}
	return t.String()
}

// sizesMatch: the same number of pictures, the same total, and each within
// one byte.
func sizesMatch(got, want []int) bool {
	if len(got) != len(want) {
		return false
	}
	sum := 0
	for i := range got {
		if d := got[i] - want[i]; d < -1 || d > 1 {
			return false
		}
		sum += got[i] - want[i]
	}
	return sum == 0
}
