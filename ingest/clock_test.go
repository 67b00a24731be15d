package ingest

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
	"go.uber.org/goleak"
)

// received is a unit and when the subscriber got it.
type received struct {
	u  *Unit
	at time.Time
}

// collect reads the video units of a stream for d, in its own goroutine.
func collect(sub *Subscription, d time.Duration, out *[]received, wg *sync.WaitGroup) {
	defer wg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	for {
		u, _, err := sub.Next(ctx)
		if err != nil {
			return
		}
		if u.Track.Video {
			*out = append(*out, received{u, time.Now()})
		}
	}
}

// TestCamsimWrongClock: cameras whose clocks are 8 hours fast, a year slow, or
// right but with sender reports that jitter by ±1.9 s (as GStreamer's RTSP
// server does) are filed by the server's clock, with smooth unit times; status
// reports the wrong clocks.
func TestCamsimWrongClock(t *testing.T) {
	defer goleak.VerifyNone(t)
	const year = 365 * 24 * time.Hour
	cases := []struct {
		id     string
		opts   camsim.Options
		skew   float64 // seconds, 0: not reported
		smooth bool
	}{
		{"fast", camsim.Options{ClockOffset: 8 * time.Hour}, 8 * 3600, false},
		{"lastyear", camsim.Options{ClockOffset: -year}, -year.Seconds(), false},
		{"jitter", camsim.Options{Jitter: 1900 * time.Millisecond}, 0, true},
	}
	m := NewFleet(fastOptions(t))
	var sims []*camsim.Server
	for _, tc := range cases {
		o := tc.opts
		o.DisableUDP = true
		o.SenderReportEvery = 300 * time.Millisecond
		sim := simcam.Start(t, o)
		defer sim.Close()
		sims = append(sims, sim)
		m.Set(Camera{ID: tc.id, MainURL: sim.URL(1, false), Transport: "tcp", Enabled: true})
	}
	stop := runManager(t, m)
	defer stop()
	got := make([][]received, len(cases))
	var wg sync.WaitGroup
	for i, tc := range cases {
		sub := m.Stream(tc.id, Main).Subscribe(SubscribeOptions{Kind: Viewer, QueueLen: 1024})
		defer sub.Close()
		wg.Add(1)
		go collect(sub, 6*time.Second, &got[i], &wg)
	}
	wg.Wait()

	for i, tc := range cases {
		units := got[i]
		if len(units) < 75 {
			t.Errorf("%s: %d video units in 6 s", tc.id, len(units))
			continue
		}
		for j, r := range units {
			if d := r.at.Sub(r.u.Time); d < -time.Second || d > 2*time.Second {
				t.Fatalf("%s: unit %d filed at %s, received at %s (%v apart)", tc.id, j, r.u.Time.Format(time.RFC3339Nano), r.at.Format(time.RFC3339Nano), d)
			}
			if j == 0 || !tc.smooth {
				continue
			}
			prev := units[j-1].u
			dt, dpts := r.u.Time.Sub(prev.Time), r.u.PTS-prev.PTS
			if dt <= 0 || dt-dpts > 100*time.Millisecond || dpts-dt > 100*time.Millisecond {
				t.Fatalf("%s: unit %d: time advanced %v for a PTS step of %v", tc.id, j, dt, dpts)
			}
		}
		lo, hi := time.Hour, -time.Hour
		for _, r := range units {
			lo, hi = min(lo, r.at.Sub(r.u.Time)), max(hi, r.at.Sub(r.u.Time))
		}
		t.Logf("%s: received %v to %v after the time filed", tc.id, lo, hi)
		st, _ := m.Status(tc.id)
		t.Logf("%s: %d units, clockSkew %v, lastError %q", tc.id, len(units), st.ClockSkew, st.LastError)
		if st.State != StateOnline {
			t.Errorf("%s: state %s", tc.id, st.State)
		}
		if tc.skew == 0 {
			if st.ClockSkew != 0 || st.LastError != "" {
				t.Errorf("%s: skew %v reported (%q), want none", tc.id, st.ClockSkew, st.LastError)
			}
			continue
		}
		if d := st.ClockSkew - tc.skew; d < -1 || d > 1 {
			t.Errorf("%s: clockSkew %v, want %v ± 1", tc.id, st.ClockSkew, tc.skew)
		}
		if !strings.Contains(st.LastError, "clock") {
			t.Errorf("%s: lastError %q does not name the clock", tc.id, st.LastError)
		}
	}
	stop()
	for _, tc := range cases {
		m.Remove(tc.id)
	}
}

// clockCase is a simulated camera for the wall clock: units every interval
// on its RTP clock, which runs drift faster than real time, each stamped up to
// ±stamp off its capture time; each arrives after a random delay of up to jitter.
type clockCase struct {
	seed     uint64
	interval time.Duration
	jitter   time.Duration
	drift    float64 // relative: 0.001 is 1000 ppm fast
	units    int
	stamp    time.Duration // less than interval/2
}

var clockCases = []clockCase{
	{1, 40 * time.Millisecond, 0, 0, 3000, 0},
	{2, 40 * time.Millisecond, 100 * time.Millisecond, 0, 3000, 0},
	{3, 40 * time.Millisecond, 300 * time.Millisecond, 0.002, 3000, 0},
	{4, 40 * time.Millisecond, 100 * time.Millisecond, -0.004, 5000, 0},
	{5, 21 * time.Millisecond, 50 * time.Millisecond, 0.0001, 5000, 0},
	{6, 100 * time.Millisecond, 500 * time.Millisecond, -0.001, 2000, 0},
	{7, 40 * time.Millisecond, 100 * time.Millisecond, 0.001, 3000, 15 * time.Millisecond},
}

// checkWallClock runs a clockCase through a wallClock and checks that unit
// times increase, advance as the media time does within the slew, and stay
// near the capture times.
func checkWallClock(t *testing.T, c clockCase) {
	r := rand.New(rand.NewPCG(c.seed, 7))
	var wc wallClock
	start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	var prevT time.Time
	var prevRel time.Duration
	var settled time.Duration // after this media time, the clock must have converged
	if c.drift != 0 || c.jitter > 0 || c.stamp > 0 {
		// the anchor may start late by jitter and stamp; it converges at 1/clockSlew
		settled = (c.jitter+c.stamp)*clockSlew + 2*clockWindow
	}
	for i := range c.units {
		rel := time.Duration(i) * c.interval
		capture := start.Add(time.Duration(float64(rel) / (1 + c.drift)))
		if c.stamp > 0 {
			rel += time.Duration(r.Int64N(int64(2*c.stamp)+1)) - c.stamp
		}
		var delay time.Duration
		if c.jitter > 0 {
			delay = time.Duration(r.Int64N(int64(c.jitter) + 1))
		}
		arrival := capture.Add(delay)
		got, _ := wc.at(rel, arrival)
		if got.Sub(arrival) > c.jitter+2*c.stamp+clockTolerance {
			t.Fatalf("unit %d filed at %v, %v after it arrived", i, got, got.Sub(arrival))
		}
		if d := arrival.Sub(got); d > clockResync {
			t.Fatalf("unit %d filed %v before it arrived", i, d)
		}
		if i > 0 {
			dt, drel := got.Sub(prevT), rel-prevRel
			if dt <= 0 {
				t.Fatalf("unit %d: time went from %v to %v", i, prevT, got)
			}
			if e := dt - drel; e > drel/clockSlew+time.Microsecond || -e > drel/clockSlew+time.Microsecond {
				t.Fatalf("unit %d: time advanced %v for a media step of %v", i, dt, drel)
			}
		}
		if rel > settled {
			// close to the capture time: the error of a window's earliest
			// arrival, the tolerance, and the drift of a window
			bound := c.jitter/4 + 2*c.stamp + clockTolerance + time.Duration(2*float64(clockWindow)*abs(c.drift)) + 20*time.Millisecond
			if e := got.Sub(capture); e > bound || -e > bound {
				t.Fatalf("unit %d at media time %v: filed %v from its capture time (bound %v)", i, rel, e, bound)
			}
		}
		prevT, prevRel = got, rel
	}
	if wc.resyncs != 0 {
		t.Errorf("%d resyncs", wc.resyncs)
	}
}

func abs(f float64) float64 {
	if f < 0 {
		return -f
	}
	return f
}

func TestWallClock(t *testing.T) {
	for _, c := range clockCases {
		t.Run("", func(t *testing.T) { checkWallClock(t, c) })
	}
}

// TestWallClockJumps: timestamps that jump far forward or back re-anchor the
// clock (a jump back of less than clockLate after a window), so units stay
// filed near their arrival.
func TestWallClockJumps(t *testing.T) {
	for _, tc := range []struct {
		jump, limit time.Duration
	}{
		{time.Hour, clockTolerance},
		{-time.Hour, clockTolerance},
		{-10 * time.Second, 10*time.Second + clockTolerance},
		{6 * time.Second, clockTolerance},
	} {
		var wc wallClock
		start := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
		for i := range 1000 {
			arrival := start.Add(time.Duration(i) * 40 * time.Millisecond)
			rel := time.Duration(i) * 40 * time.Millisecond
			limit := clockTolerance
			if i >= 300 {
				rel += tc.jump
				limit = tc.limit
			}
			if i >= 300+int(2*clockWindow/(40*time.Millisecond))+1 { // within two windows
				limit = clockTolerance
			}
			got, _ := wc.at(rel, arrival)
			if d := got.Sub(arrival); d > limit || -d > limit {
				t.Fatalf("jump %v: unit %d filed %v from its arrival", tc.jump, i, d)
			}
		}
		if wc.resyncs != 1 {
			t.Errorf("jump %v: %d resyncs, want 1", tc.jump, wc.resyncs)
		}
	}
}

// FuzzWallClock checks the wall clock's properties for random jitter and drift.
func FuzzWallClock(f *testing.F) {
	for _, c := range clockCases {
		f.Add(c.seed, int64(c.interval), int64(c.jitter), int64(c.drift*1e6), c.units, int64(c.stamp))
	}
	f.Fuzz(func(t *testing.T, seed uint64, interval, jitter, ppm int64, units int, stamp int64) {
		c := clockCase{
			seed:     seed,
			interval: 10*time.Millisecond + time.Duration(uint64(interval)%uint64(190*time.Millisecond)),
			jitter:   time.Duration(uint64(jitter) % uint64(500*time.Millisecond)),
			drift:    float64(ppm%5000) / 1e6,
			units:    1 + int(uint(units)%4000),
		}
		c.stamp = time.Duration(uint64(stamp) % uint64(c.interval/2))
		checkWallClock(t, c)
	})
}

func TestSkewText(t *testing.T) {
	for _, tc := range []struct {
		skew time.Duration
		want string
	}{
		{0, ""},
		{4 * time.Second, ""},
		{-4 * time.Second, ""},
		{8 * time.Hour, "8h0m0s ahead of"},
		{-30 * time.Second, "30s behind"},
	} {
		got := skewText(tc.skew)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("skewText(%v) = %q, want %q", tc.skew, got, tc.want)
		}
	}
}

// TestNTPToTime reads RFC 3550 NTP times: the fraction is in units of 2^-32 s
// (gortsplib v4.16.2 reads it as nanoseconds).
func TestNTPToTime(t *testing.T) {
	const epoch = 2208988800
	at := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		frac uint64
		want time.Duration
	}{{0, 0}, {1 << 31, 500 * time.Millisecond}, {3 << 30, 750 * time.Millisecond}, {0xffffffff, time.Second - time.Nanosecond}} {
		v := uint64(at.Unix()+epoch)<<32 | tc.frac
		if got := ntpToTime(v); !got.Equal(at.Add(tc.want)) {
			t.Errorf("fraction %#x: %v, want %v", tc.frac, got.UTC(), at.Add(tc.want))
		}
	}
}

// TestTimestampJump: a camera whose RTP timestamps jump an hour ahead in a
// session has its units filed at the server's time, and PTS goes on by the
// server's clock instead of jumping an hour.
func TestTimestampJump(t *testing.T) {
	h264f := &format.H264{PayloadTyp: 96, SPS: testSPS720, PPS: testPPS, PacketizationMode: 1}
	fc := newFakeClient(&description.Session{Medias: []*description.Media{
		{Type: description.MediaTypeVideo, Formats: []format.Format{h264f}},
	}})
	stream := NewStream("fake/main")
	p := newPuller(pullerConfig{camera: "fake", kind: Main, url: "rtsp://cam/x", stream: stream,
		log: testkit.Log(t), stall: time.Hour, readTimeout: time.Second,
		dial: func(*base.URL, string, time.Duration, *slog.Logger) (rtspClient, error) { return fc, nil }})
	sub := stream.Subscribe(SubscribeOptions{QueueLen: 64})
	defer sub.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { _, err := p.session(ctx); done <- err }()
	defer func() { cancel(); <-done; fc.Close() }()
	testkit.WaitFor(t, 5*time.Second, "callbacks", func() bool {
		fc.mu.Lock()
		defer fc.mu.Unlock()
		return len(fc.cbs) == 1
	})
	venc, _ := h264f.CreateEncoder()
	send := func(ts uint32, key bool) {
		nalu := fakeSlice(0x41, 100)
		if key {
			nalu = fakeSlice(0x65, 300)
		}
		pkts, err := venc.Encode([][]byte{nalu})
		if err != nil {
			t.Fatal(err)
		}
		for _, pk := range pkts {
			pk.Timestamp = ts
		}
		fc.feed(h264f, pkts)
	}
	const hour = 3600 * 90000
	ts := uint32(1000)
	for i := range 10 {
		send(ts, i == 0)
		ts += 3600
	}
	ts += hour
	for range 5 {
		send(ts, false)
		ts += 3600
	}
	ctxNext, cancelNext := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelNext()
	var prev *Unit
	for i := range 15 {
		u, _, err := sub.Next(ctxNext)
		if err != nil {
			t.Fatal(err)
		}
		if d := time.Since(u.Time); d < -time.Second || d > time.Second {
			t.Errorf("unit %d filed %v from now", i, -d)
		}
		if prev != nil {
			if d := u.PTS - prev.PTS; d <= 0 || d > time.Second {
				t.Errorf("unit %d: PTS step %v", i, d)
			}
		}
		prev = u
	}
}
