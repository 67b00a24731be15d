package ingest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-vms/vigil/internal/testkit"
)

var (
	hubVideo = &Track{Video: true, Codec: CodecH264, ClockRate: 90000, SPS: testSPS720, PPS: testPPS, Width: 1280, Height: 720}
	hubAudio = &Track{Codec: CodecAAC, ClockRate: 48000, SampleRate: 48000, ChannelCount: 1}
)

// hubStream returns a stream with video and audio tracks published.
func hubStream() (*Stream, *Media) {
	s := NewStream("test/main")
	v, a := *hubVideo, *hubAudio
	return s, s.SetTracks([]*Track{&v, &a})
}

// unit makes video unit i of a stream with a keyframe every gop units.
func unit(m *Media, i, gop int) *Unit {
	key := i%gop == 0
	data := [][]byte{{0x41, byte(i)}}
	if key {
		data = [][]byte{testSPS720, testPPS, {0x65, byte(i)}}
	}
	return &Unit{Media: m, Track: m.Tracks[0], PTS: time.Duration(i) * 40 * time.Millisecond, Data: data, Keyframe: key}
}

func audioUnit(m *Media, i int) *Unit {
	return &Unit{Media: m, Track: m.Tracks[1], PTS: time.Duration(i) * 21 * time.Millisecond, Data: [][]byte{{0x21}}}
}

func next(t *testing.T, sub *Subscription) (*Unit, bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u, gap, err := sub.Next(ctx)
	if err != nil {
		t.Fatalf("Next: %v", err)
	}
	return u, gap
}

// pending reports whether Next would return a unit now.
func pending(sub *Subscription) bool {
	sub.mu.Lock()
	defer sub.mu.Unlock()
	return sub.n > 0
}

func TestHubStartsAtKeyframe(t *testing.T) {
	s, m := hubStream()
	s.Write(unit(m, 1, 50)) // P-frames and audio before a keyframe
	sub := s.Subscribe(SubscribeOptions{})
	defer sub.Close()
	s.Write(unit(m, 2, 50))
	s.Write(audioUnit(m, 1))
	if pending(sub) {
		t.Fatal("a new subscriber got units before a keyframe")
	}
	s.Write(unit(m, 50, 50))
	s.Write(audioUnit(m, 2))
	u, gap := next(t, sub)
	if !u.Keyframe || gap {
		t.Fatalf("first unit keyframe=%v gap=%v", u.Keyframe, gap)
	}
	if u, _ := next(t, sub); u.Track.Video {
		t.Fatal("audio after the keyframe missing")
	}
	if st := s.Stats(); st.Dropped != 0 || sub.Dropped() != 0 {
		t.Errorf("waiting for the first keyframe counted as drops: %d %d", st.Dropped, sub.Dropped())
	}
}

func TestHubFromGOP(t *testing.T) {
	s, m := hubStream()
	for i := 1; i <= 60; i++ { // keyframe at 50, then 51..60
		s.Write(unit(m, i, 50))
	}
	sub := s.Subscribe(SubscribeOptions{FromGOP: true})
	defer sub.Close()
	u, gap := next(t, sub)
	if !u.Keyframe || gap || u.PTS != 50*40*time.Millisecond {
		t.Fatalf("FromGOP did not start at the last keyframe: %+v gap=%v", u, gap)
	}
	for i := 51; i <= 60; i++ {
		if u, _ := next(t, sub); u.PTS != time.Duration(i)*40*time.Millisecond {
			t.Fatalf("unit %d: PTS %v", i, u.PTS)
		}
	}
	s.Write(unit(m, 61, 50))
	if u, _ := next(t, sub); u.PTS != 61*40*time.Millisecond {
		t.Fatalf("live unit after the GOP: %v", u.PTS)
	}

	// a GOP longer than the queue: start at the next keyframe instead
	small := s.Subscribe(SubscribeOptions{FromGOP: true, QueueLen: 4})
	defer small.Close()
	if pending(small) {
		t.Fatal("GOP replayed into a queue too small for it")
	}
	s.Write(unit(m, 100, 50))
	if u, gap := next(t, small); !u.Keyframe || gap {
		t.Fatalf("small queue: keyframe=%v gap=%v", u.Keyframe, gap)
	}
}

func TestHubGOPCacheLimit(t *testing.T) {
	s, m := hubStream()
	s.Write(unit(m, 0, 1<<30))
	for i := 1; i <= maxGOPUnits; i++ {
		s.Write(unit(m, i, 1<<30))
	}
	sub := s.Subscribe(SubscribeOptions{FromGOP: true, QueueLen: maxGOPUnits + 10})
	defer sub.Close()
	if pending(sub) {
		t.Fatal("a GOP cut by the cache limit was replayed")
	}
}

// TestHubSlowSubscribers writes fast with a stalled, a slow and a fast
// subscriber: the writer and the fast one are never held back, the others
// lose units and resume at a keyframe with gap=true. Run it with -race.
func TestHubSlowSubscribers(t *testing.T) {
	defer goleak.VerifyNone(t)
	const total, gop = 20000, 50
	const written = total + total/10 + 1 // video, audio, a last keyframe
	s, m := hubStream()
	fast := s.Subscribe(SubscribeOptions{Kind: Viewer, QueueLen: total * 2})
	stalled := s.Subscribe(SubscribeOptions{Kind: Viewer, QueueLen: 16})
	slow := s.Subscribe(SubscribeOptions{Kind: Recorder, QueueLen: 64})
	if st := s.Stats(); st.Viewers != 2 || st.Subscribers != 3 {
		t.Fatalf("stats %+v", st)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var fastGot, slowGot, slowGaps int
	var fastErr, slowErr error
	wg.Add(2)
	go func() {
		defer wg.Done()
		last := uint64(0)
		for fastGot < written {
			u, gap, err := fast.Next(ctx)
			if err != nil {
				fastErr = err
				return
			}
			if gap || u.Seq != last+1 {
				fastErr = errors.New("the fast subscriber lost units")
				return
			}
			last = u.Seq
			fastGot++
		}
	}()
	go func() {
		defer wg.Done()
		last := uint64(0)
		for {
			u, gap, err := slow.Next(ctx)
			if err != nil {
				if !errors.Is(err, ErrStreamClosed) {
					slowErr = err
				}
				return
			}
			if gap {
				slowGaps++
				if !u.Keyframe || !u.Track.Video {
					slowErr = errors.New("after a gap the slow subscriber did not resume at a keyframe")
					return
				}
			}
			if u.Seq <= last {
				slowErr = errors.New("units out of order")
				return
			}
			last = u.Seq
			slowGot++
			if slowGot%8 == 0 {
				time.Sleep(time.Millisecond)
			}
		}
	}()

	for i := range total {
		s.Write(unit(m, i, gop))
		if i%10 == 0 {
			s.Write(audioUnit(m, i))
		}
	}
	s.Write(unit(m, total, gop))
	// the stalled subscriber never read: the writer still finished
	u, gap := next(t, stalled)
	if !gap || !u.Keyframe {
		t.Errorf("stalled subscriber: first unit gap=%v keyframe=%v, want a keyframe after a gap", gap, u.Keyframe)
	}
	if stalled.Dropped() == 0 {
		t.Error("stalled subscriber dropped nothing")
	}
	// let the fast reader finish, then close the stream to end the slow one
	testkit.WaitFor(t, 10*time.Second, "fast subscriber done", func() bool { return !pending(fast) })
	s.Close()
	wg.Wait()
	if fastErr != nil {
		t.Fatalf("fast: %v (got %d)", fastErr, fastGot)
	}
	if slowErr != nil {
		t.Fatalf("slow: %v", slowErr)
	}
	if fast.Dropped() != 0 {
		t.Errorf("fast subscriber dropped %d", fast.Dropped())
	}
	if want := stalled.Dropped() + slow.Dropped(); s.Stats().Dropped != want {
		t.Errorf("stream dropped %d, subscribers %d", s.Stats().Dropped, want)
	}
	t.Logf("slow: got %d, %d gaps, dropped %d; stalled dropped %d", slowGot, slowGaps, slow.Dropped(), stalled.Dropped())
	if slowGaps > 0 && slow.Dropped() == 0 {
		t.Error("gaps without drops")
	}
	// every unit is accounted for: delivered or dropped (the first wait for a keyframe excluded)
	if uint64(slowGot)+slow.Dropped() != written {
		t.Errorf("slow: %d delivered + %d dropped != %d written", slowGot, slow.Dropped(), written)
	}
}

func TestHubCloseWakesNext(t *testing.T) {
	defer goleak.VerifyNone(t)
	s, _ := hubStream()
	sub := s.Subscribe(SubscribeOptions{})
	errc := make(chan error, 1)
	go func() {
		_, _, err := sub.Next(context.Background())
		errc <- err
	}()
	s.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrStreamClosed) {
			t.Fatalf("Next after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not wake Next")
	}
	// subscribing to a closed stream, writing to it, closing twice: no effect, no panic
	late := s.Subscribe(SubscribeOptions{})
	if _, _, err := late.Next(context.Background()); !errors.Is(err, ErrStreamClosed) {
		t.Errorf("late subscriber: %v", err)
	}
	_, m := hubStream()
	s.Write(unit(m, 0, 1))
	s.Close()
	sub.Close()
	late.Close()
}

func TestHubNextContextAndUnsubscribe(t *testing.T) {
	defer goleak.VerifyNone(t)
	s, m := hubStream()
	sub := s.Subscribe(SubscribeOptions{Kind: Viewer})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := sub.Next(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Next with an ending ctx: %v", err)
	}
	errc := make(chan error, 1)
	go func() {
		_, _, err := sub.Next(context.Background())
		errc <- err
	}()
	sub.Close()
	if err := <-errc; !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("Next after Subscription.Close: %v", err)
	}
	sub.Close()
	if st := s.Stats(); st.Viewers != 0 || st.Subscribers != 0 {
		t.Errorf("stats after unsubscribe %+v", st)
	}
	s.Write(unit(m, 0, 1)) // no subscriber left: fine
}

func TestHubSetTracks(t *testing.T) {
	s := NewStream("x")
	if s.Media() != nil {
		t.Fatal("media before SetTracks")
	}
	v1, a1 := *hubVideo, *hubAudio
	m1 := s.SetTracks([]*Track{&v1, &a1})
	if m1.Generation != 1 || m1.Video() != &v1 || m1.Audio() != &a1 || a1.Index != 1 {
		t.Fatalf("first media %+v", m1)
	}
	s.Write(unit(m1, 0, 50))
	// the same tracks again (a reconnect): same Media, GOP kept
	v2, a2 := *hubVideo, *hubAudio
	if m := s.SetTracks([]*Track{&v2, &a2}); m != m1 {
		t.Fatal("same tracks gave a new Media")
	}
	sub := s.Subscribe(SubscribeOptions{FromGOP: true})
	defer sub.Close()
	if !pending(sub) {
		t.Error("GOP lost across SetTracks with the same tracks")
	}
	// a different SPS: new generation, GOP cleared
	v3 := *hubVideo
	v3.Width, v3.SPS = 640, []byte{0x67, 1}
	m3 := s.SetTracks([]*Track{&v3})
	if m3 == m1 || m3.Generation != 2 || m3.Audio() != nil {
		t.Fatalf("changed tracks: %+v", m3)
	}
	sub2 := s.Subscribe(SubscribeOptions{FromGOP: true})
	defer sub2.Close()
	if pending(sub2) {
		t.Error("GOP of the old generation replayed")
	}
	if !s.Stats().Online {
		t.Error("not online after SetTracks")
	}
	s.SetOffline()
	if s.Stats().Online {
		t.Error("online after SetOffline")
	}
}

func TestHubStatWindow(t *testing.T) {
	var w statWindow
	start := time.Unix(1_000_000, 500_000_000)
	if fps, kbps := w.rates(start); fps != 0 || kbps != 0 {
		t.Fatalf("empty window: %v %v", fps, kbps)
	}
	// 25 frames of 5000 bytes per second for 10 s
	for i := range 250 {
		w.add(start.Add(time.Duration(i)*40*time.Millisecond), 5000)
	}
	fps, kbps := w.rates(start.Add(10 * time.Second))
	if fps < 24.9 || fps > 25.1 || kbps != 1000 {
		t.Errorf("rates after 10 s: %v fps %v kbps, want 25 and 1000", fps, kbps)
	}
	// 2.4 s after the start: only complete seconds count
	var w2 statWindow
	for i := range 62 {
		w2.add(start.Add(time.Duration(i)*40*time.Millisecond), 5000)
	}
	if fps, _ := w2.rates(start.Add(2400 * time.Millisecond)); fps < 24.9 || fps > 25.1 {
		t.Errorf("rates after 2.4 s: %v fps, want 25", fps)
	}
	// 20 s of silence: zero
	if fps, kbps := w.rates(start.Add(30 * time.Second)); fps != 0 || kbps != 0 {
		t.Errorf("after silence: %v %v", fps, kbps)
	}
}

// BenchmarkHubFanOut measures Write with 100 subscribers, each read by its
// own goroutine: ns and allocations per unit written (the Unit itself is the
// one allocation of the caller).
func BenchmarkHubFanOut(b *testing.B) {
	for _, subs := range []int{1, 100} {
		b.Run(itoa(subs)+"subs", func(b *testing.B) {
			s, m := hubStream()
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			for range subs {
				sub := s.Subscribe(SubscribeOptions{Kind: Viewer, QueueLen: 1024})
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer sub.Close()
					_ = sub.Drain(ctx)
				}()
			}
			data := [][]byte{{0x41, 1, 2, 3}}
			key := [][]byte{testSPS720, testPPS, {0x65, 1, 2, 3}}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				u := &Unit{Media: m, Track: m.Tracks[0], PTS: time.Duration(i), Data: data}
				if i%50 == 0 {
					u.Data, u.Keyframe = key, true
				}
				s.Write(u)
			}
			b.StopTimer()
			b.ReportMetric(float64(s.Stats().Dropped)/float64(b.N), "drops/unit")
			cancel()
			s.Close()
			wg.Wait()
		})
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// A consumer waiting for a camera's first tracks is woken by the hub, not by polling.
func TestHubPublished(t *testing.T) {
	s := NewStream("test/main")
	select {
	case <-s.Published():
		t.Fatal("Published closed before any tracks")
	default:
	}
	s.SetOffline()
	woken := make(chan *Media, 1)
	go func() {
		<-s.Published()
		woken <- s.Media()
	}()
	v := *hubVideo
	m := s.SetTracks([]*Track{&v})
	select {
	case got := <-woken:
		if got != m {
			t.Fatalf("Media after Published = %p, want %p", got, m)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Published not closed by SetTracks")
	}
	// a new generation and going offline again keep it closed (and do not close it twice)
	v2 := *hubVideo
	v2.Width = 640
	s.SetTracks([]*Track{&v2})
	s.SetOffline()
	<-s.Published()
}

// TestHubBacklog: a subscription's backlog is the presentation-time span of
// the units waiting for it, and shrinks as it reads.
func TestHubBacklog(t *testing.T) {
	s, m := hubStream()
	sub := s.Subscribe(SubscribeOptions{QueueLen: 64})
	defer sub.Close()
	if b := sub.Backlog(); b != 0 {
		t.Fatalf("empty queue: backlog %v", b)
	}
	for i := range 26 { // a keyframe, then 25 pictures 40 ms apart
		s.Write(unit(m, i, 50))
	}
	if b := sub.Backlog(); b != time.Second {
		t.Fatalf("26 pictures queued: backlog %v, want 1s", b)
	}
	for range 25 {
		if _, _, err := sub.Next(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if b := sub.Backlog(); b != 0 {
		t.Fatalf("one picture queued: backlog %v", b)
	}
}

// TestHubQueueGrows: a deep queue starts small, grows while units wait, up
// to its bound (units in order, no gap), overflows past the bound as before,
// and gives back the grown ring once drained.
func TestHubQueueGrows(t *testing.T) {
	s, m := hubStream()
	const bound = 1000
	sub := s.Subscribe(SubscribeOptions{QueueLen: bound})
	defer sub.Close()
	ring := func() int {
		sub.mu.Lock()
		defer sub.mu.Unlock()
		return len(sub.queue)
	}
	if n := ring(); n != queueStart {
		t.Fatalf("ring of %d slots before any unit, want %d", n, queueStart)
	}
	for i := range bound { // keyframe first, every 50
		s.Write(unit(m, i, 50))
	}
	if n := ring(); n != bound {
		t.Fatalf("ring of %d slots with %d units waiting", n, bound)
	}
	for i := range bound {
		u, gap := next(t, sub)
		if gap || u.PTS != time.Duration(i)*40*time.Millisecond {
			t.Fatalf("unit %d: PTS %v gap %v", i, u.PTS, gap)
		}
	}
	if n := ring(); n != queueStart {
		t.Errorf("ring of %d slots after the backlog drained", n)
	}
	if sub.Dropped() != 0 {
		t.Errorf("%d dropped below the bound", sub.Dropped())
	}
	for i := bound; i <= 2*bound; i++ { // one past the bound
		s.Write(unit(m, i, 50))
	}
	if sub.Dropped() == 0 {
		t.Fatal("no overflow past the bound")
	}
	u, gap := next(t, sub)
	if !gap || !u.Keyframe {
		t.Fatalf("after the overflow: keyframe=%v gap=%v", u.Keyframe, gap)
	}
}
