package camsim

import (
	"errors"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
	"github.com/vigil-vms/vigil/internal/testkit"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// startServer starts a server on a free port and closes it when the test ends.
func startServer(t *testing.T, opts Options, prepare ...func(*Server)) *Server {
	t.Helper()
	if opts.Addr == "" {
		opts.Addr = "127.0.0.1:0"
	}
	s, err := New(opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for _, p := range prepare {
		p(s)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// shortLoop makes the video clips loop after n frames, so that a test sees several
// loops (and, since each loop starts with the clip's keyframe, a keyframe every loop)
// in little time.
func shortLoop(n int) func(*Server) {
	return func(s *Server) {
		cut := func(c *clip) *clip {
			cp := *c
			cp.frames = c.frames[:n]
			cp.duration = c.frames[n].pts
			return &cp
		}
		s.clips = &clips{main: cut(s.clips.main), sub: cut(s.clips.sub), audio: s.clips.audio}
	}
}

func mustPlay(t *testing.T, url string, tr gortsplib.Transport) *testReader {
	t.Helper()
	r, err := play(url, tr)
	if err != nil {
		t.Fatalf("play %s over %v: %v", url, tr, err)
	}
	t.Cleanup(r.Close)
	return r
}

// waitKeyframe waits for the reader's first keyframe and returns it.
func waitKeyframe(t *testing.T, r *testReader, timeout time.Duration) videoAU {
	t.Helper()
	var key videoAU
	testkit.WaitFor(t, timeout, "a keyframe", func() bool {
		aus, _, _ := r.snapshot()
		if i := firstKey(aus); i >= 0 {
			key = aus[i]
			return true
		}
		return false
	})
	return key
}

func statusCode(err error) base.StatusCode {
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		return bad.Code
	}
	return 0
}

func TestReadStreams(t *testing.T) {
	s := startServer(t, Options{Count: 2, Audio: true})
	h265 := startServer(t, Options{Count: 1, Codec: CodecH265})
	high := startServer(t, Options{Count: 1, Bitrate: BitrateHigh})
	cases := []struct {
		name          string
		url           string
		transport     gortsplib.Transport
		codec         string
		width, height int
		audio         bool
	}{
		{"h264 main udp", s.URL(1, false), gortsplib.TransportUDP, CodecH264, 1280, 720, true},
		{"h264 main tcp", s.URL(2, false), gortsplib.TransportTCP, CodecH264, 1280, 720, true},
		{"h264 sub udp", s.URL(2, true), gortsplib.TransportUDP, CodecH264, 640, 360, true},
		{"h264 sub tcp", s.URL(1, true), gortsplib.TransportTCP, CodecH264, 640, 360, true},
		{"h265 main tcp", h265.URL(1, false), gortsplib.TransportTCP, CodecH265, 1280, 720, false},
		{"h265 sub udp", h265.URL(1, true), gortsplib.TransportUDP, CodecH265, 640, 360, false},
		{"h264 high main udp", high.URL(1, false), gortsplib.TransportUDP, CodecH264, 1280, 720, false},
		{"h264 high sub tcp", high.URL(1, true), gortsplib.TransportTCP, CodecH264, 640, 360, false},
	}
	// All readers play at once: the keyframe wait (up to 2 s) is shared.
	readers := make([]*testReader, len(cases))
	for i, c := range cases {
		readers[i] = mustPlay(t, c.url, c.transport)
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := readers[i]
			if r.codec != c.codec {
				t.Fatalf("codec %s, want %s", r.codec, c.codec)
			}
			key := waitKeyframe(t, r, 5*time.Second)
			w, h, err := spsSize(c.codec, key.au)
			if err != nil {
				t.Fatalf("keyframe SPS: %v", err)
			}
			if w != c.width || h != c.height {
				t.Errorf("SPS size %dx%d, want %dx%d", w, h, c.width, c.height)
			}
			hasAudio := len(r.desc.Medias) == 2
			if hasAudio != c.audio {
				t.Errorf("audio media present %v, want %v", hasAudio, c.audio)
			}
			if c.audio {
				testkit.WaitFor(t, 2*time.Second, "audio packets", func() bool {
					_, _, a := r.snapshot()
					return a > 0
				})
			}
			r.mu.Lock()
			decErr, gaps := r.decodeError, r.seqGaps
			r.mu.Unlock()
			if decErr != nil {
				t.Errorf("rtp decode: %v", decErr)
			}
			if gaps != 0 {
				t.Errorf("%d sequence number gaps", gaps)
			}
		})
	}
}

// TestPace reads for two seconds after the first keyframe: about 50 frames arrive, one
// every 40 ms of wall clock, with RTP timestamps 3600 apart (25 fps at 90 kHz), the next
// keyframe 2 s after the first, and the main stream's bitrate as Options.Bitrate says.
func TestPace(t *testing.T) {
	for _, c := range []struct {
		bitrate string
		kbps    float64 // of the H.264 NAL units, within 15 %
	}{
		{BitrateNormal, 1100},
		{BitrateHigh, 2000},
	} {
		t.Run(c.bitrate, func(t *testing.T) {
			s := startServer(t, Options{Bitrate: c.bitrate})
			r := mustPlay(t, s.URL(1, false), gortsplib.TransportTCP)
			key := waitKeyframe(t, r, 5*time.Second)
			end := key.at.Add(2 * time.Second)
			testkit.WaitFor(t, 4*time.Second, "two seconds of frames", func() bool {
				aus, _, _ := r.snapshot()
				return aus[len(aus)-1].at.After(end)
			})
			aus, _, _ := r.snapshot()
			aus = aus[firstKey(aus):]
			n, size := 0, 0
			for i, a := range aus {
				if a.at.After(end) {
					break
				}
				n++
				if i > 0 && a.ts-aus[i-1].ts != 3600 {
					t.Errorf("frame %d: rtp timestamp step %d, want 3600", i, a.ts-aus[i-1].ts)
				}
			}
			if n < 45 || n > 55 {
				t.Errorf("%d frames in 2 s, want about 50", n)
			}
			if len(aus) <= 50 || !aus[50].key {
				t.Fatalf("frame 50 after a keyframe is not a keyframe: GOP is not 2 s")
			}
			// one whole GOP, by RTP time: 2 s of media
			for _, a := range aus[:50] {
				for _, nalu := range a.au {
					size += len(nalu)
				}
			}
			kbps := float64(size*8) / 2 / 1000
			t.Logf("%s: %.0f kbit/s of H.264 over one GOP", c.bitrate, kbps)
			if kbps < c.kbps*0.85 || kbps > c.kbps*1.15 {
				t.Errorf("bitrate %.0f kbit/s, want %.0f within 15 %%", kbps, c.kbps)
			}
		})
	}
}

// TestLoopTimestamps loops a 10-frame clip several times and checks that RTP
// timestamps and sequence numbers keep increasing across loop boundaries.
func TestLoopTimestamps(t *testing.T) {
	s := startServer(t, Options{}, shortLoop(10))
	for _, tr := range []gortsplib.Transport{gortsplib.TransportUDP, gortsplib.TransportTCP} {
		t.Run(tr.String(), func(t *testing.T) {
			r := mustPlay(t, s.URL(1, false), tr)
			testkit.WaitFor(t, 3*time.Second, "25 frames", func() bool {
				aus, _, _ := r.snapshot()
				return len(aus) >= 25
			})
			aus, _, _ := r.snapshot()
			keys := 0
			for i := 1; i < len(aus); i++ {
				if d := aus[i].ts - aus[i-1].ts; d != 3600 {
					t.Errorf("frame %d: rtp timestamp step %d, want 3600", i, d)
				}
				if aus[i].key {
					keys++
				}
			}
			if keys < 2 {
				t.Errorf("%d keyframes in %d frames of a 10-frame loop", keys, len(aus))
			}
			r.mu.Lock()
			gaps := r.seqGaps
			r.mu.Unlock()
			if gaps != 0 {
				t.Errorf("%d sequence number gaps", gaps)
			}
		})
	}
}

func TestNotFound(t *testing.T) {
	s := startServer(t, Options{Count: 2})
	for _, path := range []string{"cam0", "cam3", "cam1/main", "cam1/sub/x", "", "camx"} {
		_, err := play("rtsp://"+s.Addr()+"/"+path, gortsplib.TransportTCP)
		if code := statusCode(err); code != base.StatusNotFound {
			t.Errorf("%q: error %v, want 404", path, err)
		}
	}
}

func TestAuth(t *testing.T) {
	s := startServer(t, Options{Username: "admin", Password: "s3cret"})
	_, err := play(s.URL(1, false), gortsplib.TransportTCP)
	if code := statusCode(err); code != base.StatusUnauthorized {
		t.Fatalf("without credentials: error %v, want 401", err)
	}
	_, err = play("rtsp://admin:wrong@"+s.Addr()+"/cam1", gortsplib.TransportTCP)
	if code := statusCode(err); code != base.StatusUnauthorized {
		t.Fatalf("wrong password: error %v, want 401", err)
	}
	r := mustPlay(t, "rtsp://admin:s3cret@"+s.Addr()+"/cam1/sub", gortsplib.TransportUDP)
	testkit.WaitFor(t, 3*time.Second, "frames with credentials", func() bool { return r.packets() > 0 })
}

func TestStall(t *testing.T) {
	s := startServer(t, Options{Stall: true}, shortLoop(10))
	r := mustPlay(t, s.URL(1, false), gortsplib.TransportTCP)
	if got := s.Sessions(); got != 1 {
		t.Fatalf("%d sessions while stalled, want 1", got)
	}
	time.Sleep(500 * time.Millisecond) // nothing may arrive in this window
	if n := r.packets(); n != 0 {
		t.Fatalf("%d packets while stalled from the start", n)
	}
	s.SetStall(false)
	testkit.WaitFor(t, 2*time.Second, "media after the stall ends", func() bool { return r.packets() > 0 })

	s.SetStall(true)
	// packets already queued may still arrive; then the flow must stop
	var last int
	testkit.WaitFor(t, 2*time.Second, "the flow to stop", func() bool {
		n := r.packets()
		stopped := n == last && n > 0
		last = n
		if !stopped {
			time.Sleep(200 * time.Millisecond)
		}
		return stopped
	})
	time.Sleep(400 * time.Millisecond)
	if n := r.packets(); n != last {
		t.Errorf("%d packets arrived while stalled", n-last)
	}
	if got := s.Sessions(); got != 1 {
		t.Errorf("%d sessions while stalled, want 1", got)
	}
	s.SetStall(false)
	testkit.WaitFor(t, 2*time.Second, "media after the second stall", func() bool { return r.packets() > last })
}

func TestDropEvery(t *testing.T) {
	s := startServer(t, Options{DropEvery: 300 * time.Millisecond})
	for _, tr := range []gortsplib.Transport{gortsplib.TransportUDP, gortsplib.TransportTCP} {
		r := mustPlay(t, s.URL(1, false), tr)
		done := make(chan error, 1)
		go func() { done <- r.c.Wait() }()
		select {
		case err := <-done:
			if err == nil {
				t.Errorf("%v: client ended without an error", tr)
			}
		case <-time.After(3 * time.Second):
			t.Fatalf("%v: session not dropped within 3 s", tr)
		}
	}
	testkit.WaitFor(t, 2*time.Second, "no sessions", func() bool { return s.Sessions() == 0 })
}

func TestDropConnections(t *testing.T) {
	s := startServer(t, Options{})
	r := mustPlay(t, s.URL(1, true), gortsplib.TransportTCP)
	s.DropConnections()
	done := make(chan error, 1)
	go func() { done <- r.c.Wait() }()
	select {
	case <-done:
	case <-time.After(3 * time.Second):
		t.Fatal("session not dropped")
	}
	// a reader may connect again
	r2 := mustPlay(t, s.URL(1, true), gortsplib.TransportTCP)
	testkit.WaitFor(t, 2*time.Second, "media after reconnecting", func() bool { return r2.packets() > 0 })
}

func TestWithholdKeyframes(t *testing.T) {
	t.Run("at start", func(t *testing.T) {
		// a keyframe every 0.4 s, none in the first second
		s := startServer(t, Options{WithholdKeyframes: time.Second}, shortLoop(10))
		r := mustPlay(t, s.URL(1, false), gortsplib.TransportTCP)
		key := waitKeyframe(t, r, 3*time.Second)
		aus, _, _ := r.snapshot()
		if firstKey(aus) == 0 {
			t.Errorf("the first frame received is a keyframe")
		}
		if !key.at.After(s.startedAt.Add(900 * time.Millisecond)) {
			t.Errorf("keyframe %v after start, want at least 1 s", key.at.Sub(s.startedAt))
		}
	})
	t.Run("at runtime", func(t *testing.T) {
		s := startServer(t, Options{}, shortLoop(10))
		s.SetWithholdKeyframes(true)
		r := mustPlay(t, s.URL(1, false), gortsplib.TransportUDP)
		testkit.WaitFor(t, 3*time.Second, "30 frames", func() bool {
			aus, _, _ := r.snapshot()
			return len(aus) >= 30
		})
		aus, _, _ := r.snapshot()
		if i := firstKey(aus); i >= 0 {
			t.Fatalf("keyframe %d received while withheld", i)
		}
		s.SetWithholdKeyframes(false)
		waitKeyframe(t, r, 2*time.Second)
	})
}

func TestDisableUDP(t *testing.T) {
	s := startServer(t, Options{DisableUDP: true})
	if _, err := play(s.URL(1, false), gortsplib.TransportUDP); err == nil {
		t.Fatal("UDP reader played on a TCP-only server")
	}
	r := mustPlay(t, s.URL(1, false), gortsplib.TransportTCP)
	testkit.WaitFor(t, 2*time.Second, "media over TCP", func() bool { return r.packets() > 0 })
}

func TestSilentUDP(t *testing.T) {
	s := startServer(t, Options{SilentUDP: true})
	udp := mustPlay(t, s.URL(1, false), gortsplib.TransportUDP)
	tcp := mustPlay(t, s.URL(1, false), gortsplib.TransportTCP)
	testkit.WaitFor(t, 2*time.Second, "media over TCP", func() bool { return tcp.packets() > 0 })
	time.Sleep(300 * time.Millisecond) // nothing may arrive over UDP in this window
	if n := udp.packets(); n != 0 {
		t.Errorf("%d packets over silent UDP", n)
	}
	if got := s.Sessions(); got != 2 {
		t.Errorf("%d sessions, want 2", got)
	}
}

func TestManyReadersShareStream(t *testing.T) {
	s := startServer(t, Options{}, shortLoop(10))
	var rs []*testReader
	for i := range 6 {
		tr := gortsplib.TransportTCP
		if i%2 == 0 {
			tr = gortsplib.TransportUDP
		}
		rs = append(rs, mustPlay(t, s.URL(1, false), tr))
	}
	testkit.WaitFor(t, 3*time.Second, "10 frames at every reader", func() bool {
		for _, r := range rs {
			if aus, _, _ := r.snapshot(); len(aus) < 10 {
				return false
			}
		}
		return true
	})
	// every reader sees the same timestamps for the same frames
	ref, _, _ := rs[0].snapshot()
	seen := make(map[uint32]bool)
	for _, a := range ref {
		seen[a.ts] = true
	}
	for i, r := range rs[1:] {
		aus, _, _ := r.snapshot()
		common := 0
		for _, a := range aus {
			if seen[a.ts] {
				common++
			}
		}
		if common < 5 {
			t.Errorf("reader %d shares only %d frame timestamps with reader 0", i+1, common)
		}
	}
}

func TestServerLifecycle(t *testing.T) {
	s, err := New(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	s.Close() // never started: no-op
	s, err = New(Options{Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		t.Error("second Start succeeded")
	}
	// the port is taken: a second server on it fails to start, cleanly
	s2, err := New(Options{Addr: s.Addr()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s2.Start(); err == nil {
		t.Error("second server started on a taken port")
	}
	s2.Close() // after a failed Start: no-op
	s.Close()
	s.Close()
	if err := s.Start(); err == nil {
		t.Error("Start after Close succeeded")
	}
}

func TestNewValidates(t *testing.T) {
	cases := []struct {
		name string
		opts Options
	}{
		{"bad addr", Options{Addr: "nope"}},
		{"negative count", Options{Count: -1}},
		{"huge count", Options{Count: maxCount + 1}},
		{"unknown codec", Options{Codec: "vp9"}},
		{"unknown bitrate", Options{Bitrate: "ultra"}},
		{"high bitrate h265", Options{Codec: CodecH265, Bitrate: BitrateHigh}},
		{"password without user", Options{Password: "x"}},
		{"negative drop", Options{DropEvery: -time.Second}},
		{"negative jitter", Options{Jitter: -time.Second}},
		{"negative sender report interval", Options{SenderReportEvery: -time.Second}},
		{"negative withhold", Options{WithholdKeyframes: -time.Second}},
		{"odd udp port", Options{UDPRTPAddress: "127.0.0.1:5001"}},
		{"udp port and no udp", Options{UDPRTPAddress: "127.0.0.1:5000", DisableUDP: true}},
		{"bad udp address", Options{UDPRTPAddress: "x"}},
		{"silent udp and no udp", Options{SilentUDP: true, DisableUDP: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, err := New(c.opts); err == nil {
				t.Error("New accepted invalid options")
			}
		})
	}
	s, err := New(Options{Codec: "H265"})
	if err != nil {
		t.Fatalf("upper-case codec: %v", err)
	}
	if s.opts.Codec != CodecH265 || s.opts.Count != 1 || s.opts.Addr != DefaultAddr {
		t.Errorf("defaults not applied: %+v", s.opts)
	}
}

// TestNTPTime checks the RFC 3550 format of camsim's own sender reports:
// seconds since 1900, and the fraction of a second in units of 2^-32.
func TestNTPTime(t *testing.T) {
	at := time.Date(2026, 11, 29, 12, 0, 0, 250_000_000, time.UTC)
	v := ntpTime(at)
	if sec := int64(v>>32) - 2208988800; sec != at.Unix() {
		t.Errorf("seconds %d, want %d", sec, at.Unix())
	}
	if frac := v & 0xffffffff; frac != 1<<30 {
		t.Errorf("fraction %#x, want a quarter (%#x)", frac, 1<<30)
	}
}

// TestKeyframeOnPlay: a reader that plays in the middle of a GOP gets a keyframe at
// once, and the RTP timestamps go on in steps of one frame.
func TestKeyframeOnPlay(t *testing.T) {
	s := startServer(t, Options{KeyframeOnPlay: true})
	s.mu.Lock()
	midGOP := s.startedAt.Add(time.Second) // keyframes come every 2 s from the start
	s.mu.Unlock()
	time.Sleep(time.Until(midGOP))
	played := time.Now()
	r := mustPlay(t, s.URL(1, false), gortsplib.TransportTCP)
	testkit.WaitFor(t, 3*time.Second, "five frames", func() bool { aus, _, _ := r.snapshot(); return len(aus) >= 5 })
	aus, _, _ := r.snapshot()
	k := firstKey(aus)
	if k < 0 || k > 2 || aus[k].at.Sub(played) > 500*time.Millisecond {
		t.Fatalf("first keyframe is frame %d, %v after PLAY", k, aus[max(k, 0)].at.Sub(played))
	}
	for i := 1; i < len(aus); i++ {
		if d := aus[i].ts - aus[i-1].ts; d != 3600 {
			t.Errorf("frame %d: rtp timestamp step %d, want 3600", i, d)
		}
	}
}
