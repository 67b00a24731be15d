// Package rectest holds what the tests of the recorder's packages share: the
// checks they make of a played or exported clip (its boxes, its decode
// times, its first keyframe, and what ffprobe makes of it), an index in a
// temporary database and an S3 store of the test server (testkit.StartS3).
// What is not the recorder's own (the leak check, the S3 server, tools and
// waiting) is in internal/testkit. It is imported by tests only.
package rectest

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/fmp4read"
)

// Report is what a parsed clip shows.
type Report struct {
	VideoSeconds float64 // sum of the video samples' durations
	VideoSamples int
	Parts        int
}

// Check parses a clip with mediacommon's fMP4 reader and checks that it
// is one init section and fragments numbered 1..n, that it begins with a
// video keyframe, and that every track's decode times are continuous and
// monotonic (no step back, no hole over 50 ms) across all fragments.
func Check(t *testing.T, clip []byte) Report {
	t.Helper()
	return check(t, clip, true)
}

// CheckSynthetic checks a clip of synthetic segments, whose payloads are
// not decodable video: everything but ffprobe.
func CheckSynthetic(t *testing.T, clip []byte) Report {
	t.Helper()
	return check(t, clip, false)
}

func check(t *testing.T, clip []byte, withProbe bool) Report {
	t.Helper()
	top, err := fmp4read.Boxes(clip, 0, len(clip))
	if err != nil {
		t.Fatalf("clip: %v", err)
	}
	if len(top) < 4 || top[0].Type != "ftyp" || top[1].Type != "moov" || top[2].Type != "moof" {
		t.Fatalf("clip does not begin with ftyp, moov, moof: %v", top[:min(3, len(top))])
	}
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(clip[:top[1].End])); err != nil {
		t.Fatalf("clip init: %v", err)
	}
	var parts fmp4.Parts
	if err := parts.Unmarshal(clip[top[1].End:]); err != nil {
		t.Fatalf("clip fragments: %v", err)
	}
	scale := map[int]uint32{}
	video := 0
	for _, tr := range init.Tracks {
		scale[tr.ID] = tr.TimeScale
		if tr.Codec.IsVideo() && video == 0 {
			video = tr.ID
		}
	}
	var rep Report
	ends := map[int]uint64{}
	for i, p := range parts {
		if p.SequenceNumber != uint32(i+1) {
			t.Fatalf("fragment %d has sequence number %d", i, p.SequenceNumber)
		}
		for _, tr := range p.Tracks {
			if end, ok := ends[tr.ID]; ok {
				if tr.BaseTime < end {
					t.Fatalf("fragment %d track %d goes back in time: %d < %d", i, tr.ID, tr.BaseTime, end)
				}
				if hole := float64(tr.BaseTime-end) / float64(scale[tr.ID]); hole > 0.05 {
					t.Fatalf("fragment %d track %d leaves a hole of %.3fs", i, tr.ID, hole)
				}
			} else if i == 0 && float64(tr.BaseTime)/float64(scale[tr.ID]) > 0.1 {
				t.Fatalf("clip track %d starts at decode time %d, not near 0", tr.ID, tr.BaseTime)
			}
			end := tr.BaseTime
			for _, s := range tr.Samples {
				end += uint64(s.Duration)
				if tr.ID == video {
					rep.VideoSamples++
					rep.VideoSeconds += float64(s.Duration) / float64(scale[tr.ID])
				}
			}
			ends[tr.ID] = end
		}
	}
	rep.Parts = len(parts)
	// mediacommon's reader ignores a trun's first-sample flags, which ffmpeg
	// uses; read the first video sample's flags with the moof parser.
	in, err := fmp4read.ParseInit(clip[:top[1].End])
	if err != nil {
		t.Fatalf("clip init: %v", err)
	}
	m, err := fmp4read.ParseMoof(clip[top[2].Start:], in)
	if err != nil {
		t.Fatalf("clip first fragment: %v", err)
	}
	for _, tr := range m.Trafs {
		if int(tr.TrackID) == video && !tr.FirstKey {
			t.Fatal("clip does not begin with a keyframe")
		}
	}
	if withProbe {
		probe(t, clip, rep)
	}
	return rep
}

// probe runs ffprobe on the clip: no error, video packets with strictly
// increasing decode times, the first one a keyframe, as many as mediacommon saw.
func probe(t *testing.T, clip []byte, rep Report) {
	t.Helper()
	RequireFFmpeg(t)
	name := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(name, clip, 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command("ffprobe", "-v", "error", "-select_streams", "v:0",
		"-show_entries", "packet=dts_time,flags", "-of", "csv=p=0", name)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("ffprobe: %v: %s", err, stderr.String())
	}
	rows, err := csv.NewReader(bytes.NewReader(out)).ReadAll()
	if err != nil {
		t.Fatalf("ffprobe output: %v", err)
	}
	if len(rows) != rep.VideoSamples {
		t.Fatalf("ffprobe sees %d video packets, mediacommon %d", len(rows), rep.VideoSamples)
	}
	prev := -1.0
	for i, r := range rows {
		if len(r) < 2 {
			t.Fatalf("ffprobe row %q", r)
		}
		dts, err := strconv.ParseFloat(r[0], 64)
		if err != nil {
			t.Fatalf("ffprobe dts %q: %v", r[0], err)
		}
		if dts <= prev {
			t.Fatalf("ffprobe packet %d: dts %.3f after %.3f", i, dts, prev)
		}
		prev = dts
		if i == 0 && !strings.HasPrefix(r[1], "K") {
			t.Fatalf("ffprobe: first packet flags %q, not a keyframe", r[1])
		}
	}
}

// KeyframeAtOrBefore is the wall-clock time of the keyframe fragment where a
// playback from start must begin, from the index rows.
func KeyframeAtOrBefore(segs []archive.Segment, start time.Time) time.Time {
	var kf time.Time
	for _, s := range segs {
		for _, f := range s.Fragments {
			at := s.Start.Add(f.Offset)
			if f.Keyframe && (!at.After(start) || kf.IsZero()) {
				kf = at
			}
		}
	}
	return kf
}

// RequireFFmpeg skips the test when ffmpeg or ffprobe is missing, or fails
// it when VIGIL_REQUIRE_FFMPEG=1.
func RequireFFmpeg(t testing.TB) {
	t.Helper()
	testkit.Tool(t, "ffmpeg", "VIGIL_REQUIRE_FFMPEG")
	testkit.Tool(t, "ffprobe", "VIGIL_REQUIRE_FFMPEG")
}

// Player is what Play needs of the review (review.Review).
type Player interface {
	Playback(ctx context.Context, w io.Writer, camera string, start time.Time, dur time.Duration) error
}

// Play returns the clip of a playback, failing the test on an error.
func Play(t *testing.T, p Player, camera string, start time.Time, dur time.Duration) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := p.Playback(context.Background(), &buf, camera, start, dur); err != nil {
		t.Fatalf("playback %s +%s: %v", start.Format(time.RFC3339Nano), dur, err)
	}
	return buf.Bytes()
}

// OpenIndex opens a recordings index in the SQLite database at path
// (whatever VIGIL_TEST_DATABASE says), closed when the test ends.
func OpenIndex(t testing.TB, path string) *archive.Index {
	t.Helper()
	ix, err := archive.OpenIndex(context.Background(), testdb.OpenSQLite(t, path))
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// NewIndex opens a recordings index in a new, empty database of the engine
// VIGIL_TEST_DATABASE selects (testdb.OpenDB: the test package's TestMain
// calls pgtest.Main), closed when the test ends.
func NewIndex(t testing.TB) *archive.Index {
	t.Helper()
	ix, err := archive.OpenIndex(context.Background(), testdb.OpenDB(t))
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// NewS3Store opens the S3 store of a test server (testkit.StartS3).
func NewS3Store(t *testing.T, endpoint, access, secret, bucket string) *archive.S3Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := archive.NewS3Store(ctx, archive.S3Options{Endpoint: endpoint, Bucket: bucket, Region: "us-east-1", AccessKey: access, SecretKey: secret})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// StartS3Store starts an S3 test server (testkit.StartS3) and opens its
// store; it returns the server's endpoint and its stop and restart too.
func StartS3Store(t *testing.T) (s *archive.S3Store, endpoint string, stop, restart func()) {
	t.Helper()
	endpoint, access, secret, bucket, stop, restart := testkit.StartS3(t)
	return NewS3Store(t, endpoint, access, secret, bucket), endpoint, stop, restart
}
