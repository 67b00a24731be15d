package ui

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"
)

// A request whose client went away (a tab closed, the page left) fails
// with context.Canceled in the database (PostgreSQL cancels the query at
// once): that is not a server failure, and the log does not say ERROR.
func TestCanceledRequestIsNoError(t *testing.T) {
	f := newFixture(t, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // the client is gone
	hr := httptest.NewRequest("GET", "/api/v1/cameras", nil).WithContext(ctx)
	hr.Header.Set("Authorization", "Bearer "+f.tokens[pAdmin])
	f.h.ServeHTTP(httptest.NewRecorder(), hr)
	log := f.logBuf.String()
	if !strings.Contains(log, "client went away") {
		t.Fatalf("the canceled request is not in the log: %s", log)
	}
	if strings.Contains(log, "level=ERROR") {
		t.Fatalf("a request its client canceled is logged as an error: %s", log)
	}
}
