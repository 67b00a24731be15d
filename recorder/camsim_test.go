package recorder

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
	"github.com/vigil-vms/vigil/recorder/review"
)

// TestRecordCamsimS3 records two simulated RTSP cameras (H.264 and AAC),
// pulled by the ingest fleet, into a real S3 server for two segments each:
// every object parses as fMP4, starts with a keyframe and matches its index row.
func TestRecordCamsimS3(t *testing.T) {
	testkit.SkipShort(t, "real-time recording")
	checkLeaks(t)
	s3, _, _, _ := rectest.StartS3Store(t)
	recordCamsim(t, "h264", s3)
}

// TestRecordCamsimH265 records two H.265 camsim cameras with audio to the local store.
func TestRecordCamsimH265(t *testing.T) {
	testkit.SkipShort(t, "real-time recording")
	checkLeaks(t)
	store, err := archive.NewLocalStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	recordCamsim(t, "h265", store)
}

func recordCamsim(t *testing.T, codec string, store archive.Store) {
	sim := simcam.Start(t, camsim.Options{Count: 2, Codec: codec, Audio: true})
	cams := []string{"sim-1", "sim-2"}
	h, ix := recordSim(t, sim, store, 2*time.Second, cams...)
	testkit.WaitFor(t, 30*time.Second, "two segments of each camera", func() bool {
		for _, id := range cams {
			segs, err := ix.Segments(context.Background(), id, time.Unix(0, 0), time.Unix(1<<32, 0), false)
			if err != nil || len(segs) < 2 {
				return false
			}
		}
		return true
	})
	h.stop() // closes and uploads the open segments
	rows := checkRecStored(t, store, ix, cams, false, codec)
	for _, id := range cams {
		segs := rows[id]
		if len(segs) < 3 {
			t.Errorf("%s: %d segments", id, len(segs))
		}
		for i, s := range segs {
			if d := s.End.Sub(s.Start); i < len(segs)-1 && (d < 1900*time.Millisecond || d > 2100*time.Millisecond) {
				t.Errorf("%s segment %d lasts %v", id, i, d)
			}
			if i > 0 && s.Start.Sub(segs[i-1].End).Abs() > 100*time.Millisecond {
				t.Errorf("%s: %v between segments %d and %d", id, s.Start.Sub(segs[i-1].End), i-1, i)
			}
		}
	}
}

// recordSim pulls sim's cameras 1, 2, ... as ids with an ingest fleet and
// records them into store in segments of segDur until the test ends (or
// h.stop). It returns the recorder and its index.
func recordSim(t *testing.T, sim *camsim.Server, store archive.Store, segDur time.Duration, ids ...string) (*recHarness, *archive.Index) {
	t.Helper()
	mgr := ingest.NewFleet(ingest.FleetOptions{Log: testLog(t)})
	testkit.Run(t, mgr.Run)
	dir := t.TempDir()
	ix := rectest.NewIndex(t)
	h := startRecorderFrom(t, Options{Store: store, Index: ix, SpoolDir: filepath.Join(dir, "spool"), SegmentDuration: segDur}, mgr)
	for i, id := range ids {
		c := ingest.Camera{ID: id, MainURL: sim.URL(i+1, false), Transport: "tcp", Record: true, Enabled: true}
		mgr.Set(c)
		h.rec.Set(c)
	}
	return h, ix
}

// TestRecordJitterAndGapExport records a camera whose timing is as rough as
// GStreamer's RTSP server (sender reports ±1.9 s, frames up to 95 ms late),
// with 2 s segments, stalls it long enough for a real gap, and records on.
// Segments of one session must abut (no false gap or overlap from the
// jitter), the real gap must stay, and an export of the whole range must
// hold both sides of it (ffprobe's duration is the recorded time) and name
// the gap; a playback across it says, before its first byte, that it stops
// there.
func TestRecordJitterAndGapExport(t *testing.T) {
	testkit.SkipShort(t, "real-time recording")
	ffprobe := testkit.Tool(t, "ffprobe", "")
	checkLeaks(t)
	sim := simcam.Start(t, camsim.Options{Count: 1, Codec: camsim.CodecH264,
		Jitter: 1900 * time.Millisecond, SenderReportEvery: time.Second})
	store, err := archive.NewLocalStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	const cam = "jitter-1"
	h, ix := recordSim(t, sim, store, 2*time.Second, cam)

	ctx := context.Background()
	rows := func() []archive.Segment {
		segs, err := ix.Segments(ctx, cam, time.Unix(0, 0), time.Unix(1<<32, 0), false)
		if err != nil {
			t.Fatal(err)
		}
		return segs
	}
	testkit.WaitFor(t, 40*time.Second, "six segments", func() bool { return len(rows()) >= 6 })
	// a real gap: the camera sends nothing for longer than the recorder
	// keeps a segment open without media
	const stall = idleClose + 2*time.Second
	sim.SetStall(true)
	stalled := time.Now()
	time.Sleep(stall)
	sim.SetStall(false)
	testkit.WaitFor(t, 40*time.Second, "five segments after the stall", func() bool {
		n := 0
		for _, s := range rows() {
			if s.Start.After(stalled.Add(stall)) {
				n++
			}
		}
		return n >= 5
	})
	h.stop()

	segs := rows()
	var gaps []review.Gap
	var recorded time.Duration
	for i, s := range segs {
		recorded += s.End.Sub(s.Start)
		if i == 0 {
			continue
		}
		d := s.Start.Sub(segs[i-1].End)
		switch {
		case d > review.MaxGap:
			gaps = append(gaps, review.Gap{Start: segs[i-1].End, End: s.Start})
		case d.Abs() >= 2*time.Millisecond:
			t.Errorf("segments %d and %d: %v between them (jitter made a false gap or overlap)", i-1, i, d)
		}
	}
	if len(gaps) != 1 || gaps[0].End.Sub(gaps[0].Start) < stall-idleClose {
		t.Fatalf("gaps between segments %v, want the one of the stall (%v)", gaps, stall)
	}
	t.Logf("%d segments, %v recorded, gap %v", len(segs), recorded, gaps[0].End.Sub(gaps[0].Start))

	// the export of the whole range holds both sides of the gap
	from, to := segs[0].Start, segs[len(segs)-1].End
	rv := review.NewReview(store, ix, nil)
	rv.Logger = testLog(t)
	ex, err := rv.Export(ctx, cam, from, to)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), ex.Name)
	b, err := io.ReadAll(ex.File)
	ex.File.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(ffprobe, "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", p).CombinedOutput()
	if err != nil {
		t.Fatalf("ffprobe: %v: %s", err, out)
	}
	sec, err := strconv.ParseFloat(strings.TrimSpace(string(out)), 64)
	if err != nil {
		t.Fatalf("ffprobe duration %q: %v", out, err)
	}
	probed := time.Duration(sec * float64(time.Second))
	if d := probed - recorded; d.Abs() > time.Second {
		t.Errorf("export of %v..%v: ffprobe gives %v, want the %v recorded", from, to, probed, recorded)
	}
	if d := ex.Recorded - recorded; d.Abs() > 100*time.Millisecond {
		t.Errorf("export says it holds %v, the index %v", ex.Recorded, recorded)
	}
	if len(ex.Gaps) != 1 || ex.Gaps[0].Start.Sub(gaps[0].Start).Abs() > 10*time.Millisecond ||
		ex.Gaps[0].End.Sub(gaps[0].End).Abs() > 10*time.Millisecond {
		t.Errorf("export gaps %v, want %v", ex.Gaps, gaps)
	}

	// a playback across the gap says where it stops and where recording resumes
	pb, err := rv.Open(ctx, cam, from, to.Sub(from))
	if err != nil {
		t.Fatal(err)
	}
	if pb.Stops != review.StopsAtGap || !pb.End.Equal(gaps[0].Start) || !pb.Resume.Equal(gaps[0].End) {
		t.Errorf("playback across the gap: stops %q at %v, resumes %v; want a gap %v", pb.Stops, pb.End, pb.Resume, gaps[0])
	}
	if pb, err = rv.Open(ctx, cam, gaps[0].End, to.Sub(gaps[0].End)+time.Minute); err != nil {
		t.Fatal(err)
	} else if pb.Stops != review.StopsAtRecordingEnd || !pb.End.Equal(to) {
		t.Errorf("playback to the end: stops %q at %v, want %q at %v", pb.Stops, pb.End, review.StopsAtRecordingEnd, to)
	}
}
