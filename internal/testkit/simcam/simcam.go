// Package simcam starts simulated RTSP cameras (camsim) for tests: one call
// instead of New, Start and a deferred Close in every test that pulls a
// camera.
//
// It is apart from testkit because it imports camsim, whose own tests use
// testkit.
package simcam

import (
	"testing"

	"github.com/vigil-vms/vigil/camsim"
)

// Start starts camsim with o (on 127.0.0.1:0 unless o.Addr says otherwise)
// and closes it when the test ends. It fails the test when camsim does not
// start.
func Start(t testing.TB, o camsim.Options) *camsim.Server {
	t.Helper()
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	s, err := camsim.New(o)
	if err != nil {
		t.Fatalf("camsim: %v", err)
	}
	if err := s.Start(); err != nil {
		t.Fatalf("camsim start: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}
