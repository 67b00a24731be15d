package replay

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/review"
)

const testSSRC = 1100000001

func TestRecordInfoMatchesIndex(t *testing.T) {
	files := ffmpegSegments(t, 20, 4)
	f := newFixture(t)
	first := f.record(t, "cam-ri", t0, files[:2])
	resume := first[len(first)-1].End.Add(30 * time.Second)
	second := f.record(t, "cam-ri", resume, files[2:])
	f.p.Location = time.FixedZone("CST", 8*3600)
	ctx := context.Background()

	start, end := t0.Add(-time.Hour), t0.Add(time.Hour)
	items, err := f.p.RecordInfo(ctx, "cam-ri", start, end)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := f.rv.Recordings(ctx, "cam-ri", start, end)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || len(rec.Spans) != 2 {
		t.Fatalf("%d items from %d spans, want 2 and 2: %+v", len(items), len(rec.Spans), items)
	}
	for i, it := range items {
		sp := rec.Spans[i]
		if !it.StartTime.Equal(sp.Start) || !it.EndTime.Equal(sp.End) {
			t.Errorf("item %d: %s to %s, span %s to %s", i, it.StartTime.Time, it.EndTime.Time, sp.Start, sp.End)
		}
		if it.Type != "time" || it.Secrecy == nil || *it.Secrecy != 0 || it.FileSize <= 0 || it.FilePath == "" {
			t.Errorf("item %d: %+v", i, it)
		}
	}
	if items[0].EndTime.Sub(first[len(first)-1].End).Abs() > time.Millisecond ||
		items[1].StartTime.Sub(resume).Abs() > time.Millisecond || items[1].EndTime.Sub(second[len(second)-1].End).Abs() > time.Millisecond {
		t.Errorf("items %v–%v, %v–%v do not match the recorded runs", items[0].StartTime, items[0].EndTime, items[1].StartTime, items[1].EndTime)
	}
	// Written in the platform's zone: 08:00 UTC is 16:00 at UTC+8.
	b, err := items[0].StartTime.MarshalText()
	if err != nil || string(b) != "2026-11-26T16:00:00" {
		t.Errorf("StartTime written as %q (%v), want 2026-11-26T16:00:00", b, err)
	}

	// A range inside the first run is clipped to the range.
	items, err = f.p.RecordInfo(ctx, "cam-ri", t0.Add(2*time.Second), t0.Add(5*time.Second))
	if err != nil || len(items) != 1 || !items[0].StartTime.Equal(t0.Add(2*time.Second)) || !items[0].EndTime.Equal(t0.Add(5*time.Second)) {
		t.Errorf("clipped: %+v, %v", items, err)
	}
	// The gap holds nothing.
	items, err = f.p.RecordInfo(ctx, "cam-ri", first[len(first)-1].End.Add(5*time.Second), resume.Add(-5*time.Second))
	if err != nil || len(items) != 0 {
		t.Errorf("in the gap: %+v, %v", items, err)
	}
	// The items page through the MANSCDP encoder as the upstream sends them.
	items, _ = f.p.RecordInfo(ctx, "cam-ri", start, end)
	for i := range items {
		items[i].DeviceID = "34020000001320000001"
	}
	pages, err := manscdp.Encoder{}.RecordInfoPages(7, "34020000001320000001", "cam", items, 1, 0)
	if err != nil || len(pages) != 2 {
		t.Fatalf("%d pages, %v", len(pages), err)
	}
	m, err := manscdp.Decode(pages[1])
	if err != nil {
		t.Fatalf("decode page: %v\n%s", err, pages[1])
	}
	if r := m.(*manscdp.Response); r.SumNum != 2 || len(r.RecordList.Items) != 1 {
		t.Errorf("page 2: %+v", r)
	}
	if _, err := f.p.RecordInfo(ctx, "cam-ri", end, start); !errors.Is(err, apierr.ErrInvalid) {
		t.Errorf("reversed range: %v, want invalid", err)
	}
}

// play runs a session to its end and returns the sink and how long it took
// from the first packet to the last.
func play(t *testing.T, f *fixture, cfg SessionConfig, during func(s *Session, k *sink)) (*sink, *Session, time.Duration) {
	t.Helper()
	k := &sink{}
	ended := 0
	cfg.SSRC, cfg.Write, cfg.OnEnd = testSSRC, k.write, func() { ended++ }
	s, err := f.p.NewSession(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	if during != nil {
		during(s, k)
	}
	testkit.Returned(t, done, time.Minute, "session")
	if ended != 1 {
		t.Errorf("OnEnd called %d times, want once", ended)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.arrived) == 0 {
		t.Fatal("nothing was sent")
	}
	return k, s, k.arrived[len(k.arrived)-1].Sub(k.arrived[0])
}

func TestPlaybackRealTimeFFprobe(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	segs := f.record(t, "cam-pb", t0, ffmpegSegments(t, 20, 4))
	// 6 s from a keyframe (the second segment's first), across a segment boundary.
	start := segs[1].Start.Add(segs[1].Fragments[0].Offset)
	end := start.Add(6 * time.Second)
	k, s, took := play(t, f, SessionConfig{Camera: "cam-pb", Start: start, End: end}, nil)
	if !s.Start().Equal(start) {
		t.Errorf("Start %s, want %s", s.Start(), start)
	}
	b := k.ps(t, testSSRC)
	p := ffprobe(t, b)
	t.Logf("6 s at scale 1: sent in %s; ffprobe: %+v", took, p)
	if p.codec != "h264" || p.width != fixWidth || p.height != fixHeight || !p.firstKey {
		t.Errorf("ffprobe: %+v, want h264 %dx%d starting on a keyframe", p, fixWidth, fixHeight)
	}
	if p.audioCodec != "aac" {
		t.Errorf("audio %q, want aac", p.audioCodec)
	}
	if d := p.duration - end.Sub(start); d.Abs() > 2*time.Second/fixFPS {
		t.Errorf("duration %s, want %s within two frames", p.duration, end.Sub(start))
	}
	if want := int(end.Sub(start).Seconds() * fixFPS); p.frames < want-2 || p.frames > want+2 {
		t.Errorf("%d frames, want %d", p.frames, want)
	}
	// Real time: 6 s of recording take about 6 s (the last frame is sent one frame before the end).
	if took < 5500*time.Millisecond || took > 12*time.Second {
		t.Errorf("6 s at scale 1 took %s", took)
	}
	if st := s.Stats(); st.Position.Before(end.Add(-100*time.Millisecond)) || !st.Position.Before(end) {
		t.Errorf("Position %s, want just before %s", st.Position, end)
	}
}

func TestPlaybackScale4KeyframesOnly(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.record(t, "cam-s4", t0, ffmpegSegments(t, 20, 4))
	start, end := t0, t0.Add(16*time.Second)
	k, _, took := play(t, f, SessionConfig{Camera: "cam-s4", Start: start, End: end}, func(s *Session, _ *sink) {
		if err := s.Play(4); err != nil {
			t.Error(err)
		}
	})
	d := demux(t, k.ps(t, testSSRC))
	t.Logf("16 s at scale 4: keyframes at 0..14 s sent in %s; %+v", took, d)
	if d.video != 8 || d.keys != 8 || d.audio != 0 {
		t.Errorf("%d video units (%d keyframes) and %d audio, want the 8 keyframes only", d.video, d.keys, d.audio)
	}
	// Keyframes 2 s apart at scale 4: 14 s of recording in 3.5 s.
	if took < 3*time.Second || took > 9*time.Second {
		t.Errorf("keyframes 0..14 s at scale 4 took %s, want about 3.5 s", took)
	}
	for i := 1; i < len(d.dts); i++ {
		if step := d.dts[i] - d.dts[i-1]; step < 2*90000-2500 || step > 2*90000+2500 {
			t.Errorf("keyframe %d: DTS step %d, want the recording's 180000", i, d.dts[i]-d.dts[i-1])
		}
	}
}

func TestPlaybackPauseResume(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.record(t, "cam-pa", t0, ffmpegSegments(t, 20, 4))
	start, end := t0, t0.Add(4*time.Second)
	var paused time.Duration
	k, _, took := play(t, f, SessionConfig{Camera: "cam-pa", Start: start, End: end}, func(s *Session, k *sink) {
		testkit.WaitFor(t, 10*time.Second, "packets", func() bool { return k.count() > 20 })
		c, err := ParseControl([]byte("PAUSE MANSRTSP/1.0\r\nCSeq: 2\r\nPauseTime: now\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(c); err != nil {
			t.Error(err)
		}
		time.Sleep(200 * time.Millisecond) // a frame in flight may still arrive
		n := k.count()
		time.Sleep(1500 * time.Millisecond)
		if m := k.count(); m != n {
			t.Errorf("%d packets sent while paused", m-n)
		}
		paused = 1700 * time.Millisecond
		c, _ = ParseControl([]byte("PLAY MANSRTSP/1.0\r\nCSeq: 3\r\nRange: npt=now-\r\n\r\n"))
		if err := s.Apply(c); err != nil {
			t.Error(err)
		}
	})
	d := demux(t, k.ps(t, testSSRC))
	t.Logf("4 s with a pause of %s took %s: %+v", paused, took, d.video)
	if want := 4 * fixFPS; d.video < want-1 || d.video > want+1 || !d.firstKey {
		t.Errorf("%d video units, want %d starting with a keyframe", d.video, want)
	}
	checkSteps(t, d.dts, "over the pause")
	if took < 4*time.Second+paused-500*time.Millisecond {
		t.Errorf("took %s, less than the 4 s played and the pause", took)
	}
}

func TestPlaybackSeek(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	segs := f.record(t, "cam-sk", t0, ffmpegSegments(t, 20, 4))
	start, end := t0, segs[len(segs)-1].End
	// The seek to 14 s starts at the keyframe at or before it.
	var seekKey time.Time
	for _, sg := range segs {
		for _, fr := range sg.Fragments {
			if at := sg.Start.Add(fr.Offset); fr.Keyframe && !at.After(t0.Add(14*time.Second)) {
				seekKey = at
			}
		}
	}
	var before int
	k, s, _ := play(t, f, SessionConfig{Camera: "cam-sk", Start: start, End: end}, func(s *Session, k *sink) {
		testkit.WaitFor(t, 10*time.Second, "packets", func() bool { return k.count() > 20 })
		c, err := ParseControl([]byte("PLAY MANSRTSP/1.0\r\nCSeq: 4\r\nRange: npt=14-\r\nScale: 2\r\n\r\n"))
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Apply(c); err != nil {
			t.Error(err)
		}
		if err := s.Seek(end); err == nil {
			t.Error("a seek to the range's end was accepted")
		}
	})
	d := demux(t, k.ps(t, testSSRC))
	checkSteps(t, d.dts, "across the seek")
	// Frames before the seek, then from the keyframe at or before 14 s to the end.
	after := int(end.Sub(seekKey).Seconds()*fixFPS + 0.5)
	before = d.video - after
	t.Logf("seek to 14 s (keyframe at %s): %d frames before, %d after, %d video units in all", seekKey.Sub(t0), before, after, d.video)
	if before < 1 || before > 3*fixFPS { // the seek came soon after the first packets (3 s of slack for a loaded machine)
		t.Errorf("%d video units: %d before the seek does not fit", d.video, before)
	}
	if p := s.Stats().Position; p.Before(end.Add(-100 * time.Millisecond)) {
		t.Errorf("Position %s after the seek to the end", p)
	}
}

func TestDownloadFasterThanRealTime(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.record(t, "cam-dl", t0, ffmpegSegments(t, 20, 4))
	start, end := t0, t0.Add(20*time.Second)
	k, s, took := play(t, f, SessionConfig{Camera: "cam-dl", Start: start, End: end, Download: true}, nil)
	p := ffprobe(t, k.ps(t, testSSRC))
	t.Logf("download of 20 s took %s (%.0fx real time): %+v", took, 20/took.Seconds(), p)
	if took > 10*time.Second {
		t.Errorf("download of 20 s took %s", took)
	}
	if p.frames != 20*fixFPS || !p.firstKey || (p.duration-20*time.Second).Abs() > 2*time.Second/fixFPS {
		t.Errorf("ffprobe: %+v, want 500 frames, 20 s", p)
	}
	// A rate cap of a third of the stream's bytes per second: about 3 s.
	bytes := s.Stats().Bytes
	k2, _, took2 := play(t, f, SessionConfig{Camera: "cam-dl", Start: start, End: end, Download: true, MaxBytesPerSecond: bytes / 3}, nil)
	t.Logf("capped at %d B/s: %s", bytes/3, took2)
	if took2 < 2500*time.Millisecond || took2 > 15*time.Second {
		t.Errorf("download capped at a third of its size per second took %s, want about 3 s", took2)
	}
	// a=downloadspeed:8 paces 20 s of recording to about 2.5 s.
	_, _, took3 := play(t, f, SessionConfig{Camera: "cam-dl", Start: start, End: end, Download: true, DownloadSpeed: 8}, nil)
	t.Logf("at download speed 8: %s", took3)
	if took3 < 2200*time.Millisecond || took3 > 12*time.Second {
		t.Errorf("download at speed 8 took %s, want about 2.5 s", took3)
	}
	if demux(t, k2.ps(t, testSSRC)).video != 20*fixFPS {
		t.Error("the capped download lost frames")
	}
}

func TestPlaybackSkipsGaps(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	files := ffmpegSegments(t, 20, 4)
	a := f.record(t, "cam-gap", t0, files[:2]) // 0..8 s
	resume := a[len(a)-1].End.Add(20 * time.Second)
	b := f.record(t, "cam-gap", resume, files[2:3]) // 28..32 s
	start, end := a[1].Start.Add(a[1].Fragments[0].Offset), b[0].End
	k, s, took := play(t, f, SessionConfig{Camera: "cam-gap", Start: start, End: end, Download: true}, nil)
	d := demux(t, k.ps(t, testSSRC))
	checkSteps(t, d.dts, "across the gap")
	p := ffprobe(t, k.ps(t, testSSRC))
	recorded := a[len(a)-1].End.Sub(start) + b[0].End.Sub(resume)
	t.Logf("8 s recorded around a 20 s gap, sent in %s: %+v", took, p)
	if want := int(recorded.Seconds() * fixFPS); (p.duration-recorded).Abs() > 2*time.Second/fixFPS || p.frames < want-2 || p.frames > want+2 {
		t.Errorf("ffprobe: %+v, want %s of recording without the gap", p, recorded)
	}
	if s.Stats().Position.Before(resume) {
		t.Errorf("Position %s: the part after the gap was not sent", s.Stats().Position)
	}
}

func TestSessionErrors(t *testing.T) {
	testkit.CheckLeaks(t)
	f := newFixture(t)
	f.record(t, "cam-er", t0, ffmpegSegments(t, 20, 4)[:1])
	ctx := context.Background()
	w := func([]byte) error { return nil }
	if _, err := f.p.NewSession(ctx, SessionConfig{Camera: "cam-er", Start: t0.Add(time.Hour), End: t0.Add(2 * time.Hour), Write: w}); !errors.Is(err, apierr.ErrNotFound) {
		t.Errorf("nothing recorded: %v, want not found", err)
	}
	if _, err := f.p.NewSession(ctx, SessionConfig{Camera: "cam-er", Start: t0, End: t0, Write: w}); !errors.Is(err, apierr.ErrInvalid) {
		t.Errorf("empty range: %v, want invalid", err)
	}
	if _, err := f.p.NewSession(ctx, SessionConfig{Camera: "cam-er", Start: t0, End: t0.Add(time.Second), Write: w, Download: true, DownloadSpeed: 64}); !errors.Is(err, apierr.ErrInvalid) {
		t.Errorf("download speed 64: %v, want invalid", err)
	}
	if _, err := f.p.NewSession(ctx, SessionConfig{Camera: "cam-er", Start: t0, End: t0.Add(time.Second)}); err == nil {
		t.Error("a session without Write was accepted")
	}
	s, err := f.p.NewSession(ctx, SessionConfig{Camera: "cam-er", Start: t0, End: t0.Add(4 * time.Second), Write: w})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Play(16); !errors.Is(err, apierr.ErrInvalid) {
		t.Error("scale 16 was accepted")
	}
	if err := s.Seek(t0.Add(-time.Second)); !errors.Is(err, apierr.ErrInvalid) {
		t.Error("a seek before the range was accepted")
	}
	// A failing sink ends Run with its error; Close ends a running session.
	boom := errors.New("peer gone")
	s2, _ := f.p.NewSession(ctx, SessionConfig{Camera: "cam-er", Start: t0, End: t0.Add(4 * time.Second), Download: true,
		Write: func([]byte) error { return boom }})
	if err := s2.Run(ctx); !errors.Is(err, boom) {
		t.Errorf("Run with a failing sink: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	testkit.WaitFor(t, 10*time.Second, "frames", func() bool { return s.Stats().Frames > 0 })
	s.Close()
	testkit.Returned(t, done, 10*time.Second, "closed session")
	if err := s.Run(ctx); err == nil {
		t.Error("a second Run was accepted")
	}
	// A session never run is closed without leaving its reader behind (CheckLeaks).
	s3, err := f.p.NewSession(ctx, SessionConfig{Camera: "cam-er", Start: t0, End: t0.Add(4 * time.Second), Write: w})
	if err != nil {
		t.Fatal(err)
	}
	s3.Close()
	s3.Close()
	if err := s3.Run(ctx); err == nil {
		t.Error("Run of a closed session was accepted")
	}
}

// checkSteps fails when two successive video DTS are not 0 to 2 frames
// apart (the recording's own steps are 40 ms, and 61 ms where ffmpeg
// stretched a segment's first frame): the timeline is continuous.
func checkSteps(t *testing.T, dts []int64, what string) {
	t.Helper()
	for i := 1; i < len(dts); i++ {
		if step := dts[i] - dts[i-1]; step <= 0 || step > 2*90000/fixFPS {
			t.Fatalf("frame %d: DTS step %d %s, want 1 to 2 frames (3600 to 7200)", i, step, what)
		}
	}
}

func TestDownloadH265(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	segs := f.record(t, "cam-265", t0, encodeSegments(t, "h265", "320x240", "300k", 6, 4))
	start, end := t0, segs[len(segs)-1].End
	k, _, _ := play(t, f, SessionConfig{Camera: "cam-265", Start: start, End: end, Download: true}, nil)
	b := k.ps(t, testSSRC)
	p := ffprobe(t, b)
	d := demux(t, b)
	t.Logf("H.265: %+v", p)
	if p.codec != "hevc" || p.width != 320 || p.height != 240 || !p.firstKey || p.frames != 6*fixFPS {
		t.Errorf("ffprobe: %+v, want hevc 320x240, 150 frames from a keyframe", p)
	}
	if d.keys != 3 || !d.firstKey {
		t.Errorf("%d keyframes demuxed (first %v), want 3", d.keys, d.firstKey)
	}
}

// gateStore holds the read at one position of one object until released,
// so that a test can change a session's speed while it reads there.
type gateStore struct {
	archive.Store
	key      string
	pos      int64
	once     sync.Once
	reached  chan struct{}
	released chan struct{}
}

func (g *gateStore) Get(ctx context.Context, key string, off, length int64) (io.ReadCloser, error) {
	if key == g.key && off == g.pos {
		g.once.Do(func() { close(g.reached) })
		select {
		case <-g.released:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.Store.Get(ctx, key, off, length)
}

func TestPlaybackScaleDownResumesAtKeyframe(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	segs := f.record(t, "cam-sd", t0, ffmpegSegments(t, 20, 4))
	// The session reads the fragment at 1 s (in the middle of the first GOP)
	// while it sends keyframes only, and is slowed to all frames then: the
	// P-frames of that fragment must not be sent, their GOP's earlier frames
	// having been left out.
	mid := segs[0].Fragments[1]
	if mid.Keyframe {
		t.Fatal("the fixture's second fragment starts with a keyframe")
	}
	gate := &gateStore{Store: f.st, key: segs[0].Key, pos: mid.Pos, reached: make(chan struct{}), released: make(chan struct{})}
	rv := review.NewReview(gate, f.ix, nil)
	rv.MaxReadBytes = 1 // a read per fragment
	f.p = New(rv)
	start, end := t0, t0.Add(6*time.Second)
	k, _, _ := play(t, f, SessionConfig{Camera: "cam-sd", Start: start, End: end}, func(s *Session, _ *sink) {
		if err := s.Play(4); err != nil {
			t.Error(err)
		}
		select {
		case <-gate.reached:
		case <-time.After(20 * time.Second):
			t.Error("the session did not read the fragment at 1 s")
		}
		if err := s.Play(2); err != nil { // all frames again
			t.Error(err)
		}
		close(gate.released)
	})
	b := k.ps(t, testSSRC)
	type unit struct {
		key bool
		dts int64
	}
	var us []unit
	dm := &ps.Demuxer{OnUnit: func(u *ps.Unit) {
		if u.Type.IsVideo() {
			us = append(us, unit{u.Keyframe, u.DTS})
		}
	}}
	dm.Write(b)
	dm.Flush()
	pframes := 0
	for i := 1; i < len(us); i++ {
		if us[i].key {
			continue
		}
		pframes++
		if step := us[i].dts - us[i-1].dts; step > 2*90000/fixFPS {
			t.Fatalf("video unit %d: a P-frame %d ticks after the frame before it: frames of its GOP were left out", i, step)
		}
	}
	t.Logf("%d video units, %d P-frames", len(us), pframes)
	if pframes < 3*fixFPS {
		t.Errorf("%d P-frames: the speed did not come down to all frames", pframes)
	}
	if p := ffprobe(t, b); !p.firstKey || p.codec != "h264" {
		t.Errorf("ffprobe: %+v", p)
	}
}

func TestPlaybackSeekPastTheRecordingEnds(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	f.record(t, "cam-se", t0, ffmpegSegments(t, 20, 4)[:2]) // 0..8 s
	start, end := t0, t0.Add(time.Minute)
	k, s, _ := play(t, f, SessionConfig{Camera: "cam-se", Start: start, End: end}, func(s *Session, k *sink) {
		testkit.WaitFor(t, 10*time.Second, "packets", func() bool { return k.count() > 0 })
		if err := s.Seek(t0.Add(30 * time.Second)); err != nil {
			t.Error(err)
		}
	})
	// play checked that OnEnd was called once and Run returned nil.
	if p := s.Stats().Position; p.After(t0.Add(2 * time.Second)) {
		t.Errorf("Position %s: the playback went on after the seek past the recording", p)
	}
	if d := demux(t, k.ps(t, testSSRC)); !d.firstKey {
		t.Error("the playback did not start with a keyframe")
	}
}
