package gbsim

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// runSippPlatform starts sipp as the platform (testdata/sipp_platform.xml)
// on a free port of 127.0.0.1 and returns its address and a wait for its
// result and its message trace.
func runSippPlatform(t *testing.T, transport string, calls int) (string, func() (error, []byte)) {
	t.Helper()
	bin := testkit.Tool(t, "sipp", "VIGIL_REQUIRE_SIPP") // Debian package sip-tester
	var port int
	if transport == "tcp" {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = ln.Addr().(*net.TCPAddr).Port
		ln.Close()
	} else {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port = pc.LocalAddr().(*net.UDPAddr).Port
		pc.Close()
	}
	sf, _ := filepath.Abs("testdata/sipp_platform.xml")
	mode := "u1"
	if transport == "tcp" {
		mode = "t1"
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	cmd := exec.CommandContext(ctx, bin, "-sf", sf, "-i", "127.0.0.1", "-p", strconv.Itoa(port),
		"-t", mode, "-m", strconv.Itoa(calls), "-nostdin", "-timeout", "30s", "-timeout_error", "-trace_msg", "-trace_err")
	cmd.Dir = dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan struct{})
	var err error
	go func() { err = cmd.Wait(); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), func() (error, []byte) {
		<-done
		logs, _ := filepath.Glob(filepath.Join(dir, "*_messages.log"))
		var msgs []byte
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			msgs = append(msgs, b...)
		}
		if err != nil {
			errs, _ := filepath.Glob(filepath.Join(dir, "*_errors.log"))
			for _, l := range errs {
				b, _ := os.ReadFile(l)
				t.Logf("%s:\n%s", filepath.Base(l), b)
			}
			t.Logf("sipp output:\n%s", out.String())
		}
		return err, msgs
	}
}

// catalogBodies returns the Catalog responses found in a sipp message trace.
func catalogBodies(t *testing.T, trace []byte) []*manscdp.Response {
	t.Helper()
	var out []*manscdp.Response
	for {
		i := bytes.Index(trace, []byte("<?xml"))
		if i < 0 {
			return out
		}
		trace = trace[i:]
		j := bytes.Index(trace, []byte("</Response>"))
		k := bytes.Index(trace, []byte("</Query>"))
		if j < 0 {
			return out
		}
		if k >= 0 && k < j { // the platform's own query
			trace = trace[k:]
			continue
		}
		body := trace[:j+len("</Response>")]
		trace = trace[j:]
		m, err := manscdp.Decode(body)
		if err != nil {
			t.Fatalf("device body that sipp received does not decode: %v\n%s", err, body)
		}
		if r, ok := m.(*manscdp.Response); ok && r.CmdType == manscdp.CmdCatalog {
			out = append(out, r)
		}
	}
}

// TestSippPlatform: sipp as the platform challenges the device's REGISTER
// (digest with qop=auth), verifies its credentials, answers with a Date the
// device takes its clock from, and gets the catalog, one item per page here.
func TestSippPlatform(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			addr, wait := runSippPlatform(t, tr, 3) // REGISTER, two catalog pages
			d := startDevice(t, Config{Server: addr, Transport: tr, Password: "secret1", CatalogPageItems: 1})
			waitRegistered(t, d)
			err, trace := wait()
			if err != nil {
				t.Fatalf("sipp: %v", err)
			}
			if d.DateHeader() != "2030-01-02T03:04:05.000" {
				t.Fatalf("Date %q", d.DateHeader())
			}
			want := time.Date(2030, 1, 2, 3, 4, 5, 0, time.Local)
			if off, ok := d.ClockOffset(); !ok || (time.Now().Add(off).Sub(want)).Abs() > time.Minute {
				t.Fatalf("clock offset %v %v: device time %v, want about %v", off, ok, time.Now().Add(off), want)
			}
			pages := catalogBodies(t, trace)
			if len(pages) != 2 {
				t.Fatalf("%d catalog pages reached sipp, want 2\n%s", len(pages), trace)
			}
			for i, p := range pages {
				if p.SN != 17 || p.SumNum != 2 || p.DeviceList == nil || p.DeviceList.Num != 1 || p.DeviceList.Items[0].DeviceID != []string{testChan1, testChan2}[i] {
					t.Fatalf("page %d: %+v", i, p)
				}
			}
		})
	}
}

// TestSippWrongPassword: sipp's digest check refuses a wrong password (403)
// and the device does not count itself registered.
func TestSippWrongPassword(t *testing.T) {
	addr, wait := runSippPlatform(t, "udp", 1)
	d := startDevice(t, Config{Server: addr, Password: "wrong"})
	if err, _ := wait(); err == nil {
		t.Fatal("sipp accepted a wrong password")
	}
	select {
	case <-d.Registered():
		t.Fatal("registered with a wrong password")
	default:
	}
}
