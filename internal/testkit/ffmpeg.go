package testkit

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"
)

// FFmpegSegments runs ffmpeg (see Tool: it skips, or fails under
// VIGIL_REQUIRE_FFMPEG, when ffmpeg is absent) with args — its inputs and
// encoder options — and cuts the output, as a camera recorder stores it,
// into self-contained fMP4 segments of every seconds with 1 s fragments. It
// returns the segments in order.
func FFmpegSegments(t testing.TB, every int, args ...string) [][]byte {
	t.Helper()
	Tool(t, "ffmpeg", "VIGIL_REQUIRE_FFMPEG")
	dir := t.TempDir()
	all := append([]string{"-loglevel", "error", "-y"}, args...)
	all = append(all, "-f", "segment", "-segment_time", fmt.Sprint(every), "-reset_timestamps", "1",
		"-segment_format", "mp4",
		"-segment_format_options", "movflags=+frag_keyframe+empty_moov+default_base_moof:frag_duration=1000000",
		filepath.Join(dir, "seg%03d.mp4"))
	if out, err := exec.Command("ffmpeg", all...).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, out)
	}
	names, _ := filepath.Glob(filepath.Join(dir, "seg*.mp4"))
	sort.Strings(names)
	var segs [][]byte
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		segs = append(segs, b)
	}
	return segs
}
