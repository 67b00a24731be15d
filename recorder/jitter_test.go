package recorder

import (
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/review"
)

// TestRecordJitterAndGapExport records a camera whose timing is as rough as
// GStreamer's RTSP server (sender reports ±1.9 s, frames up to 95 ms late),
// with 2 s segments, stalls it long enough for a real gap, and records on.
// Segments of one session must abut (no false gap or overlap from the
// jitter), the real gap must stay, and an export of the whole range must
// hold both sides of it (ffprobe's duration is the recorded time) and name
// the gap; a playback across it says, before its first byte, that it stops
// there.
func TestRecordJitterAndGapExport(t *testing.T) {
	if testing.Short() {
		t.Skip("real-time recording")
	}
	ffprobe, err := exec.LookPath("ffprobe")
	if err != nil {
		t.Skip("ffprobe is not installed")
	}
	checkLeaks(t)
	sim, err := camsim.New(camsim.Options{Addr: "127.0.0.1:0", Count: 1, Codec: camsim.CodecH264,
		Jitter: 1900 * time.Millisecond, SenderReportEvery: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	mgr := ingest.NewFleet(ingest.FleetOptions{Log: testLog(t)})
	mctx, mcancel := context.WithCancel(context.Background())
	var mwg sync.WaitGroup
	mwg.Go(func() { mgr.Run(mctx) })
	defer func() { mcancel(); mwg.Wait() }()

	dir := t.TempDir()
	store, err := archive.NewLocalStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	ix := openRecIndex(t, filepath.Join(dir, "vigil.db"))
	h := startRecorderFrom(t, Options{Store: store, Index: ix, SpoolDir: filepath.Join(dir, "spool"), SegmentDuration: 2 * time.Second}, mgr)
	const cam = "jitter-1"
	c := ingest.Camera{ID: cam, MainURL: sim.URL(1, false), Transport: "tcp", Record: true, Enabled: true}
	mgr.Set(c)
	h.rec.Set(c)

	ctx := context.Background()
	rows := func() []archive.Segment {
		segs, err := ix.Segments(ctx, cam, time.Unix(0, 0), time.Unix(1<<32, 0), false)
		if err != nil {
			t.Fatal(err)
		}
		return segs
	}
	recWaitFor(t, 40*time.Second, "six segments", func() bool { return len(rows()) >= 6 })
	// a real gap: the camera sends nothing for longer than the recorder
	// keeps a segment open without media
	const stall = idleClose + 2*time.Second
	sim.SetStall(true)
	stalled := time.Now()
	time.Sleep(stall)
	sim.SetStall(false)
	recWaitFor(t, 40*time.Second, "five segments after the stall", func() bool {
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
