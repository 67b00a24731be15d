package gbsim

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"

	gbsip "github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/internal/testkit"
)

const (
	testRealm  = "4401130000"
	testDevice = "44011300001320000001"
	testChan1  = "44011300001310000001"
	testChan2  = "44011300001310000002"
)

// startRegistrar runs Vigil's registrar (gb28181/sip.Server) with one known
// device, testDevice with password "secret1".
func startRegistrar(t *testing.T, keepalive time.Duration) (udp, tcp string, srv *gbsip.Server) {
	t.Helper()
	testkit.CheckLeaks(t)
	srv = &gbsip.Server{
		Realm: testRealm, ID: "44011300002000000001", Password: "default1",
		Lookup: func(id string) (string, bool, error) {
			return "secret1", id == testDevice, nil
		},
		KeepaliveInterval: keepalive,
		Log:               slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Run(t, func(ctx context.Context) error { return srv.Serve(ctx, pc, ln) })
	return pc.LocalAddr().String(), ln.Addr().String(), srv
}

func startDevice(t *testing.T, cfg Config) *Device {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = testDevice
	}
	if cfg.Channels == nil {
		cfg.Channels = []Channel{{ID: testChan1, PTZ: true}, {ID: testChan2}}
	}
	if cfg.Log == nil {
		cfg.Log = testkit.Log(t)
	}
	d, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(d.Close)
	return d
}

func waitRegistered(t *testing.T, d *Device) {
	t.Helper()
	select {
	case <-d.Registered():
	case <-time.After(10 * time.Second):
		t.Fatal("device did not register in 10s")
	}
}

// TestRegistrar: against Vigil's registrar the device registers with digest
// over UDP and TCP, takes its clock from the Date header, keeps alive, and
// unregisters on Close.
func TestRegistrar(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			udp, tcp, srv := startRegistrar(t, time.Second)
			addr := udp
			if tr == "tcp" {
				addr = tcp
			}
			d := startDevice(t, Config{Server: addr, Password: "secret1", Transport: tr, Keepalive: 100 * time.Millisecond})
			waitRegistered(t, d)
			if st := srv.DeviceState(testDevice); st.State != gbsip.StateOnline || st.Transport != tr {
				t.Fatalf("registrar state after register: %+v", st)
			}
			if _, ok := d.ClockOffset(); !ok {
				t.Fatalf("no clock offset taken from Date %q", d.DateHeader())
			}
			// Three missed keepalives (3 s) would make it offline: it stays online.
			testkit.WaitFor(t, 10*time.Second, "5 keepalives", func() bool { return d.Keepalives() >= 5 })
			if st := srv.DeviceState(testDevice); st.State != gbsip.StateOnline {
				t.Fatalf("registrar state after keepalives: %+v", st)
			}
			d.Close()
			if st := srv.DeviceState(testDevice); st.State != gbsip.StateOffline || st.LastError != "unregistered" {
				t.Fatalf("registrar state after Close: %+v", st)
			}
		})
	}
}

// TestRegistrarWrongPassword: a wrong password is refused (403) and the
// device never counts as registered; it keeps retrying.
func TestRegistrarWrongPassword(t *testing.T) {
	udp, _, srv := startRegistrar(t, time.Minute)
	d := startDevice(t, Config{Server: udp, Password: "wrong"})
	testkit.WaitFor(t, 10*time.Second, "the registrar to see the wrong password", func() bool {
		return srv.DeviceState(testDevice).LastError == "wrong password"
	})
	select {
	case <-d.Registered():
		t.Fatal("registered with a wrong password")
	default:
	}
}

// TestRegistrarNoKeepalive: with Faults.NoKeepalive the registrar marks the
// device offline after three intervals.
func TestRegistrarNoKeepalive(t *testing.T) {
	udp, _, srv := startRegistrar(t, 200*time.Millisecond)
	d := startDevice(t, Config{Server: udp, Password: "secret1", Keepalive: 100 * time.Millisecond, Faults: Faults{NoKeepalive: true}})
	waitRegistered(t, d)
	testkit.WaitFor(t, 10*time.Second, "offline after missed keepalives", func() bool {
		return srv.DeviceState(testDevice).State == gbsip.StateOffline
	})
	if d.Keepalives() != 0 {
		t.Fatalf("%d keepalives sent under NoKeepalive", d.Keepalives())
	}
}
