package simcam

import (
	"net"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/camsim"
)

// TestStartListensAndCloses starts camsim on a free port of 127.0.0.1, sees it
// accept a connection, and sees the port closed once the test's cleanups ran.
func TestStartListensAndCloses(t *testing.T) {
	var addr string
	t.Run("running", func(t *testing.T) {
		s := Start(t, camsim.Options{Count: 1})
		addr = s.Addr()
		if !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":0") {
			t.Fatalf("Addr() = %q, want a port on 127.0.0.1", addr)
		}
		if !strings.HasPrefix(s.URL(1, false), "rtsp://"+addr+"/") {
			t.Fatalf("URL(1) = %q", s.URL(1, false))
		}
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("camsim does not accept: %v", err)
		}
		c.Close()
	})
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Fatalf("camsim still listening on %s after the test ended", addr)
	}
}
