package testkit

import (
	"encoding/json"
	"errors"
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

// FFprobeJSON runs ffprobe (see Tool) with args and "-of json" and decodes
// its answer into v.
func FFprobeJSON(t testing.TB, v any, args ...string) {
	t.Helper()
	Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
	out, err := exec.Command("ffprobe", append([]string{"-v", "error", "-of", "json"}, args...)...).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			err = fmt.Errorf("%w: %s", err, ee.Stderr)
		}
		t.Fatalf("ffprobe %q: %v", args, err)
	}
	if err := json.Unmarshal(out, v); err != nil {
		t.Fatalf("ffprobe %q: %v in %s", args, err, out)
	}
}
