package ingest

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/vigil-vms/vigil/internal/testkit"
)

// runManager starts m.Run and returns a stop function that ends it and waits.
func runManager(t *testing.T, m *Fleet) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- m.Run(ctx) }()
	var stopped bool
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		select {
		case err := <-done:
			if !errors.Is(err, context.Canceled) {
				t.Errorf("Run returned %v, want context.Canceled", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("Run did not return within 10 s of cancel")
		}
	}
	t.Cleanup(stop)
	return stop
}

func fastOptions(t *testing.T) FleetOptions {
	return FleetOptions{
		Log: testkit.Log(t), StallTimeout: 2500 * time.Millisecond, ReadTimeout: 2 * time.Second,
		BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond,
	}
}

// startFleet runs a fleet with opts that pulls cams, until stop or the end of
// the test.
func startFleet(t *testing.T, opts FleetOptions, cams ...Camera) (m *Fleet, stop func()) {
	t.Helper()
	m = NewFleet(opts)
	for _, c := range cams {
		m.Set(c)
	}
	return m, runManager(t, m)
}

// subscribeMain subscribes to the main stream of camera id until the end of
// the test, and returns a context for reading it that ends after timeout.
func subscribeMain(t *testing.T, m *Fleet, id string, o SubscribeOptions, timeout time.Duration) (*Subscription, context.Context) {
	sub := m.Stream(id, Main).Subscribe(o)
	t.Cleanup(sub.Close)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	return sub, ctx
}

// readSteady reads n units from sub, passing each to each (when not nil),
// and fails the test on an error, a gap, or a video PTS that does not
// increase. It returns how many of the units were audio.
func readSteady(t *testing.T, ctx context.Context, sub *Subscription, n int, each func(i int, u *Unit)) (audio int) {
	t.Helper()
	var last time.Duration = -1
	for i := range n {
		u, gap, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("unit %d: %v", i, err)
		}
		if gap {
			t.Fatalf("gap at unit %d", i)
		}
		if each != nil {
			each(i, u)
		}
		if !u.Track.Video {
			audio++
			continue
		}
		if u.PTS <= last {
			t.Fatalf("video PTS %v after %v", u.PTS, last)
		}
		last = u.PTS
	}
	return audio
}

// waitFPS waits until camera id's video is measured at about 25 fps.
func waitFPS(t *testing.T, m *Fleet, id string, timeout time.Duration) {
	t.Helper()
	testkit.WaitFor(t, timeout, "fps about 25", func() bool {
		st, _ := m.Status(id)
		return st.Video != nil && st.Video.FPS >= 23 && st.Video.FPS <= 27
	})
}

func TestIngestFromServer(t *testing.T) {
	for _, tc := range []struct {
		name      string
		transport string
		udp       bool
		audio     bool
	}{
		{"tcp", "tcp", false, true},
		{"udp", "udp", true, false},
		{"auto-udp", "auto", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			defer goleak.VerifyNone(t)
			srv := startTestServer(t, testServerOptions{UDP: tc.udp, Audio: tc.audio})
			defer srv.Close()
			m, stop := startFleet(t, fastOptions(t), Camera{ID: "cam1", MainURL: srv.url("cam1"), Transport: tc.transport, Enabled: true})
			defer stop()
			sub, ctx := subscribeMain(t, m, "cam1", SubscribeOptions{Kind: Viewer}, 10*time.Second)
			u, _, err := sub.Next(ctx)
			if err != nil {
				t.Fatalf("first unit: %v", err)
			}
			if !u.Keyframe || !u.Track.Video {
				t.Fatalf("first unit is not a video keyframe: %+v", u)
			}
			if len(u.Data) < 3 || !bytes.Equal(u.Data[0], testSPS720) || !bytes.Equal(u.Data[1], testPPS) {
				t.Fatalf("keyframe does not start with SPS, PPS: %d NAL units", len(u.Data))
			}
			if audio := readSteady(t, ctx, sub, 60, nil); tc.audio && audio == 0 {
				t.Error("no audio unit")
			}
			waitFPS(t, m, "cam1", 8*time.Second)
			st, ok := m.Status("cam1")
			if !ok || st.State != StateOnline || st.LastError != "" {
				t.Fatalf("status %+v", st)
			}
			if st.Video.Codec != CodecH264 || st.Video.Width != 1280 || st.Video.Height != 720 || st.Video.BitrateKbps <= 0 {
				t.Errorf("video status %+v", *st.Video)
			}
			if tc.audio && (st.Audio == nil || st.Audio.Codec != CodecAAC || st.Audio.SampleRate != 48000 || st.Audio.Channels != 1) {
				t.Errorf("audio status %+v", st.Audio)
			}
			if st.Viewers != 1 {
				t.Errorf("viewers = %d, want 1", st.Viewers)
			}
			sub.Close()
			stop()
			m.Remove("cam1")
		})
	}
}

func TestReconnectKeepsSubscription(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := startTestServer(t, testServerOptions{})
	addr := srv.addr
	m, stop := startFleet(t, fastOptions(t), Camera{ID: "cam1", MainURL: srv.url("cam1"), Transport: "tcp", Enabled: true})
	defer stop()
	sub, ctx := subscribeMain(t, m, "cam1", SubscribeOptions{Kind: Viewer}, 20*time.Second)

	u, _, err := sub.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	firstMedia := u.Media
	lastPTS := u.PTS
	srv.Close()
	testkit.WaitFor(t, 5*time.Second, "offline", func() bool {
		st, _ := m.Status("cam1")
		return st.State == StateOffline
	})
	st, _ := m.Status("cam1")
	t.Logf("offline: %s", st.LastError)
	// drain what was queued before the cut
	for {
		c2, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
		u, _, err := sub.Next(c2)
		cancel2()
		if err != nil {
			break
		}
		lastPTS = u.PTS
	}
	srv2 := startTestServer(t, testServerOptions{Addr: addr})
	defer srv2.Close()
	u, _, err = sub.Next(ctx)
	if err != nil {
		t.Fatalf("no unit after the server came back: %v", err)
	}
	if u.PTS <= lastPTS {
		t.Errorf("PTS went back across the reconnect: %v after %v", u.PTS, lastPTS)
	}
	if u.Media != firstMedia {
		t.Errorf("same tracks after reconnect, but a new Media generation %d", u.Media.Generation)
	}
	st, _ = m.Status("cam1")
	if st.State != StateOnline || st.Reconnects < 1 {
		t.Errorf("status after reconnect %+v", st)
	}
	stop()
	m.Remove("cam1")
	if _, _, err := sub.Next(ctx); !errors.Is(err, ErrStreamClosed) {
		t.Errorf("Next after Remove = %v, want ErrStreamClosed", err)
	}
}

func TestStallDetection(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := startTestServer(t, testServerOptions{})
	defer srv.Close()
	m, stop := startFleet(t, fastOptions(t), Camera{ID: "cam1", MainURL: srv.url("cam1"), Transport: "tcp", Enabled: true})
	defer stop()
	testkit.WaitFor(t, 5*time.Second, "online", func() bool { st, _ := m.Status("cam1"); return st.State == StateOnline })
	srv.stall.Store(true)
	testkit.WaitFor(t, 5*time.Second, "stall detected", func() bool {
		st, _ := m.Status("cam1")
		return st.State == StateOffline && errors.Is(st.Err, ErrStalled)
	})
	st, _ := m.Status("cam1")
	if !strings.Contains(st.LastError, "stopped sending") {
		t.Errorf("lastError %q", st.LastError)
	}
	srv.stall.Store(false)
	testkit.WaitFor(t, 5*time.Second, "online again", func() bool { st, _ := m.Status("cam1"); return st.State == StateOnline })
	st, _ = m.Status("cam1")
	if st.Reconnects < 1 {
		t.Errorf("reconnects = %d", st.Reconnects)
	}
	stop()
	m.Remove("cam1")
}

func TestAuthAndNotFound(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := startTestServer(t, testServerOptions{User: "admin", Pass: "s3cret"})
	defer srv.Close()
	m := NewFleet(fastOptions(t))
	wrong := strings.Replace(srv.url("cam1"), "s3cret", "wrongpass", 1)
	m.Set(Camera{ID: "bad", MainURL: wrong, Transport: "tcp", Enabled: true})
	m.Set(Camera{ID: "good", MainURL: srv.url("cam1"), Transport: "tcp", Enabled: true})
	m.Set(Camera{ID: "missing", MainURL: srv.url("missing"), Transport: "tcp", Enabled: true})
	stop := runManager(t, m)
	defer stop()
	testkit.WaitFor(t, 5*time.Second, "auth failure retried", func() bool {
		st, _ := m.Status("bad")
		return st.State == StateOffline && st.Reconnects >= 2
	})
	st, _ := m.Status("bad")
	if !errors.Is(st.Err, ErrUnauthorized) || !strings.Contains(st.LastError, "password") {
		t.Errorf("lastError %q (%v)", st.LastError, st.Err)
	}
	if strings.Contains(st.LastError, "wrongpass") {
		t.Errorf("lastError shows the password: %q", st.LastError)
	}
	testkit.WaitFor(t, 5*time.Second, "good online", func() bool { st, _ := m.Status("good"); return st.State == StateOnline })
	testkit.WaitFor(t, 5*time.Second, "not found", func() bool { st, _ := m.Status("missing"); return errors.Is(st.Err, ErrNotFound) })
	st, _ = m.Status("missing")
	if !strings.Contains(st.LastError, "404") {
		t.Errorf("lastError %q", st.LastError)
	}
	stop()
	for _, id := range []string{"bad", "good", "missing"} {
		m.Remove(id)
	}
}

func TestProbe(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := startTestServer(t, testServerOptions{Audio: true, User: "u", Pass: "p"})
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := Probe(ctx, srv.url("cam1"), "tcp")
	if err != nil {
		t.Fatal(err)
	}
	if res.Video == nil || res.Video.Codec != CodecH264 || res.Video.Width != 1280 || res.Video.Height != 720 {
		t.Errorf("video %+v", res.Video)
	}
	if res.Audio == nil || res.Audio.Codec != CodecAAC {
		t.Errorf("audio %+v", res.Audio)
	}
	_, err = Probe(ctx, strings.Replace(srv.url("cam1"), ":p@", ":nope@", 1), "tcp")
	if !errors.Is(err, ErrUnauthorized) || strings.Contains(err.Error(), "nope") {
		t.Errorf("wrong password: %v", err)
	}
	_, err = Probe(ctx, "http://example.com/x", "tcp")
	if !errors.Is(err, ErrInvalidURL) {
		t.Errorf("http URL: %v", err)
	}
}

func TestManagerSetDisableChangeURL(t *testing.T) {
	defer goleak.VerifyNone(t)
	srv := startTestServer(t, testServerOptions{})
	defer srv.Close()
	srv2 := startTestServer(t, testServerOptions{})
	defer srv2.Close()
	m := NewFleet(fastOptions(t))
	cam := Camera{ID: "cam1", MainURL: srv.url("cam1"), SubURL: srv.url("cam1/sub"), Transport: "tcp", Enabled: true}
	m.Set(cam)
	if st, _ := m.Status("cam1"); st.State != StateConnecting {
		t.Errorf("before Run: state %q", st.State)
	}
	stop := runManager(t, m)
	defer stop()
	main := m.Stream("cam1", Main)
	if main == nil || m.Stream("cam1", Sub) == nil || m.Stream("nope", Main) != nil {
		t.Fatal("Stream lookup")
	}
	testkit.WaitFor(t, 5*time.Second, "online", func() bool {
		st, _ := m.Status("cam1")
		return st.State == StateOnline && st.Sub != nil && st.Sub.State == StateOnline
	})
	sub := main.Subscribe(SubscribeOptions{Kind: Viewer})
	defer sub.Close()

	// a new URL reconnects; the Stream and its subscription stay
	cam.MainURL = srv2.url("cam1")
	cam.SubURL = ""
	m.Set(cam)
	if m.Stream("cam1", Main) != main {
		t.Fatal("a URL change replaced the Stream")
	}
	if m.Stream("cam1", Sub) != nil {
		t.Fatal("sub stream still there after its URL was removed")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	testkit.WaitFor(t, 5*time.Second, "online on the new server", func() bool {
		st, _ := m.Status("cam1")
		return st.State == StateOnline
	})
	if _, _, err := sub.Next(ctx); err != nil {
		t.Fatalf("subscription after URL change: %v", err)
	}

	cam.Enabled = false
	m.Set(cam)
	st, _ := m.Status("cam1")
	if st.State != StateDisabled || st.Sub != nil {
		t.Errorf("disabled: %+v", st)
	}
	cam.Enabled = true
	m.Set(cam)
	testkit.WaitFor(t, 5*time.Second, "online after enabling", func() bool {
		st, _ := m.Status("cam1")
		return st.State == StateOnline
	})
	if all := m.Statuses(); len(all) != 1 || all[0].ID != "cam1" {
		t.Errorf("Statuses %+v", all)
	}
	stop()
	m.Remove("cam1")
	if _, ok := m.Status("cam1"); ok {
		t.Error("status after Remove")
	}
}
