package camsim

import (
	"context"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/vigil-vms/vigil/internal/testkit"
)

func TestParseFlags(t *testing.T) {
	cases := []struct {
		name    string
		args    []string
		want    Options
		verbose bool
		err     string
	}{
		{name: "defaults", args: nil, want: Options{Addr: DefaultAddr, Count: 1, Codec: CodecH264, Bitrate: BitrateNormal}},
		{name: "contract example", args: []string{"--addr", "127.0.0.1:8554", "--count", "16", "--codec", "h265", "--audio"},
			want: Options{Addr: "127.0.0.1:8554", Count: 16, Codec: CodecH265, Bitrate: BitrateNormal, Audio: true}},
		{name: "high bitrate", args: []string{"--bitrate", "high"}, want: Options{Addr: DefaultAddr, Count: 1, Codec: CodecH264, Bitrate: BitrateHigh}},
		{name: "faults", args: []string{"-drop-every", "30s", "-stall", "-withhold-keyframes", "5s", "-username", "u", "-password", "p", "-no-udp", "-v", "-silent-udp"},
			want:    Options{SilentUDP: true, Addr: DefaultAddr, Count: 1, Codec: CodecH264, Bitrate: BitrateNormal, DropEvery: 30 * time.Second, Stall: true, WithholdKeyframes: 5 * time.Second, Username: "u", Password: "p", DisableUDP: true},
			verbose: true},
		{name: "wrong clock", args: []string{"--clock-offset", "-8760h", "--jitter", "1.9s", "--sr-every", "1s", "--keyframe-on-play"},
			want: Options{Addr: DefaultAddr, Count: 1, Codec: CodecH264, Bitrate: BitrateNormal, KeyframeOnPlay: true, ClockOffset: -8760 * time.Hour, Jitter: 1900 * time.Millisecond, SenderReportEvery: time.Second}},
		{name: "udp address", args: []string{"--udp-rtp", "127.0.0.1:8000"}, want: Options{Addr: DefaultAddr, Count: 1, Codec: CodecH264, Bitrate: BitrateNormal, UDPRTPAddress: "127.0.0.1:8000"}},
		{name: "unknown flag", args: []string{"--colour"}, err: "colour"},
		{name: "bad count", args: []string{"--count", "many"}, err: "count"},
		{name: "zero count", args: []string{"--count", "0"}, err: "count"},
		{name: "bad duration", args: []string{"--drop-every", "often"}, err: "drop-every"},
		{name: "stray argument", args: []string{"cam1"}, err: "cam1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, verbose, err := ParseFlags(c.args, io.Discard)
			if c.err != "" {
				if err == nil || !strings.Contains(err.Error(), c.err) {
					t.Fatalf("error %v, want one naming %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want || verbose != c.verbose {
				t.Errorf("got %+v verbose %v, want %+v verbose %v", got, verbose, c.want, c.verbose)
			}
		})
	}
	if _, _, err := ParseFlags([]string{"-h"}, io.Discard); !errors.Is(err, flag.ErrHelp) {
		t.Errorf("-h: %v, want flag.ErrHelp", err)
	}
}

func TestMainCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out testkit.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- Main(ctx, []string{"--addr", "127.0.0.1:0", "--count", "3", "--codec", "h265"}, &out) }()

	var url string
	testkit.WaitFor(t, 5*time.Second, "the camera URLs", func() bool {
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, "cam3 ") {
				url = strings.Fields(line)[2]
				return true
			}
		}
		return false
	})
	if !strings.HasPrefix(url, "rtsp://127.0.0.1:") || !strings.HasSuffix(url, "/cam3") || strings.HasSuffix(url, ":0/cam3") {
		t.Fatalf("printed URL %q", url)
	}
	r, err := play(url, gortsplib.TransportTCP)
	if err != nil {
		t.Fatalf("play printed URL: %v", err)
	}
	if r.codec != CodecH265 {
		t.Errorf("codec %s, want h265", r.codec)
	}
	r.Close()

	cancel()
	testkit.Returned(t, done, 5*time.Second, "Main after cancel")

	if err := Main(context.Background(), []string{"--codec", "mjpeg"}, io.Discard); err == nil {
		t.Error("Main accepted an unknown codec")
	}
}
