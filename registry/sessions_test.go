package registry

import (
	"context"
	"net/http"
	"testing"
	"time"
)

func TestSessionsSlideUpToTheirCap(t *testing.T) {
	ctx, r := openWithOperator(t)
	clock := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }
	sid, _, err := r.StartSession(ctx, "op", time.Hour, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	writes := func() int64 {
		var exp int64
		r.db.QueryRow(context.Background(), `SELECT expires_ns FROM sessions`).Scan(&exp)
		return exp
	}
	start := clock
	// A use within a minute of the start is not written...
	before := writes()
	clock = clock.Add(30 * time.Second)
	if _, err := r.Session(ctx, sid); err != nil {
		t.Fatal(err)
	}
	if writes() != before {
		t.Fatal("a use within a minute of the last one was written")
	}
	// ...used every 50 minutes, the session outlives its idle timeout...
	for range 3 {
		clock = clock.Add(50 * time.Minute)
		s, err := r.Session(ctx, sid)
		if err != nil {
			t.Fatalf("at %s: %v", clock, err)
		}
		if want := minTime(clock.Add(time.Hour), start.Add(3*time.Hour)); !s.Expires.Equal(want) {
			t.Fatalf("expires %s, want %s", s.Expires, want)
		}
	}
	// ...but not its cap: 3 h after the start it ends, however used.
	clock = start.Add(3 * time.Hour)
	_, err = r.Session(ctx, sid)
	wantStatus(t, err, http.StatusNotFound)

	// An idle session ends after its idle timeout.
	sid, _, err = r.StartSession(ctx, "op", time.Hour, 3*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Hour)
	_, err = r.Session(ctx, sid)
	wantStatus(t, err, http.StatusNotFound)

	// CreateSession does not slide.
	sid, _, err = r.CreateSession(ctx, "op", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(50 * time.Minute)
	if _, err := r.Session(ctx, sid); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(10 * time.Minute)
	_, err = r.Session(ctx, sid)
	wantStatus(t, err, http.StatusNotFound)
}

func TestDisplaysSignInOnceAndRevoke(t *testing.T) {
	ctx := context.Background()
	r := openTest(t)
	clock := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return clock }

	_, _, err := r.CreateDisplay(ctx, " ", nil, "admin")
	wantStatus(t, err, http.StatusBadRequest)
	_, _, err = r.CreateDisplay(ctx, "Lobby", []string{"no-such-dept"}, "admin")
	wantStatus(t, err, http.StatusBadRequest)

	d, code, err := r.CreateDisplay(ctx, "Lobby wall", []string{"police", "police"}, "admin")
	if err != nil || code == "" || len(d.Departments) != 1 {
		t.Fatalf("%+v %q %v", d, code, err)
	}
	var stored string
	r.db.QueryRow(context.Background(), `SELECT code_hash FROM displays`).Scan(&stored)
	if stored == code {
		t.Fatal("display code stored in clear")
	}
	_, _, err = r.SignInDisplay(ctx, "wrong")
	wantStatus(t, err, http.StatusNotFound)

	got, secret, err := r.SignInDisplay(ctx, code)
	if err != nil || got.ID != d.ID || got.CSRF == "" {
		t.Fatalf("%+v %v", got, err)
	}
	// The code works once.
	_, _, err = r.SignInDisplay(ctx, code)
	wantStatus(t, err, http.StatusNotFound)

	// The display never idles out.
	clock = clock.Add(400 * 24 * time.Hour)
	s, err := r.DisplaySession(ctx, secret)
	if err != nil || s.ID != d.ID || s.Departments[0] != "police" {
		t.Fatalf("%+v %v", s, err)
	}
	list, err := r.Displays(ctx)
	if err != nil || len(list) != 1 || !list[0].LastSeen.Equal(clock) || !list[0].CodeExpires.IsZero() {
		t.Fatalf("%+v %v", list, err)
	}

	// Revoked, it is signed out.
	wantStatus(t, r.DeleteDisplay(ctx, d.ID), 0)
	_, err = r.DisplaySession(ctx, secret)
	wantStatus(t, err, http.StatusNotFound)
	wantStatus(t, r.DeleteDisplay(ctx, d.ID), http.StatusNotFound)

	// An unused code expires.
	_, code, err = r.CreateDisplay(ctx, "Hall", nil, "admin")
	if err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(DisplayCodeTTL)
	_, _, err = r.SignInDisplay(ctx, code)
	wantStatus(t, err, http.StatusNotFound)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
