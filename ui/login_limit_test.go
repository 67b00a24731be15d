package ui

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// loginFrom logs in through the handler as if from addr.
func loginFrom(f *fixture, user, pass, addr string) int {
	hr := strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass))
	r := newRequest("POST", "/api/v1/session", hr)
	r.Header.Set("Content-Type", "application/json")
	r.RemoteAddr = addr
	return serve(f.h, r).Code
}

// 150 concurrent wrong logins from one address: exactly LoginFailures of
// them are checked (401); the rest are refused before any hashing (429).
// Before, the limit was read before hashing and written after, so 127 of
// 150 were checked, each costing an argon2id computation.
func TestLoginFloodLimiterExact(t *testing.T) {
	f := newFixture(t, Options{LoginFailures: 5})
	const n = 150
	codes := make(chan int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			user := pViewer
			if i%3 == 0 {
				user = fmt.Sprintf("ghost-%d", i) // unknown users count alike
			}
			codes <- loginFrom(f, user, "wrong-password", "10.9.0.1:1234")
		})
	}
	close(start)
	wg.Wait()
	close(codes)
	got := map[int]int{}
	for c := range codes {
		got[c]++
	}
	if got[unau] != 5 || got[http.StatusTooManyRequests] != n-5 {
		t.Fatalf("status counts %v, want 5 × 401 and %d × 429", got, n-5)
	}
}

// Five wrong passwords for one user from one address must not lock the
// real user out elsewhere (issue 12, item 8), but guessing from many
// addresses costs an address per guess once the user is locked.
func TestLoginLockoutNoDenialOfService(t *testing.T) {
	f := newFixture(t, Options{LoginFailures: 5})
	for i := range 5 {
		if c := loginFrom(f, pAdmin, "wrong-password", "203.0.113.7:1000"); c != unau {
			t.Fatalf("attempt %d: %d", i, c)
		}
	}
	if c := loginFrom(f, pAdmin, adminPassword, "203.0.113.7:1000"); c != http.StatusTooManyRequests {
		t.Fatalf("the attacker's address: %d", c)
	}
	// The real admin, elsewhere, with the right password.
	if c := loginFrom(f, pAdmin, adminPassword, "198.51.100.1:2000"); c != ok {
		t.Fatalf("the real admin from another address: %d", c)
	}
	// One more address of the attacker: one guess, then locked there.
	if c := loginFrom(f, pAdmin, "wrong-password", "203.0.113.8:1000"); c != unau {
		t.Fatalf("a fresh address: %d", c)
	}
	if c := loginFrom(f, pAdmin, "wrong-password-2", "203.0.113.8:1000"); c != http.StatusTooManyRequests {
		t.Fatalf("second guess from it while the user is locked: %d", c)
	}
	// An IPv6 client is counted by its /64: changing the host part does not help.
	for i := range 5 {
		loginFrom(f, pOperator, "wrong-password", fmt.Sprintf("[2001:db8:1:2::%x]:1000", i+1))
	}
	if c := loginFrom(f, pViewer, "wrong-password", "[2001:db8:1:2::ff]:1000"); c != http.StatusTooManyRequests {
		t.Fatalf("another host of the same /64: %d", c)
	}
	if c := loginFrom(f, pViewer, userPassword, "[2001:db8:1:3::1]:1000"); c != ok {
		t.Fatalf("another /64: %d", c)
	}
}

// A reservation that did not fail (a login that succeeded, or could not be
// checked) is not counted.
func TestLimiterReservation(t *testing.T) {
	l := newLimiter(2, time.Minute)
	t0 := time.Unix(1000, 0)
	for range 5 {
		tk, w := l.try("bob", "10.0.0.1", t0)
		if w != 0 {
			t.Fatalf("refused: %s", w)
		}
		l.release(tk)
	}
	a, _ := l.try("bob", "10.0.0.1", t0)
	b, _ := l.try("bob", "10.0.0.1", t0.Add(time.Second))
	if _, w := l.try("bob", "10.0.0.1", t0.Add(2*time.Second)); w != 58*time.Second {
		t.Fatalf("two pending attempts: wait %s", w)
	}
	l.release(a)
	l.release(b)
	if _, w := l.try("bob", "10.0.0.1", t0.Add(2*time.Second)); w != 0 {
		t.Fatalf("after release: wait %s", w)
	}
}
