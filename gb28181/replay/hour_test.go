package replay

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestDownloadRecordedHour downloads an hour of recording (900 segments of
// 4 s, far more than the index is read for at a time) and has ffprobe count
// the PS it makes: every frame of the hour, and its duration.
func TestDownloadRecordedHour(t *testing.T) {
	testkit.SkipShort(t, "writes and reads an hour of recording (60 MB)")
	t.Parallel()
	files := encodeSegments(t, "h264", "320x180", "100k", 20, 4)
	f := newFixture(t)
	at, runs := t0, 0
	for ; at.Before(t0.Add(time.Hour - time.Second)); runs++ {
		segs := f.record(t, "cam-hour", at, files)
		at = segs[len(segs)-1].End
	}
	end := at
	var out []byte
	began := time.Now()
	s, err := f.p.NewSession(context.Background(), SessionConfig{Camera: "cam-hour", Start: t0, End: end, Download: true,
		SSRC: testSSRC, Write: func(b []byte) error {
			var p rtp.Packet
			if err := p.Unmarshal(b); err != nil {
				return err
			}
			out = append(out, p.Payload...)
			return nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	took := time.Since(began)
	path := filepath.Join(t.TempDir(), "hour.mpg")
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	res, err := exec.Command("ffprobe", "-v", "error", "-f", "mpeg", "-count_packets", "-select_streams", "v:0",
		"-show_entries", "stream=codec_name,width,height,nb_read_packets:format=duration", "-of", "json", path).Output()
	if err != nil {
		t.Fatalf("ffprobe: %v", err)
	}
	var pr struct {
		Streams []struct {
			Codec   string `json:"codec_name"`
			Width   int    `json:"width"`
			Height  int    `json:"height"`
			Packets string `json:"nb_read_packets"`
		} `json:"streams"`
		Format struct {
			Duration string `json:"duration"`
		} `json:"format"`
	}
	if err := json.Unmarshal(res, &pr); err != nil || len(pr.Streams) != 1 {
		t.Fatalf("ffprobe: %s (%v)", res, err)
	}
	st := pr.Streams[0]
	packets, _ := strconv.Atoi(st.Packets)
	dur, _ := strconv.ParseFloat(pr.Format.Duration, 64)
	want := end.Sub(t0)
	t.Logf("an hour (%s, %d MB of PS) downloaded in %s; ffprobe: %+v, duration %.2f s", want, len(out)>>20, took, st, dur)
	if st.Codec != "h264" || st.Width != 320 || st.Height != 180 {
		t.Errorf("ffprobe: %+v", st)
	}
	// 20 s of frames a run of files (whose first frame ffmpeg stretched by
	// 21 ms, which the index and the timeline keep).
	if wantFrames := runs * 20 * fixFPS; packets < wantFrames-2 || packets > wantFrames+2 {
		t.Errorf("%d video frames, want %d", packets, wantFrames)
	}
	if (time.Duration(dur*float64(time.Second)) - want).Abs() > time.Second {
		t.Errorf("duration %.2f s, want %s", dur, want)
	}
}
