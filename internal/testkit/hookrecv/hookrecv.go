// Package hookrecv is a webhook receiver for tests: an HTTP server that
// decodes every JSON request it accepts into an event of type E, refuses
// those that fail a check (a signature, say) and can be taken down, when it
// answers 503.
//
// It is generic in the event so that the package that defines the event
// (alerts) can use it in its own tests without an import cycle.
package hookrecv

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// Receiver is a running webhook receiver; it closes when the test ends.
type Receiver[E any] struct {
	URL    string // where to send events
	Events chan E // every accepted event, in order of arrival (buffered: 100)

	mu      sync.Mutex
	down    bool
	refused int // requests answered 503 while down
	bad     int // requests that failed the check
}

// New starts a receiver that accepts a request when valid says so (valid
// gets the request and its body) and answers 401 otherwise.
func New[E any](t testing.TB, valid func(r *http.Request, body []byte) bool) *Receiver[E] {
	t.Helper()
	h := &Receiver[E]{Events: make(chan E, 100)}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.down {
			h.refused++
			http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
			return
		}
		if !valid(r, body) {
			h.bad++
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var e E
		if err := json.Unmarshal(body, &e); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		h.Events <- e
	}))
	t.Cleanup(srv.Close)
	h.URL = srv.URL
	return h
}

// SetDown takes the receiver down (every request gets 503) or back up.
func (h *Receiver[E]) SetDown(down bool) {
	h.mu.Lock()
	h.down = down
	h.mu.Unlock()
}

// Refused is how many requests were answered 503 while down.
func (h *Receiver[E]) Refused() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.refused
}

// Bad is how many requests failed the check.
func (h *Receiver[E]) Bad() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.bad
}

// Next returns the next event, failing the test when none comes within
// timeout.
func (h *Receiver[E]) Next(t testing.TB, timeout time.Duration) E {
	t.Helper()
	select {
	case e := <-h.Events:
		return e
	case <-time.After(timeout):
		t.Fatalf("no event within %s", timeout)
		var zero E
		return zero
	}
}
