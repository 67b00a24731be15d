package ui

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/registry"
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

// Behind a trusted reverse proxy the limiter counts the client that the
// proxy names, not the proxy (else one attacker locks every client out);
// from anyone else X-Forwarded-For is ignored (else an attacker rotates
// addresses by writing the header).
func TestLoginBehindTrustedProxy(t *testing.T) {
	viaProxy := func(f *fixture, user, pass, remote, xff string) int {
		hr := strings.NewReader(fmt.Sprintf(`{"username":%q,"password":%q}`, user, pass))
		r := newRequest("POST", "/api/v1/session", hr)
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Forwarded-For", xff)
		r.RemoteAddr = remote
		return serve(f.h, r).Code
	}
	f := newFixture(t, Options{LoginFailures: 3, TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}})
	for i := range 3 {
		// The attacker writes a fake first hop; the proxy appends the real one.
		if c := viaProxy(f, pOperator, "wrong-password", "10.1.1.1:5000", fmt.Sprintf("192.0.2.%d, 203.0.113.7", i)); c != unau {
			t.Fatalf("attempt %d: %d", i, c)
		}
	}
	if c := viaProxy(f, pViewer, "wrong-password", "10.1.1.1:5000", "192.0.2.99, 203.0.113.7"); c != http.StatusTooManyRequests {
		t.Fatalf("the attacker behind the proxy: %d", c)
	}
	if c := viaProxy(f, pViewer, userPassword, "10.1.1.1:5000", "198.51.100.4"); c != ok {
		t.Fatalf("another client behind the proxy: %d", c)
	}
	es, _ := f.reg.AuditEntries(context.Background(), registry.AuditFilter{})
	addrs := map[string]string{}
	for _, e := range es {
		if e.Action == "login" {
			addrs[e.Result] = e.Address
		}
	}
	if addrs["ok"] != "198.51.100.4" || addrs["failed"] != "203.0.113.7" {
		t.Fatalf("audited addresses by result: %v", addrs)
	}

	// Without trusted proxies the header changes nothing.
	g := newFixture(t, Options{LoginFailures: 3})
	for i := range 3 {
		viaProxy(g, pOperator, "wrong-password", "192.0.2.50:5000", fmt.Sprintf("203.0.113.%d", i))
	}
	if c := viaProxy(g, pViewer, userPassword, "192.0.2.50:5000", "198.51.100.4"); c != http.StatusTooManyRequests {
		t.Fatalf("X-Forwarded-For from an untrusted peer was believed: %d", c)
	}
}

// Refused logins cost no hashing, so they could be sent fast: only the
// first few per address and window reach the audit log, which would
// otherwise grow without bound from unauthenticated requests.
func TestRefusedLoginsAuditBounded(t *testing.T) {
	f := newFixture(t, Options{LoginFailures: 3})
	codes := map[int]int{}
	for i := range 60 {
		codes[loginFrom(f, fmt.Sprintf("ghost-%d", i), "wrong-password", "203.0.113.9:1000")]++
	}
	if codes[unau] != 3 || codes[http.StatusTooManyRequests] != 57 {
		t.Fatalf("codes %v", codes)
	}
	es, err := f.reg.AuditEntries(context.Background(), registry.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range es {
		if e.Action == "login" {
			n++
		}
	}
	if n != 6 {
		t.Fatalf("%d login rows in the audit log for 3 failures and 57 refusals, want 3 + 3", n)
	}
}
