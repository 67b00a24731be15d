package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"

	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// psClip is one loop of a device's media: the units of a PS file made by an
// independent muxer (gb28181/ps/testdata), with G.711 audio added where asked.
type psClip struct {
	video, audio ps.StreamType
	units        []ps.Unit // sorted by PTS, starting at 0, payloads owned
	length       int64     // the loop's length in 90 kHz ticks
}

// loadClip demuxes a PS fixture of gb28181/ps. g711, when not 0, adds 20 ms
// G.711 frames of that type for the clip's length.
func loadClip(t testing.TB, file string, g711 ps.StreamType) *psClip {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "gb28181", "ps", "testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	c := &psClip{}
	d := &ps.Demuxer{OnUnit: func(u *ps.Unit) {
		switch {
		case u.Type.IsVideo():
			c.video = u.Type
		case u.Type == ps.TypeAAC:
			c.audio = u.Type
		default:
			return
		}
		v := *u
		v.Payload = bytes.Clone(u.Payload)
		c.units = append(c.units, v)
	}}
	d.Write(b)
	d.Flush()
	var frames int64
	first := c.units[0].PTS
	for _, u := range c.units {
		first = min(first, u.PTS)
		if u.Type.IsVideo() {
			frames++
		}
	}
	for i := range c.units {
		c.units[i].PTS -= first
		c.units[i].DTS -= first
	}
	c.length = frames * 3600 // 25 fps
	if g711 != 0 {
		c.audio = g711
		for pts := int64(0); pts < c.length; pts += 1800 {
			frame := make([]byte, 160)
			for i := range frame {
				frame[i] = byte(pts/1800) + byte(i) // any bytes are G.711 samples
			}
			c.units = append(c.units, ps.Unit{StreamID: 0xC0, Type: g711, PTS: pts, DTS: pts, Payload: frame})
		}
	}
	slices.SortStableFunc(c.units, func(a, b ps.Unit) int { return int(a.PTS - b.PTS) })
	return c
}

// psDevice is a Source that plays like a GB/T 28181 device behind the
// gateway: it muxes its clip into MPEG-PS (ps.Muxer), cuts the PS into
// RTP-sized payloads, demuxes them (ps.Demuxer) and writes the units to the
// sink, in real time by their PTS. The clip loops with its PTS going on; the
// PTS starts half a second before the 33-bit wrap.
type psDevice struct {
	clip *psClip
	// faults
	fail          []error       // returned by the next plays, in order
	stallAfter    int           // stop sending (but stay) after this many units; 0: never
	noKeyframes   bool          // send only the parameter sets of keyframes
	noParams      bool          // strip the parameter sets from the keyframes
	audioAfter    int64         // send audio only from this PTS of the first loop on
	silent        bool          // send nothing, until the session ends
	startDelay    time.Duration // wait before sending (a gateway trying transports)
	keepLastSink  bool
	startedPlays  chan int // receives the number of each Play as it starts (when not nil)
	mu            sync.Mutex
	plays, active int
	lastSink      *Sink
	starts        []time.Time
}

func (d *psDevice) counts() (plays, active int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.plays, d.active
}

func codecOf(t ps.StreamType) string {
	switch t {
	case ps.TypeH264:
		return CodecH264
	case ps.TypeH265:
		return CodecH265
	case ps.TypeAAC:
		return CodecAAC
	case ps.TypeG711A:
		return CodecPCMA
	case ps.TypeG711U:
		return CodecPCMU
	}
	return t.String()
}

func (d *psDevice) Play(ctx context.Context, cam Camera, kind StreamKind, sink *Sink) error {
	d.mu.Lock()
	d.plays++
	n := d.plays
	d.active++
	d.starts = append(d.starts, time.Now())
	d.lastSink = sink
	var fail error
	if len(d.fail) > 0 {
		fail, d.fail = d.fail[0], d.fail[1:]
	}
	d.mu.Unlock()
	defer func() {
		d.mu.Lock()
		d.active--
		d.mu.Unlock()
	}()
	if d.startedPlays != nil {
		d.startedPlays <- n
	}
	if cam.GB28181 == nil || kind != Main {
		return fmt.Errorf("test device: asked for %v stream of camera %+v", kind, cam)
	}
	if fail != nil {
		return fail
	}
	if d.silent {
		<-ctx.Done()
		return nil
	}
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(d.startDelay):
	}
	return d.stream(ctx, sink)
}

func (d *psDevice) stream(ctx context.Context, sink *Sink) error {
	const wrap = 1 << 33
	base := int64(wrap - 45000)
	mux := &ps.Muxer{VideoType: d.clip.video, AudioType: d.clip.audio}
	var werr error
	dem := &ps.Demuxer{OnUnit: func(u *ps.Unit) {
		if werr != nil {
			return
		}
		if u.Type.IsVideo() {
			werr = sink.WriteVideo(codecOf(u.Type), u.PTS, u.Payload, u.Keyframe)
		} else {
			werr = sink.WriteAudio(codecOf(u.Type), u.PTS, u.Payload)
		}
	}}
	start := time.Now()
	var buf []byte
	timer := time.NewTimer(0)
	defer timer.Stop()
	for i := 0; ; i++ {
		u := d.clip.units[i%len(d.clip.units)]
		loop := int64(i / len(d.clip.units))
		at := u.PTS + loop*d.clip.length
		if d.stallAfter > 0 && i >= d.stallAfter {
			<-ctx.Done()
			return nil
		}
		if !u.Type.IsVideo() && at < d.audioAfter {
			continue
		}
		if u.Type.IsVideo() && u.Keyframe && (d.noParams || d.noKeyframes) {
			u.Payload = filterNALUs(u.Type, u.Payload, d.noKeyframes)
		}
		timer.Reset(time.Until(start.Add(time.Duration(at) * time.Second / 90000)))
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		pts := (base + at) % wrap
		var err error
		buf, err = mux.AppendUnit(buf[:0], &ps.Unit{Type: u.Type, PTS: pts, DTS: pts, Keyframe: u.Keyframe, Payload: u.Payload})
		if err != nil {
			return err
		}
		for len(buf) > 0 {
			n := min(len(buf), 1400)
			dem.Write(buf[:n])
			buf = buf[n:]
		}
		if u.Type.IsVideo() {
			dem.Flush() // the RTP marker bit
		}
		if errors.Is(werr, ErrSinkClosed) {
			return nil
		}
		if werr != nil {
			return werr
		}
	}
}

// filterNALUs keeps the parameter sets (VPS, SPS, PPS) of an Annex-B picture
// when params is true, else the other NAL units.
func filterNALUs(t ps.StreamType, annexB []byte, params bool) []byte {
	codec := codecOf(t)
	var au h264.AnnexB
	if err := au.Unmarshal(annexB); err != nil {
		panic(err)
	}
	var out []byte
	for _, n := range au {
		if isParamSet(codec, naluType(codec, n)) == params {
			out = append(append(out, 0, 0, 0, 1), n...)
		}
	}
	return out
}

func gbCamera(id string) Camera {
	return Camera{ID: id, Name: "river gate", Enabled: true, Source: SourceGB28181,
		GB28181: &GBChannel{Device: "34020000001320000001", Channel: "34020000001310000001"}}
}

func pushOptions(t *testing.T, src Source) FleetOptions {
	o := fastOptions(t)
	o.Sources = map[string]Source{SourceGB28181: src}
	o.PushLinger = 300 * time.Millisecond
	return o
}

func waitState(t *testing.T, m *Fleet, id string, want State) Status {
	t.Helper()
	var st Status
	testkit.WaitFor(t, 15*time.Second, "state "+string(want), func() bool {
		st, _ = m.Status(id)
		return st.State == want
	})
	return st
}

// readPushed reads n units and checks them: a keyframe first, keyframes
// with their parameter sets in front, video PTS increasing after after,
// unit times near now. It returns the last video PTS and the audio units.
func readPushed(t *testing.T, sub *Subscription, n int, after time.Duration) (last time.Duration, audio int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	last = after
	keys := 0
	for i := range n {
		u, gap, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("unit %d: %v", i, err)
		}
		if gap {
			t.Fatalf("gap at unit %d", i)
		}
		if i == 0 && (!u.Keyframe || !u.Track.Video) {
			t.Fatalf("first unit is not a video keyframe")
		}
		if d := time.Since(u.Time); d < -time.Second || d > 3*time.Second {
			t.Fatalf("unit %d: time %v is %v from now", i, u.Time, d)
		}
		if !u.Track.Video {
			audio++
			if len(u.Data) != 1 || len(u.Data[0]) == 0 {
				t.Fatalf("audio unit %d: %d frames", i, len(u.Data))
			}
			continue
		}
		if u.PTS <= last {
			t.Fatalf("video unit %d: PTS %v after %v", i, u.PTS, last)
		}
		last = u.PTS
		if u.Keyframe {
			keys++
			want := []int{h264NALSPS, h264NALPPS}
			if u.Track.Codec == CodecH265 {
				want = []int{h265NALVPS, h265NALSPS, h265NALPPS}
			}
			for j, typ := range want {
				if got := naluType(u.Track.Codec, u.Data[j]); got != typ {
					t.Fatalf("keyframe %d: NAL unit %d has type %d, want %d", i, j, got, typ)
				}
			}
		}
	}
	if keys == 0 {
		t.Fatal("no keyframe")
	}
	return last, audio
}

// TestPushedStreams plays pushed cameras on demand: PS from two independent
// muxers' files, remuxed and demuxed as a device's stream is, into hub units
// and tracks; the stream is idle without demand, plays for a subscriber,
// stops PushLinger after it left, and plays again with the same tracks and
// its PTS going on.
func TestPushedStreams(t *testing.T) {
	for _, tc := range []struct {
		name, file  string
		g711        ps.StreamType
		video       string
		audio       Track
		width, high int
	}{
		{"h264-aac-gstreamer", "gst_h264_aac.ps", 0, CodecH264,
			Track{Codec: CodecAAC, ClockRate: 16000, SampleRate: 16000, ChannelCount: 1, AACConfig: []byte{0x14, 0x08}}, 320, 240},
		{"h265-g711a-ffmpeg", "ff_h265.ps", ps.TypeG711A, CodecH265,
			Track{Codec: CodecPCMA, ClockRate: 8000, SampleRate: 8000, ChannelCount: 1}, 320, 240},
		{"h264-g711u-ffmpeg", "ff_h264_mp2.ps", ps.TypeG711U, CodecH264,
			Track{Codec: CodecPCMU, ClockRate: 8000, SampleRate: 8000, ChannelCount: 1}, 320, 240},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			dev := &psDevice{clip: loadClip(t, tc.file, tc.g711)}
			m, stop := startFleet(t, pushOptions(t, dev), gbCamera("gb-1"))
			defer stop()
			if st, _ := m.Status("gb-1"); st.State != StateIdle {
				t.Fatalf("state %q before anything needs the stream, want idle", st.State)
			}
			st := m.Stream("gb-1", Main)
			sub := st.Subscribe(SubscribeOptions{Kind: Recorder, QueueLen: 1024})
			last, audio := readPushed(t, sub, 90, -1)
			if audio == 0 {
				t.Error("no audio units")
			}
			media := st.Media()
			if len(media.Tracks) != 2 {
				t.Fatalf("%d tracks, want video and audio", len(media.Tracks))
			}
			v, a := media.Tracks[0], media.Tracks[1]
			if !v.Video || v.Codec != tc.video || v.Width != tc.width || v.Height != tc.high || v.SPS == nil || v.PPS == nil ||
				(tc.video == CodecH265) != (v.VPS != nil) {
				t.Errorf("video track %+v", v)
			}
			a.Index = 0
			if !sameTracks([]*Track{a}, []*Track{&tc.audio}) {
				t.Errorf("audio track %+v, want %+v", a, tc.audio)
			}
			status := waitState(t, m, "gb-1", StateOnline)
			if status.Video == nil || status.Video.Codec != tc.video || status.Video.Width != tc.width ||
				status.Audio == nil || status.Audio.Codec != tc.audio.Codec {
				t.Errorf("status %+v video %+v audio %+v", status, status.Video, status.Audio)
			}

			// nothing needs it: idle after PushLinger, the device's session ended
			sub.Close()
			waitState(t, m, "gb-1", StateIdle)
			if plays, active := dev.counts(); plays != 1 || active != 0 {
				t.Fatalf("%d plays, %d active after idle; want 1, 0", plays, active)
			}

			// needed again: a new session, same tracks, PTS going on
			sub = st.Subscribe(SubscribeOptions{Kind: Viewer, FromGOP: true})
			defer sub.Close()
			readPushed(t, sub, 30, last)
			if st.Media() != media {
				t.Errorf("second session published new tracks (generation %d)", st.Media().Generation)
			}
			if plays, _ := dev.counts(); plays != 2 {
				t.Errorf("%d plays, want 2", plays)
			}
		})
	}
}

// TestPushedWant: Stream.Want is demand without a subscription; a Want within
// PushLinger of the last release keeps the session.
func TestPushedWant(t *testing.T) {
	testkit.CheckLeaks(t)
	dev := &psDevice{clip: loadClip(t, "gst_h264_aac.ps", 0), startedPlays: make(chan int, 10)}
	opts := pushOptions(t, dev)
	opts.PushLinger = time.Second
	m, stop := startFleet(t, opts, gbCamera("gb-1"))
	defer stop()
	st := m.Stream("gb-1", Main)
	release := st.Want()
	select {
	case <-st.Published():
	case <-time.After(15 * time.Second):
		t.Fatal("no tracks published while wanted")
	}
	release()
	release() // twice is harmless
	time.Sleep(100 * time.Millisecond)
	release2 := st.Want()
	if s, _ := m.Status("gb-1"); s.State != StateOnline {
		t.Errorf("state %q within the linger", s.State)
	}
	release2()
	waitState(t, m, "gb-1", StateIdle)
	if plays, active := dev.counts(); plays != 1 || active != 0 {
		t.Errorf("%d plays, %d active; want 1, 0", plays, active)
	}
}

// gbError stands for a typed error of the gateway.
type gbError struct{ code int }

func (e *gbError) Error() string {
	return fmt.Sprintf("device 34020000001320000001 refused the INVITE (SIP %d Busy Here)", e.code)
}

// TestPushedErrorRetries: a failed Play is the stream's lastError, with the
// Source's sentence and error; the next attempts follow the backoff.
func TestPushedErrorRetries(t *testing.T) {
	testkit.CheckLeaks(t)
	fail := &gbError{code: 486}
	dev := &psDevice{clip: loadClip(t, "gst_h264_aac.ps", 0), fail: []error{fail, fail, fail}}
	opts := pushOptions(t, dev)
	opts.BackoffMin, opts.BackoffMax = 200*time.Millisecond, 400*time.Millisecond
	m, stop := startFleet(t, opts, gbCamera("gb-1"))
	defer stop()
	sub := m.Stream("gb-1", Main).Subscribe(SubscribeOptions{Kind: Viewer})
	defer sub.Close()
	st := waitState(t, m, "gb-1", StateOffline)
	if st.LastError != fail.Error() {
		t.Errorf("lastError %q, want %q", st.LastError, fail.Error())
	}
	var ge *gbError
	if !errors.Is(st.Err, ErrSource) || !errors.As(st.Err, &ge) || ge.code != 486 {
		t.Errorf("error %#v is not ErrSource with the source's error", st.Err)
	}
	readPushed(t, sub, 10, -1)
	st = waitState(t, m, "gb-1", StateOnline)
	if st.Reconnects != 3 || st.LastError != "" {
		t.Errorf("online after %d reconnects with lastError %q; want 3 and none", st.Reconnects, st.LastError)
	}
	dev.mu.Lock()
	starts := dev.starts
	dev.mu.Unlock()
	for i := 1; i < len(starts); i++ {
		// backoff 200 ms, 400 ms, 400 ms, each ±20 %
		if d := starts[i].Sub(starts[i-1]); d < 160*time.Millisecond {
			t.Errorf("attempt %d only %v after the one before", i+1, d)
		}
	}
}

// TestPushedRemoveWhilePlaying: Remove ends the device's session and closes the stream.
func TestPushedRemoveWhilePlaying(t *testing.T) {
	testkit.CheckLeaks(t)
	dev := &psDevice{clip: loadClip(t, "ff_h265.ps", ps.TypeG711A)}
	m, stop := startFleet(t, pushOptions(t, dev), gbCamera("gb-1"))
	defer stop()
	sub := m.Stream("gb-1", Main).Subscribe(SubscribeOptions{Kind: Viewer})
	defer sub.Close()
	readPushed(t, sub, 5, -1)
	m.Remove("gb-1")
	if _, active := dev.counts(); active != 0 {
		t.Errorf("device session still active after Remove")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for {
		_, _, err := sub.Next(ctx)
		if errors.Is(err, ErrStreamClosed) {
			break
		}
		if err != nil {
			t.Fatalf("after Remove: %v, want ErrStreamClosed", err)
		}
	}
}

// TestPushedFaults: what a device does wrong ends in the stream's lastError.
func TestPushedFaults(t *testing.T) {
	for _, tc := range []struct {
		name string
		dev  *psDevice
		kind error
		msg  string
	}{
		{"stall", &psDevice{stallAfter: 30}, ErrStalled, "the camera stopped sending video"},
		{"no-keyframe", &psDevice{noKeyframes: true}, ErrNoKeyframe, "the camera sent video but no keyframe in 1s"},
		{"no-parameter-sets", &psDevice{noParams: true}, ErrBadMedia,
			"the camera's video cannot be decoded: its parameter sets (SPS/PPS) are missing or invalid (no SPS received)"},
		{"silent", &psDevice{silent: true}, ErrStalled, "the device's stream did not start in 3s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testkit.CheckLeaks(t)
			dev := tc.dev
			dev.clip = loadClip(t, "gst_h264_aac.ps", 0)
			opts := pushOptions(t, dev)
			opts.StallTimeout = time.Second
			// offline long enough to be seen before the retry
			opts.BackoffMin, opts.BackoffMax = 3*time.Second, 3*time.Second
			m, stop := startFleet(t, opts, gbCamera("gb-1"))
			defer stop()
			sub := m.Stream("gb-1", Main).Subscribe(SubscribeOptions{Kind: Viewer})
			defer sub.Close()
			st := waitState(t, m, "gb-1", StateOffline)
			if !errors.Is(st.Err, tc.kind) || !bytes.HasPrefix([]byte(st.LastError), []byte(tc.msg)) {
				t.Errorf("lastError %q (%v), want %q (%v)", st.LastError, st.Err, tc.msg, tc.kind)
			}
			testkit.WaitFor(t, 10*time.Second, "a retry", func() bool {
				plays, _ := dev.counts()
				return plays >= 2
			})
		})
	}
}

// TestPushedSlowStart: a Source may take longer than StallTimeout to deliver
// its first unit (a gateway trying one transport after another).
func TestPushedSlowStart(t *testing.T) {
	testkit.CheckLeaks(t)
	dev := &psDevice{clip: loadClip(t, "gst_h264_aac.ps", 0), startDelay: 1500 * time.Millisecond}
	opts := pushOptions(t, dev)
	opts.StallTimeout = time.Second
	m, stop := startFleet(t, opts, gbCamera("gb-1"))
	defer stop()
	sub := m.Stream("gb-1", Main).Subscribe(SubscribeOptions{Kind: Viewer})
	defer sub.Close()
	readPushed(t, sub, 10, -1)
	if st := waitState(t, m, "gb-1", StateOnline); st.Reconnects != 0 {
		t.Errorf("%d reconnects: the slow start was taken for a failure", st.Reconnects)
	}
}

// TestPushedWithoutSource: a pushed camera nothing plays says so.
func TestPushedWithoutSource(t *testing.T) {
	testkit.CheckLeaks(t)
	m, stop := startFleet(t, fastOptions(t), gbCamera("gb-1"))
	defer stop()
	sub := m.Stream("gb-1", Main).Subscribe(SubscribeOptions{Kind: Viewer})
	defer sub.Close()
	st := waitState(t, m, "gb-1", StateOffline)
	if want := `nothing plays "gb28181" cameras: the gb28181 service is not enabled`; st.LastError != want {
		t.Errorf("lastError %q, want %q", st.LastError, want)
	}
	if s, _ := m.Status("gb-1"); s.Sub != nil {
		t.Error("a pushed camera has a sub-stream")
	}
}

// TestPushedLateAudio: audio that first arrives after the first keyframe
// republishes the tracks at the next keyframe; the next session publishes it
// at once.
func TestPushedLateAudio(t *testing.T) {
	testkit.CheckLeaks(t)
	dev := &psDevice{clip: loadClip(t, "gst_h264_aac.ps", 0), audioAfter: 45000}
	m, stop := startFleet(t, pushOptions(t, dev), gbCamera("gb-1"))
	defer stop()
	st := m.Stream("gb-1", Main)
	sub := st.Subscribe(SubscribeOptions{Kind: Recorder, QueueLen: 1024})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var gens []int
	for len(gens) == 0 || gens[len(gens)-1] < 2 {
		u, _, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("read: %v (generations %v)", err, gens)
		}
		if len(gens) == 0 || gens[len(gens)-1] != u.Media.Generation {
			gens = append(gens, u.Media.Generation)
			if n := len(u.Media.Tracks); n != u.Media.Generation {
				t.Fatalf("generation %d has %d tracks", u.Media.Generation, n)
			}
			if !u.Keyframe || !u.Track.Video {
				t.Fatalf("generation %d starts with a unit that is no video keyframe", u.Media.Generation)
			}
		}
	}
	sub.Close()
	waitState(t, m, "gb-1", StateIdle)
	// the audio comes as late again: known from the first session, it is
	// published with the first keyframe, and the tracks stay
	media := st.Media()
	sub = st.Subscribe(SubscribeOptions{Kind: Viewer})
	defer sub.Close()
	if _, audio := readPushed(t, sub, 60, -1); audio == 0 {
		t.Error("no audio in the second session")
	}
	if st.Media() != media {
		t.Errorf("the second session changed the tracks to generation %d", st.Media().Generation)
	}
}

// TestSinkRefusals: a Sink refuses what it cannot carry, and writes after
// its session ended.
func TestSinkRefusals(t *testing.T) {
	testkit.CheckLeaks(t)
	dev := &psDevice{clip: loadClip(t, "gst_h264_aac.ps", 0)}
	m, stop := startFleet(t, pushOptions(t, dev), gbCamera("gb-1"))
	defer stop()
	sub := m.Stream("gb-1", Main).Subscribe(SubscribeOptions{Kind: Viewer})
	readPushed(t, sub, 3, -1)
	dev.mu.Lock()
	sink := dev.lastSink
	dev.mu.Unlock()
	sub.Close()
	waitState(t, m, "gb-1", StateIdle)
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"video codec", sink.WriteVideo("MPEG2", 0, []byte{0, 0, 1, 0xb3}, true), `ingest: unsupported video codec "MPEG2" (want H264 or H265)`},
		{"audio codec", sink.WriteAudio("MP2", 0, []byte{0xff, 0xfd}), `ingest: unsupported audio codec "MP2" (want AAC, PCMA or PCMU)`},
		{"bad ADTS", sink.WriteAudio(CodecAAC, 0, []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}), "ingest: AAC audio is not valid ADTS: invalid syncword"},
		{"codec change", sink.WriteVideo(CodecH265, 0, []byte{0, 0, 1, 0x40, 1}, true), "ingest: the video codec changed from H264 to H265 within a session"},
		{"ended", sink.WriteAudio(CodecPCMA, 0, []byte{0xd5}), ErrSinkClosed.Error()},
	} {
		if tc.err == nil || tc.err.Error() != tc.want {
			t.Errorf("%s: %v, want %q", tc.name, tc.err, tc.want)
		}
	}
}

func TestSinkTicks(t *testing.T) {
	const wrap = 1 << 33
	for _, tc := range []struct {
		name string
		pts  []int64
		want []int64
	}{
		{"steady", []int64{1000, 4600, 8200}, []int64{0, 3600, 7200}},
		{"wrap", []int64{wrap - 3600, 0, 3600}, []int64{0, 3600, 7200}},
		{"back a little", []int64{90000, 93600, 91800, 97200}, []int64{0, 3600, 1800, 7200}},
		{"back across the wrap", []int64{1800, wrap - 1800, 5400}, []int64{0, -3600, 3600}},
		{"unwrapped already", []int64{wrap - 3600, wrap, wrap + 3600}, []int64{0, 3600, 7200}},
	} {
		var s Sink
		for i, p := range tc.pts {
			if got := s.ticks(p); got != tc.want[i] {
				t.Errorf("%s: ticks(%d) = %d, want %d", tc.name, p, got, tc.want[i])
			}
		}
	}
}

func TestStreamWantDemand(t *testing.T) {
	s := NewStream("x")
	ok, changed := s.demand()
	if ok {
		t.Fatal("a new stream is demanded")
	}
	release := s.Want()
	select {
	case <-changed:
	default:
		t.Fatal("Want did not signal")
	}
	ok, changed = s.demand()
	sub := s.Subscribe(SubscribeOptions{})
	release()
	select {
	case <-changed:
		t.Fatal("signalled while still demanded by a subscriber")
	default:
	}
	if !ok {
		t.Fatal("not demanded while wanted")
	}
	sub.Close()
	select {
	case <-changed:
	default:
		t.Fatal("the last subscriber leaving did not signal")
	}
	if ok, _ := s.demand(); ok {
		t.Fatal("demanded after all left")
	}
}

// FuzzSink writes what a device may send into a Sink: whatever the bytes,
// no panic, and every unit written is well formed.
func FuzzSink(f *testing.F) {
	adts, err := mpeg4audio.ADTSPackets{
		{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 16000, ChannelCount: 1, AU: []byte{1, 2, 3}},
		{Type: mpeg4audio.ObjectTypeAACLC, SampleRate: 16000, ChannelCount: 1, AU: []byte{4, 5}},
	}.Marshal()
	if err != nil {
		f.Fatal(err)
	}
	start := []byte{0, 0, 1}
	for i, au := range accessUnitSeeds {
		f.Add(uint8(i%2), int64(i*3600), append(bytes.Clone(start), au...))
	}
	f.Add(uint8(2), int64(1<<33-1), adts)
	f.Add(uint8(3), int64(0), []byte{0xd5, 0xd5})
	f.Add(uint8(4), int64(-1), []byte{0xff})
	f.Fuzz(func(t *testing.T, kind uint8, pts int64, data []byte) {
		stream := NewStream("fuzz")
		p := newPuller(pullerConfig{stream: stream, log: testkit.Log(t), pushed: true})
		sink := &Sink{w: &sessionWriter{p: p, ctx: context.Background(), pushed: true}}
		sub := stream.Subscribe(SubscribeOptions{QueueLen: 64})
		defer sub.Close()
		// a keyframe with parameter sets first, so that what follows is written
		key := append(bytes.Clone(start), accessUnitSeeds[0]...)
		if err := sink.WriteVideo(CodecH264, 0, key, true); err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			switch kind % 5 {
			case 0:
				_ = sink.WriteVideo(CodecH264, pts+int64(i), data, false)
			case 1:
				_ = sink.WriteVideo(CodecH265, pts+int64(i), data, false)
			case 2:
				_ = sink.WriteAudio(CodecAAC, pts+int64(i), data)
			case 3:
				_ = sink.WriteAudio(CodecPCMA, pts+int64(i), data)
			default:
				_ = sink.WriteAudio(CodecPCMU, pts+int64(i), data)
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		for pending(sub) {
			u, _, err := sub.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if u.Media == nil || u.Track == nil || u.Track != u.Media.Tracks[u.Track.Index] || len(u.Data) == 0 {
				t.Fatalf("malformed unit %+v", u)
			}
			for _, n := range u.Data {
				if len(n) == 0 {
					t.Fatal("empty NAL unit or audio frame")
				}
			}
		}
	})
}

// BenchmarkSink measures writing a device's units into the hub through a
// Sink (copy, NAL split, parameter sets, clock), one subscriber draining:
//
//	go test -run XXX -bench Sink -benchmem ./ingest
func BenchmarkSink(b *testing.B) {
	clip := loadClip(b, "gst_h264_aac.ps", 0)
	stream := NewStream("bench")
	p := newPuller(pullerConfig{stream: stream, log: testkit.Log(b), pushed: true})
	sink := &Sink{w: &sessionWriter{p: p, ctx: context.Background(), pushed: true}}
	sub := stream.Subscribe(SubscribeOptions{Kind: Recorder, QueueLen: 4096})
	ctx, cancel := context.WithCancel(context.Background())
	drained := make(chan error, 1)
	go func() { drained <- sub.Drain(ctx) }()
	defer func() {
		cancel()
		<-drained
	}()
	var bytes int64
	for _, u := range clip.units {
		bytes += int64(len(u.Payload))
	}
	b.SetBytes(bytes / int64(len(clip.units)))
	b.ResetTimer()
	for i := range b.N {
		u := clip.units[i%len(clip.units)]
		pts := u.PTS + int64(i/len(clip.units))*clip.length
		var err error
		if u.Type.IsVideo() {
			err = sink.WriteVideo(codecOf(u.Type), pts, u.Payload, u.Keyframe)
		} else {
			err = sink.WriteAudio(codecOf(u.Type), pts, u.Payload)
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}
