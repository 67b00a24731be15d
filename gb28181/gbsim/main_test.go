package gbsim

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	gbsip "github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/internal/testkit"
)

func TestParseFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		err  string
	}{
		{[]string{"--gb28181", "--id", testDevice}, "--sip HOST:PORT is required"},
		{[]string{"--gb28181", "--sip", "127.0.0.1:5060", "--id", "123"}, `--id "123"`},
		{[]string{"--gb28181", "--sip", "127.0.0.1:5060", "--id", testDevice, "--channels", "0"}, "--channels 0"},
		{[]string{"--gb28181", "--sip", "127.0.0.1:5060", "--id", testDevice, "--sip-transport", "sctp"}, `--sip-transport "sctp"`},
		{[]string{"--gb28181", "--sip", "127.0.0.1:5060", "--id", testDevice, "extra"}, `unexpected argument "extra"`},
		{[]string{"--gb28181", "--nope"}, "flag provided but not defined: -nope"},
	} {
		_, _, err := ParseFlags(c.args, io.Discard)
		if err == nil || !strings.Contains(err.Error(), c.err) {
			t.Errorf("%v: err %v, want %q", c.args, err, c.err)
		}
	}
	cfg, _, err := ParseFlags([]string{"--gb28181", "--sip", "127.0.0.1:5060", "--id", testDevice, "--password", "p", "--channels", "3", "--sip-transport", "tcp"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Channels) != 3 || cfg.Channels[2].ID != "44011300001310000003" || !cfg.Channels[0].PTZ || cfg.Channels[1].PTZ || cfg.Transport != "tcp" {
		t.Fatalf("config %+v", cfg)
	}
	var help strings.Builder
	if _, _, err := ParseFlags([]string{"--gb28181", "-h"}, &help); !errors.Is(err, flag.ErrHelp) || !strings.Contains(help.String(), Usage) {
		t.Fatalf("-h: %v\n%s", err, help.String())
	}
	if !HasFlag([]string{"--count", "2", "--gb28181"}) || HasFlag([]string{"--count", "2"}) || HasFlag([]string{"--", "--gb28181"}) {
		t.Fatal("HasFlag")
	}
}

// TestMainCommand runs the command against Vigil's registrar until cancelled.
func TestMainCommand(t *testing.T) {
	udp, _, srv := startRegistrar(t, time.Minute)
	var out testkit.SyncBuffer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"--gb28181", "--sip", udp, "--id", testDevice, "--password", "secret1", "--channels", "2"}, &out)
	}()
	testkit.WaitFor(t, 10*time.Second, "registered line", func() bool { return strings.Contains(out.String(), "registered (") })
	if st := srv.DeviceState(testDevice); st.State != gbsip.StateOnline {
		t.Fatalf("registrar: %+v", st)
	}
	if !strings.Contains(out.String(), "channel 44011300001310000002") {
		t.Fatalf("output:\n%s", out.String())
	}
	cancel()
	testkit.Returned(t, done, 10*time.Second, "Main")
	if st := srv.DeviceState(testDevice); st.State != gbsip.StateOffline {
		t.Fatalf("registrar after the command ended: %+v", st)
	}
}
