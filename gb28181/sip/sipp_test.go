package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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

// freeUDPPort returns a UDP port on 127.0.0.1 that was free a moment ago.
func freeUDPPort(t *testing.T) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// sippUAS starts sipp as a device answering one INVITE on port (the port it
// registered from) by scenario, and returns its result.
func sippUAS(t *testing.T, port int, scenario string) <-chan error {
	t.Helper()
	bin := testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP")
	sf, err := filepath.Abs(filepath.Join("testdata", scenario))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	cmd := exec.CommandContext(ctx, bin, "-sf", sf, "-m", "1", "-t", "u1", "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-nostdin", "-timeout", "20s", "-timeout_error", "-trace_err", "-key", "device", testDevice)
	cmd.Dir = t.TempDir()
	var out testkit.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		err := cmd.Wait()
		if err != nil {
			logs, _ := filepath.Glob(filepath.Join(cmd.Dir, "*.log"))
			for _, l := range logs {
				b, _ := os.ReadFile(l)
				err = fmt.Errorf("%w\n%s:\n%s", err, filepath.Base(l), b)
			}
			err = fmt.Errorf("%w\n%s", err, out.String())
		}
		cancel()
		done <- err
	}()
	t.Cleanup(func() { cancel(); <-exited })
	return done
}

// TestSippInvite: sipp registers as a device, then answers INVITEs on the
// same port as an independent UAS: with a bad SDP (Vigil ACKs, hangs up and
// reports InviteBadSDP) and with 486 (InviteRefused, code 486). A device
// registered alongside is unaffected.
func TestSippInvite(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		kind     InviteErrorKind
		code     int
		text     string
	}{
		{"sipp_invite_badsdp.xml", InviteBadSDP, 200, `c= address "ipc.local" is not an IP address`},
		{"sipp_invite_busy.xml", InviteRefused, 486, "refused the INVITE (udp) with 486 Busy Here"},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			ts := startServer(t, time.Minute, func(s *Server) { s.CatalogRefresh = -1 })
			other := newPeer(t, "44011300001320000002", ts.udp, "udp")
			other.channels = channels(2)
			if code := other.register("default1"); code != 200 {
				t.Fatal(code)
			}
			port := freeUDPPort(t)
			if out, err := sipp(t, ts.udp, "udp", "sipp_register.xml",
				"-key", "device", testDevice, "-au", testDevice, "-ap", "secret1", "-p", strconv.Itoa(port)); err != nil {
				t.Fatalf("sipp register: %v\n%s", err, out)
			}
			if st := ts.DeviceState(testDevice); st.State != StateOnline || st.Address != "127.0.0.1:"+strconv.Itoa(port) {
				t.Fatalf("after sipp register: %+v", st)
			}
			done := sippUAS(t, port, tc.scenario)
			start := time.Now()
			_, err := ts.Invite(ctx5(t), InviteRequest{Device: testDevice, Channel: "44011300001310000001", SSRC: testSSRC,
				Transport: TransportUDP, MediaIP: "127.0.0.1", MediaPort: 10000})
			var ie *InviteError
			if !errors.As(err, &ie) || ie.Kind != tc.kind || ie.Code != tc.code || !strings.Contains(err.Error(), tc.text) {
				t.Fatalf("invite: %#v %v", ie, err)
			}
			if took := time.Since(start); took > 5*time.Second {
				t.Fatalf("INVITE took %v", took)
			}
			testkit.Returned(t, done, 25*time.Second, "sipp UAS")
			if code := other.send(keepaliveOf(other.id)); code != 200 {
				t.Fatalf("other device's keepalive: %d", code)
			}
			if items, err := ts.Catalog(ctx5(t), other.id); err != nil || len(items) != 2 {
				t.Fatalf("other device's catalog: %d %v", len(items), err)
			}
		})
	}
}

// TestSippBodies: a registered device (sipp, digest) sends hostile
// MANSCDP bodies; each is answered 400 with the cause, an unhandled command
// 200, and the device stays registered.
func TestSippBodies(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			ts := startServer(t, time.Minute, func(s *Server) { s.CatalogRefresh = -1 })
			if out, err := sipp(t, ts.on(tr), tr, "sipp_bodies.xml",
				"-key", "device", testDevice, "-au", testDevice, "-ap", "secret1"); err != nil {
				t.Fatalf("sipp bodies: %v\n%s", err, out)
			}
			if st := ts.DeviceState(testDevice); st.State != StateOnline || st.LastError != "" {
				t.Fatalf("after hostile bodies: %+v", st)
			}
		})
	}
}
