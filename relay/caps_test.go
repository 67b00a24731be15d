package relay

import (
	"net/http"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestPendingSessionsBounded: a viewer that opens offer after offer and
// never connects gets at most MaxPending sessions; the rest are refused with
// 503, the goroutines stay bounded, and every session is reclaimed once
// SessionTimeout passes.
func TestPendingSessionsBounded(t *testing.T) {
	base := runtime.NumGoroutine()
	const maxPending, offers = 8, 200
	e := startEnv(t, Options{SessionTimeout: 1500 * time.Millisecond, MaxPending: maxPending}, nil)
	e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")

	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	sem := make(chan struct{}, 16)
	for range offers {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			code := 0
			resp, err := http.Post(e.server.URL+"/whep/cam1", "application/sdp", strings.NewReader(validOffer))
			if err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			mu.Lock()
			codes[code]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if codes[http.StatusCreated] == 0 || codes[http.StatusCreated] > maxPending || codes[http.StatusServiceUnavailable] < offers-maxPending {
		t.Fatalf("answers %v: want at most %d created and the rest 503", codes, maxPending)
	}
	if n := e.relay.Sessions(); n > maxPending {
		t.Fatalf("%d sessions, cap %d", n, maxPending)
	}
	// Each pending session costs pion's handful of goroutines: bounded by the cap.
	g := runtime.NumGoroutine()
	if g > base+maxPending*40+100 {
		t.Fatalf("%d goroutines with %d pending sessions (%d before)", g, e.relay.Pending(), base)
	}
	t.Logf("answers %v; %d goroutines with %d pending sessions (%d before)", codes, g, e.relay.Pending(), base)
	testkit.WaitFor(t, 10*time.Second, "the pending sessions to expire", func() bool {
		return e.relay.Sessions() == 0 && e.relay.Pending() == 0
	})
	testkit.WaitFor(t, 5*time.Second, "the goroutines to be reclaimed", func() bool { return runtime.NumGoroutine() <= base+60 })
	// The slots are back: a new offer is served.
	if code := e.postOffer(t, "cam1"); code != http.StatusCreated {
		t.Fatalf("after expiry: %d", code)
	}
}

// TestMaxSessions: offers beyond MaxSessions are refused with 503.
func TestMaxSessions(t *testing.T) {
	e := startEnv(t, Options{MaxSessions: 3}, nil)
	e.feed(t, "cam1", "cam.h264", ingest.CodecH264, "")
	for i := range 5 {
		want := http.StatusCreated
		if i >= 3 {
			want = http.StatusServiceUnavailable
		}
		if code := e.postOffer(t, "cam1"); code != want {
			t.Fatalf("offer %d: %d, want %d", i+1, code, want)
		}
	}
}
