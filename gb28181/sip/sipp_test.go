package sip

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/testkit"
)

// sipp runs an independent SIP peer (SIPp, Debian sip-tester) against the
// server. It skips when sipp is missing unless VIGIL_REQUIRE_SIPP=1.
func sipp(t *testing.T, server, transport, scenario string, args ...string) ([]byte, error) {
	t.Helper()
	bin := testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP") // Debian package sip-tester
	sf, err := filepath.Abs(filepath.Join("testdata", scenario))
	if err != nil {
		t.Fatal(err)
	}
	mode := "u1"
	if transport == "tcp" {
		mode = "t1"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, append([]string{server, "-sf", sf, "-m", "1", "-t", mode,
		"-i", "127.0.0.1", "-p", "0", "-nostdin", "-timeout", "10s", "-timeout_error", "-trace_err",
		"-key", "realm", testRealm}, args...)...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if err != nil {
		logs, _ := filepath.Glob(filepath.Join(cmd.Dir, "*.log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", filepath.Base(l), b)
		}
	}
	return out, err
}

func TestSippRegister(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			ts := startServer(t, time.Minute)
			addr := ts.on(tr)
			if out, err := sipp(t, addr, tr, "sipp_register.xml",
				"-key", "device", testDevice, "-au", testDevice, "-ap", "secret1"); err != nil {
				t.Fatalf("sipp register: %v\n%s", err, out)
			}
			st := ts.DeviceState(testDevice)
			if st.State != StateOnline || st.Transport != tr {
				t.Fatalf("after sipp register: %+v", st)
			}
		})
	}
}

func TestSippRefused(t *testing.T) {
	ts := startServer(t, time.Minute)
	// Wrong password: 401, then 403.
	if out, err := sipp(t, ts.udp, "udp", "sipp_refused.xml",
		"-key", "device", testDevice, "-au", testDevice, "-ap", "wrong"); err != nil {
		t.Fatalf("sipp wrong password: %v\n%s", err, out)
	}
	if st := ts.DeviceState(testDevice); st.State != StateNever || st.LastError != "wrong password" {
		t.Fatalf("after wrong password: %+v", st)
	}
	// Unknown device: 403 at once, listed for the admin.
	const unknown = "44011300001320009999"
	if out, err := sipp(t, ts.udp, "udp", "sipp_refused.xml",
		"-key", "device", unknown, "-au", unknown, "-ap", "x"); err != nil {
		t.Fatalf("sipp unknown device: %v\n%s", err, out)
	}
	if r := ts.RefusedList(); len(r) != 1 || r[0].ID != unknown {
		t.Fatalf("refused = %+v", r)
	}
}

func TestSippGarbage(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			ts := startServer(t, time.Minute)
			addr := ts.on(tr)
			if out, err := sipp(t, addr, tr, "sipp_garbage.xml", "-key", "device", testDevice); err != nil {
				t.Fatalf("sipp garbage: %v\n%s", err, out)
			}
			// The server still registers a well-behaved device.
			d := newDevice(t, testDevice, addr, tr)
			if res := d.register(t, "secret1", 60); res.StatusCode != 200 {
				t.Fatalf("register after garbage: %d", res.StatusCode)
			}
		})
	}
}

// TestSippFlood: 2000 REGISTERs of new unknown devices from one address,
// at 1000 a second, are each refused, and the refused list stays bounded.
func TestSippFlood(t *testing.T) {
	ts := startServer(t, time.Minute, func(s *Server) { s.MaxRefused = 64 })
	if out, err := sipp(t, ts.udp, "udp", "sipp_flood.xml", "-m", "2000", "-r", "1000", "-l", "200"); err != nil {
		t.Fatalf("sipp flood: %v\n%s", err, out)
	}
	r := ts.RefusedList()
	if len(r) != 64 {
		t.Fatalf("refused list has %d entries after the flood, want 64", len(r))
	}
}
