package replay

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/review"
)

// Fixtures: real H.264 + AAC encoded by ffmpeg, cut into fMP4 segments as
// the recorder stores them, put into a local store and indexed with the
// index rows the recorder's own scanner makes.

// t0 is the wall-clock start of the fixtures' recordings.
var t0 = time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)

const (
	fixWidth, fixHeight = 640, 360
	fixFPS              = 25
)

var segCache sync.Map // "seconds/every" → [][]byte

// ffmpegSegments encodes seconds of 640x360 25 fps H.264 (keyframe every 2 s,
// 1 s fragments) with AAC audio, cut into segments of every seconds.
func ffmpegSegments(t testing.TB, seconds, every int) [][]byte {
	t.Helper()
	return encodeSegments(t, "h264", fmt.Sprintf("%dx%d", fixWidth, fixHeight), "500k", seconds, every)
}

// encodeSegments encodes seconds of size 25 fps H.264 or H.265 (codec
// "h264" or "h265") at bitrate (keyframe every 2 s, no B-frames, 1 s
// fragments) with AAC audio, cut into segments of every seconds.
func encodeSegments(t testing.TB, codec, size, bitrate string, seconds, every int) [][]byte {
	t.Helper()
	testkit.Tool(t, "ffmpeg", "VIGIL_REQUIRE_FFMPEG")
	testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	key := fmt.Sprint(codec, "/", size, "/", bitrate, "/", seconds, "/", every)
	video := []string{"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
		"-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-bf", "0"}
	if codec == "h265" {
		video = []string{"-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-tag:v", "hvc1",
			"-x265-params", "keyint=50:min-keyint=50:scenecut=0:bframes=0:log-level=error"}
	}
	if v, ok := segCache.Load(key); ok {
		return v.([][]byte)
	}
	args := []string{"-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%s:rate=%d", size, fixFPS),
		"-f", "lavfi", "-i", "sine=frequency=1000:sample_rate=48000",
		"-t", fmt.Sprint(seconds)}
	args = append(args, video...)
	args = append(args, "-b:v", bitrate, "-maxrate", bitrate, "-bufsize", bitrate,
		"-c:a", "aac", "-b:a", "32k", "-ac", "1")
	segs := testkit.FFmpegSegments(t, every, args...)
	segCache.Store(key, segs)
	return segs
}

type fixture struct {
	st *archive.LocalStore
	ix *archive.Index
	rv *review.Review
	p  *Player
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	st, err := archive.NewLocalStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ix, err := archive.OpenIndex(context.Background(), testdb.OpenDB(t))
	if err != nil {
		t.Fatal(err)
	}
	rv := review.NewReview(st, ix, nil)
	return &fixture{st: st, ix: ix, rv: rv, p: New(rv)}
}

// record stores the files back to back from at, indexed as the recorder's
// scanner describes them, and returns their rows.
func (f *fixture) record(t testing.TB, camera string, at time.Time, files [][]byte) []archive.Segment {
	t.Helper()
	ctx := context.Background()
	var out []archive.Segment
	for _, b := range files {
		sc, err := archive.ScanSegment(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		seg, err := archive.SegmentRow(archive.SegmentKey(camera, at), sc)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.st.Put(ctx, seg.Key, bytes.NewReader(b), int64(len(b)), nil); err != nil {
			t.Fatal(err)
		}
		if err := f.ix.Add(ctx, seg); err != nil {
			t.Fatal(err)
		}
		out = append(out, seg)
		at = seg.End
	}
	return out
}

// sink collects the RTP packets a session writes, with their arrival times.
type sink struct {
	mu      sync.Mutex
	pkts    []rtp.Packet
	arrived []time.Time
	frames  []time.Time // arrival of each packet with the marker bit
}

func (s *sink) write(b []byte) error {
	var p rtp.Packet
	if err := p.Unmarshal(b); err != nil {
		return err
	}
	p.Payload = append([]byte(nil), p.Payload...)
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pkts = append(s.pkts, p)
	s.arrived = append(s.arrived, now)
	if p.Marker {
		s.frames = append(s.frames, now)
	}
	return nil
}

func (s *sink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pkts)
}

// ps checks the RTP headers (version, payload type, SSRC, sequence) and
// returns the PS stream the payloads carry.
func (s *sink) ps(t *testing.T, ssrc uint32) []byte {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []byte
	for i, p := range s.pkts {
		if p.Version != 2 || p.PayloadType != DefaultPayloadType || p.SSRC != ssrc {
			t.Fatalf("packet %d: version %d, type %d, SSRC %d", i, p.Version, p.PayloadType, p.SSRC)
		}
		if i > 0 && p.SequenceNumber != s.pkts[i-1].SequenceNumber+1 {
			t.Fatalf("packet %d: sequence %d after %d", i, p.SequenceNumber, s.pkts[i-1].SequenceNumber)
		}
		if len(p.Payload) > DefaultMaxPayload {
			t.Fatalf("packet %d: payload of %d bytes", i, len(p.Payload))
		}
		out = append(out, p.Payload...)
	}
	return out
}

// demuxed is what our PS demuxer reads back.
type demuxed struct {
	video, keys, audio int
	firstKey           bool
	dts                []int64 // video DTS, 90 kHz
}

func demux(t *testing.T, b []byte) demuxed {
	t.Helper()
	var d demuxed
	dm := &ps.Demuxer{OnUnit: func(u *ps.Unit) {
		if u.Type.IsVideo() {
			if d.video == 0 {
				d.firstKey = u.Keyframe
			}
			d.video++
			if u.Keyframe {
				d.keys++
			}
			d.dts = append(d.dts, u.DTS)
		} else {
			d.audio++
		}
	}, OnError: func(err error) { t.Errorf("demux: %v", err) }}
	dm.Write(b)
	dm.Flush()
	return d
}

// probe is what ffprobe reads of a PS file.
type probe struct {
	codec         string
	width, height int
	frames        int
	duration      time.Duration // of the video stream, from the first to past the last frame
	firstKey      bool
	audioCodec    string
}

func ffprobe(t *testing.T, b []byte) probe {
	t.Helper()
	path := testkit.TempFile(t, "playback.mpg", b)
	var res struct {
		Streams []struct {
			CodecType string `json:"codec_type"`
			CodecName string `json:"codec_name"`
			Width     int    `json:"width"`
			Height    int    `json:"height"`
		} `json:"streams"`
		Frames []struct {
			MediaType string `json:"media_type"`
			KeyFrame  int    `json:"key_frame"`
			PTS       string `json:"pts_time"`
		} `json:"frames"`
	}
	testkit.FFprobeJSON(t, &res, "-f", "mpeg", "-show_streams", "-show_frames",
		"-show_entries", "stream=codec_type,codec_name,width,height:frame=media_type,key_frame,pts_time,duration_time", path)
	var p probe
	for _, s := range res.Streams {
		if s.CodecType == "video" {
			p.codec, p.width, p.height = s.CodecName, s.Width, s.Height
		} else if s.CodecType == "audio" {
			p.audioCodec = s.CodecName
		}
	}
	var first, last float64
	for _, f := range res.Frames {
		if f.MediaType != "video" {
			continue
		}
		pts, err := strconv.ParseFloat(strings.TrimSpace(f.PTS), 64)
		if err != nil {
			t.Fatalf("ffprobe frame pts %q", f.PTS)
		}
		if p.frames == 0 {
			p.firstKey, first = f.KeyFrame == 1, pts
		}
		last = max(last, pts)
		p.frames++
	}
	if p.frames > 0 {
		p.duration = time.Duration((last - first + 1.0/fixFPS) * float64(time.Second))
	}
	return p
}
