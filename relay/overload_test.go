package relay

import (
	"net/http"
	"path"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/webrtc/v4"

	"github.com/vigil-vms/vigil/internal/testkit"
)

// keyframes counts the IDR pictures a client received after since, and all
// its pictures after since.
func keyframes(c *client, since time.Time) (keys, all int) {
	frames, _ := c.snapshot()
	for _, f := range frames {
		if f.at.Before(since) {
			continue
		}
		all++
		for _, n := range f.nalus {
			if len(n) > 0 && h264.NALUType(n[0]&0x1f) == h264.NALUTypeIDR {
				keys++
				break
			}
		}
	}
	return keys, all
}

// TestOverloadStepsEveryViewerDown makes the relay too slow for its viewers
// (each write waits) and checks the graceful overload: the relay steps
// every viewer down to keyframes, none of the sessions is closed, every
// viewer keeps getting keyframes, a new viewer is refused with a 503 that
// says why; once the host keeps up again, every viewer gets every picture
// and new viewers are let in.
func TestOverloadStepsEveryViewerDown(t *testing.T) {
	e := startEnv(t, Options{StepDownLag: 500 * time.Millisecond, StepDownFor: 3 * time.Second}, nil)
	var slow atomic.Bool
	e.relay.slowWrite = func(string) {
		if slow.Load() {
			time.Sleep(100 * time.Millisecond) // 10 pictures a second, of 25
		}
	}
	e.feedCached(t, "cam1", "cam.h264", "H264", "", 10)
	const viewers = 4
	var clients []*client
	for range viewers {
		clients = append(clients, e.watch(t, "H264", "/whep/cam1", 5))
	}
	if down, _ := e.relay.SteppedDown(); down {
		t.Fatal("stepped down before the host was slow")
	}

	slow.Store(true)
	testkit.WaitFor(t, 20*time.Second, "the relay to step down", func() bool {
		down, _ := e.relay.SteppedDown()
		return down
	})
	// a new viewer is refused, saying why
	late := newClient(t, "H264", false)
	status, body := late.post(t, e.server.URL, "/whep/cam1")
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "overloaded") {
		t.Fatalf("offer while overloaded: %d %s", status, body)
	}
	// every viewer keeps getting keyframes, and no session ends
	since := time.Now()
	deadline := since.Add(60 * time.Second)
	for {
		if n := e.relay.Sessions(); n != viewers {
			t.Fatalf("%d sessions while overloaded, want %d", n, viewers)
		}
		for i, c := range clients {
			if s := c.pc.ConnectionState(); s != webrtc.PeerConnectionStateConnected {
				t.Fatalf("viewer %d: connection %s while overloaded", i, s)
			}
		}
		done := true
		for _, c := range clients {
			if keys, _ := keyframes(c, since); keys < 3 {
				done = false
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			for i, c := range clients {
				keys, all := keyframes(c, since)
				t.Logf("viewer %d: %d keyframes, %d pictures", i, keys, all)
			}
			t.Fatal("a viewer got fewer than 3 keyframes in 60 s while overloaded")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// stepped down: mostly keyframes, far fewer pictures than the camera's 25 a second
	for i, c := range clients {
		keys, all := keyframes(c, since)
		if secs := time.Since(since).Seconds(); float64(all) > 20*secs {
			t.Errorf("viewer %d: %d pictures (%d keyframes) in %.1f s while overloaded: not stepped down", i, all, keys, secs)
		}
	}
	_, steps := e.relay.SteppedDown()

	slow.Store(false)
	testkit.WaitFor(t, 30*time.Second, "the relay to step up again", func() bool {
		down, _ := e.relay.SteppedDown()
		return !down
	})
	up := time.Now()
	testkit.WaitFor(t, 30*time.Second, "every picture again at every viewer", func() bool {
		for _, c := range clients {
			if _, all := keyframes(c, up); all < 60 {
				return false
			}
		}
		return true
	})
	if n := e.relay.Sessions(); n != viewers {
		t.Fatalf("%d sessions after the overload, want %d", n, viewers)
	}
	if _, after := e.relay.SteppedDown(); after != steps {
		t.Errorf("stepped down again (%d times, %d before) though the host keeps up", after, steps)
	}
	// and new viewers are welcome again
	e.watch(t, "H264", "/whep/cam1", 5)
}

// TestStepDownLate: a burst of units from a camera that stalled (a backlog
// the viewer sends at once) is not lateness; a backlog that stays is.
func TestStepDownLate(t *testing.T) {
	var s stepDown
	t0 := time.Now()
	lag := 2 * time.Second
	if s.late(t0, 3*time.Second, lag) {
		t.Fatal("late at the first sight of a backlog")
	}
	// drained 20 ms later: a burst, not a slow viewer
	if s.late(t0.Add(20*time.Millisecond), 40*time.Millisecond, lag) {
		t.Fatal("late after the backlog drained")
	}
	if s.late(t0.Add(2*time.Second), 2500*time.Millisecond, lag) {
		t.Fatal("late at once after a new backlog")
	}
	if s.late(t0.Add(2500*time.Millisecond), 2100*time.Millisecond, lag) {
		t.Fatal("late before the backlog stayed a second")
	}
	if !s.late(t0.Add(3*time.Second), 2200*time.Millisecond, lag) {
		t.Fatal("not late after a second over the lag")
	}
}

// TestOneSlowViewerDoesNotStepOthersDown: a viewer that cannot keep up on its
// own (its network) is not an overload of the relay: the others keep every
// picture and new viewers are welcome.
func TestOneSlowViewerDoesNotStepOthersDown(t *testing.T) {
	e := startEnv(t, Options{StepDownLag: 500 * time.Millisecond, StepDownFor: 3 * time.Second}, nil)
	var slowID atomic.Value
	slowID.Store("")
	e.relay.slowWrite = func(session string) {
		if session == slowID.Load().(string) {
			time.Sleep(100 * time.Millisecond)
		}
	}
	e.feedCached(t, "cam1", "cam.h264", "H264", "", 10)
	var clients []*client
	for range 4 {
		clients = append(clients, e.watch(t, "H264", "/whep/cam1", 5))
	}
	slowID.Store(path.Base(clients[0].location))
	since := time.Now()
	time.Sleep(6 * time.Second) // the slow viewer is late after 1.5 s
	if down, steps := e.relay.SteppedDown(); down || steps != 0 {
		t.Fatalf("stepped down (now %v, %d times) for one slow viewer", down, steps)
	}
	for i, c := range clients[1:] {
		if _, all := keyframes(c, since); all < 75 { // 150 at 25 fps; a loaded machine may lose some
			t.Errorf("viewer %d beside the slow one: %d pictures in 6 s", i+1, all)
		}
	}
	if n := e.relay.Sessions(); n != 4 {
		t.Fatalf("%d sessions, want 4", n)
	}
	e.watch(t, "H264", "/whep/cam1", 5)
}
