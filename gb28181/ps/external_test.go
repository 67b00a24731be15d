package ps

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/internal/testkit"
)

func needFFmpeg(t *testing.T) {
	testkit.Tool(t, "ffmpeg", "VIGIL_REQUIRE_FFMPEG")
	testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
}

type probedStream struct {
	CodecName  string `json:"codec_name"`
	Width      int    `json:"width"`
	Height     int    `json:"height"`
	SampleRate string `json:"sample_rate"`
	Frames     string `json:"nb_read_frames"`
}

// probe runs ffprobe with the input format forced and counts frames.
func probe(t *testing.T, format, file string) []probedStream {
	t.Helper()
	var r struct{ Streams []probedStream }
	testkit.FFprobeJSON(t, &r, "-f", format, "-count_frames",
		"-show_entries", "stream=codec_name,width,height,sample_rate,nb_read_frames", file)
	return r.Streams
}

func frames(s probedStream) int {
	n, _ := strconv.Atoi(s.Frames)
	return n
}

// checkES writes the payloads of units to a file and has ffprobe decode it
// as format: frame count, and picture size for video.
func checkES(t *testing.T, units []Unit, format string, wantFrames, w, h int) {
	t.Helper()
	var es []byte
	for _, u := range units {
		es = append(es, u.Payload...)
	}
	file := filepath.Join(t.TempDir(), "es."+format)
	if err := os.WriteFile(file, es, 0o644); err != nil {
		t.Fatal(err)
	}
	st := probe(t, format, file)
	if len(st) != 1 {
		t.Fatalf("ffprobe found %d streams in the %s elementary stream", len(st), format)
	}
	if frames(st[0]) != wantFrames || st[0].Width != w || st[0].Height != h {
		t.Errorf("ffprobe read %s: %d frames %dx%d, want %d frames %dx%d", format, frames(st[0]), st[0].Width, st[0].Height, wantFrames, w, h)
	}
}

func esFormat(t StreamType) string {
	switch t {
	case TypeH264:
		return "h264"
	case TypeH265:
		return "hevc"
	case TypeAAC:
		return "aac"
	}
	return "alaw"
}

// TestFixturesDecode: the units demuxed from the independent files are
// valid H.264/H.265/AAC for ffmpeg's decoders.
func TestFixturesDecode(t *testing.T) {
	needFFmpeg(t)
	for _, f := range fixtures {
		t.Run(f.file, func(t *testing.T) {
			c := demuxRTP(readFixture(t, f.file))
			checkES(t, byStream(c.units, f.videoID), esFormat(f.video), f.frames, 320, 240)
			if f.audio == TypeAAC {
				checkES(t, byStream(c.units, 0xC0), "aac", f.audioUnits, 0, 0)
			}
		})
	}
}

// TestFFmpegProducer demuxes MPEG-PS that ffmpeg's vob muxer writes now,
// including pictures over 64 KiB (split over PES packets).
func TestFFmpegProducer(t *testing.T) {
	needFFmpeg(t)
	for _, ca := range []struct {
		typ  StreamType
		w, h int
		args []string
	}{
		// Near-lossless 720p: keyframes over 64 KiB, split over several PES packets.
		{TypeH264, 1280, 720, []string{"-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-bf", "0", "-x264-params", "repeat-headers=1:scenecut=0", "-qp", "4"}},
		{TypeH265, 640, 360, []string{"-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "keyint=10:min-keyint=10:scenecut=0:bframes=0:repeat-headers=1:log-level=error"}},
	} {
		t.Run(ca.typ.String(), func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "out.ps")
			args := append([]string{"-v", "error", "-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=25", ca.w, ca.h), "-frames:v", "30", "-pix_fmt", "yuv420p"}, ca.args...)
			run(t, "ffmpeg", append(args, "-f", "vob", file)...)
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			c := demuxRTP(b)
			var video []Unit
			var keys []int
			for i, u := range c.units {
				if u.Type != ca.typ {
					t.Fatalf("unit %d is %v", i, u.Type)
				}
				if i > 0 && u.PTS-video[i-1].PTS != 3600 {
					t.Errorf("unit %d: pts step %d", i, u.PTS-video[i-1].PTS)
				}
				if u.Keyframe {
					keys = append(keys, i)
				}
				video = append(video, u)
			}
			if len(video) != 30 || !slices.Equal(keys, []int{0, 10, 20}) {
				t.Errorf("%d units, keyframes at %v; want 30, [0 10 20]", len(video), keys)
			}
			if ca.typ == TypeH264 && len(video[0].Payload) <= maxPESPayload {
				t.Errorf("first picture is %d bytes: the test wants one over 64 KiB", len(video[0].Payload))
			}
			checkES(t, video, esFormat(ca.typ), 30, ca.w, ca.h)

			// Our muxer writes them again (pictures over 64 KiB in several
			// PES packets); ffmpeg's PS demuxer reads all 30.
			m := &Muxer{VideoType: ca.typ}
			var out []byte
			for i := range video {
				if out, err = m.AppendUnit(out, &video[i]); err != nil {
					t.Fatal(err)
				}
			}
			again := testkit.TempFile(t, "again.ps", out)
			st := probe(t, "mpeg", again)
			if len(st) != 1 || frames(st[0]) != 30 || st[0].Width != ca.w || st[0].CodecName != esFormat(ca.typ) {
				t.Errorf("ffprobe read our muxer's output as %+v", st)
			}
		})
	}
}

// TestGStreamerProducer demuxes what GStreamer's mpegpsmux writes now: H.264
// from x264enc and AAC from avenc_aac.
func TestGStreamerProducer(t *testing.T) {
	testkit.Tool(t, "gst-launch-1.0", "VIGIL_REQUIRE_GSTREAMER")
	file := filepath.Join(t.TempDir(), "out.ps")
	run(t, "gst-launch-1.0", "-q",
		"videotestsrc", "num-buffers=30", "!", "video/x-raw,width=640,height=360,framerate=25/1", "!",
		"x264enc", "key-int-max=10", "bframes=0", "tune=zerolatency", "!", "h264parse", "!", "mpegpsmux", "name=m", "!", "filesink", "location="+file,
		"audiotestsrc", "num-buffers=15", "samplesperbuffer=1024", "!", "audio/x-raw,rate=16000,channels=1", "!",
		"avenc_aac", "!", "aacparse", "!", "audio/mpeg,stream-format=adts", "!", "m.")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	c := demuxRTP(b)
	video, audio := byStream(c.units, 0xE0), byStream(c.units, 0xC0)
	var keys []int
	for i, u := range video {
		if u.Type != TypeH264 {
			t.Fatalf("video unit %d is %v", i, u.Type)
		}
		if want := video[0].PTS + int64(3600*i); u.PTS != want {
			t.Errorf("video unit %d: pts %d, want %d", i, u.PTS, want)
		}
		if u.Keyframe {
			keys = append(keys, i)
		}
	}
	if len(video) != 30 || len(keys) == 0 || keys[0] != 0 {
		t.Errorf("%d video units, keyframes at %v; want 30 starting with a keyframe", len(video), keys)
	}
	// 15 buffers of 1024 samples, and avenc_aac's flush frame.
	if len(audio) < 15 || len(audio) > 16 {
		t.Errorf("%d AAC units, want 15–16", len(audio))
	}
	for i, u := range audio {
		if u.Type != TypeAAC {
			t.Errorf("audio unit %d is %v", i, u.Type)
		}
		if i > 0 && u.PTS-audio[i-1].PTS != 5760 {
			t.Errorf("audio unit %d: pts step %d, want 5760", i, u.PTS-audio[i-1].PTS)
		}
	}
	if len(c.errs) != 0 {
		t.Errorf("errors %q", c.errs)
	}
	if _, err := exec.LookPath("ffprobe"); err == nil {
		checkES(t, video, "h264", 30, 640, 360)
		// x264enc chooses its own keyframes: ffprobe says where they are.
		out, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=key_frame", "-of", "csv=p=0", file).Output()
		if err != nil {
			t.Fatal(err)
		}
		var want []int
		for i, l := range strings.Fields(string(out)) {
			if strings.HasPrefix(l, "1") {
				want = append(want, i)
			}
		}
		if !slices.Equal(keys, want) {
			t.Errorf("keyframes at %v, ffprobe says %v", keys, want)
		}
	}
}

// TestMuxerFFprobe: ffmpeg's MPEG-PS demuxer, an independent consumer,
// reads what our muxer writes.
func TestMuxerFFprobe(t *testing.T) {
	needFFmpeg(t)
	dir := t.TempDir()
	alawFile := filepath.Join(dir, "a.alaw")
	run(t, "ffmpeg", "-v", "error", "-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=8000", "-t", "2", "-c:a", "pcm_alaw", "-f", "alaw", alawFile)
	alawBytes, err := os.ReadFile(alawFile)
	if err != nil {
		t.Fatal(err)
	}
	var alawUnits []Unit
	for i := 0; i+320 <= len(alawBytes); i += 320 { // 40 ms per unit
		pts := int64(i/320) * 3600
		alawUnits = append(alawUnits, Unit{Type: TypeG711A, PTS: pts, DTS: pts, Payload: alawBytes[i : i+320]})
	}
	for _, ca := range []struct {
		fixture    string
		audio      StreamType
		extraAudio []Unit
		want       []probedStream
	}{
		{"gst_h264_aac.ps", TypeAAC, nil, []probedStream{{CodecName: "h264", Width: 320, Height: 240, Frames: "50"}, {CodecName: "aac", SampleRate: "16000", Frames: "33"}}},
		{"ff_h265.ps", 0, nil, []probedStream{{CodecName: "hevc", Width: 320, Height: 240, Frames: "50"}}},
		// ffmpeg 5.1 (and GStreamer 1.22's mpegpsdemux) do not know stream type 0x90:
		// ffmpeg takes stream 0xC0 for MP2 and cannot decode it. Only the video and
		// the presence of the audio stream are judged here.
		{"ff_h264_mp2.ps", TypeG711A, alawUnits, []probedStream{{CodecName: "h264", Width: 320, Height: 240, Frames: "50"}, {}}},
	} {
		t.Run(ca.fixture, func(t *testing.T) {
			f := fixtureByName(ca.fixture)
			c := demuxRTP(readFixture(t, ca.fixture))
			units := append([]Unit(nil), byStream(c.units, f.videoID)...)
			units = append(units, byStream(c.units, 0xC0)...)
			units = append(units, ca.extraAudio...)
			sortByDTS(units)
			m := &Muxer{VideoType: f.video, AudioType: ca.audio}
			var out []byte
			for i := range units {
				if units[i].Type != f.video && units[i].Type != ca.audio {
					continue
				}
				if out, err = m.AppendUnit(out, &units[i]); err != nil {
					t.Fatal(err)
				}
			}
			file := filepath.Join(dir, "mux-"+ca.fixture)
			if err := os.WriteFile(file, out, 0o644); err != nil {
				t.Fatal(err)
			}
			got := probe(t, "mpeg", file)
			sortStreams(got)
			if ca.audio == TypeG711A && len(got) == 2 {
				got[1] = probedStream{}
			}
			if fmt.Sprint(got) != fmt.Sprint(ca.want) {
				t.Errorf("ffprobe -f mpeg read %+v, want %+v", got, ca.want)
			}
		})
	}
}

func fixtureByName(name string) fixture {
	for _, f := range fixtures {
		if f.file == name {
			return f
		}
	}
	panic(name)
}

// sortStreams puts video first (ffprobe numbers streams in the order it finds them).
func sortStreams(s []probedStream) {
	for i := 1; i < len(s); i++ {
		if s[i].Width > 0 && s[0].Width == 0 {
			s[0], s[i] = s[i], s[0]
		}
	}
}
