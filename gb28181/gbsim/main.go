package gbsim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/camsim"
)

// Usage is the synopsis of `vigil camsim --gb28181`.
const Usage = "vigil camsim --gb28181 --sip HOST:PORT --id 20DIGITS --password P [--channels N] [--sip-transport udp|tcp]"

// maxChannels bounds --channels.
const maxChannels = 9999

// HasFlag reports whether args ask for the GB/T 28181 mode of `vigil camsim`
// (a --gb28181 or -gb28181 flag).
func HasFlag(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "--gb28181" || a == "-gb28181" || a == "--gb28181=true" || a == "-gb28181=true" {
			return true
		}
	}
	return false
}

// ChannelID returns the id of channel n (from 1) of a device: the device's
// first 10 digits (its administrative area and unit), type 131 (camera) and a
// 7-digit serial.
func ChannelID(deviceID string, n int) string {
	return fmt.Sprintf("%s131%07d", deviceID[:10], n)
}

// Main runs `vigil camsim --gb28181`: one simulated device registering to
// --sip until ctx ends. It prints the device and its channels, and a line
// when it is registered. A bad flag returns an error naming it; -h returns
// flag.ErrHelp after printing the usage.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	cfg, verbose, err := ParseFlags(args, stdout)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	cfg.Log = slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: level}))
	d, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer d.Close()
	fmt.Fprintf(stdout, "gb28181 device %s registering to %s over %s from %s\n", cfg.ID, cfg.Server, cfg.Transport, d.localIP)
	for _, ch := range cfg.Channels {
		fmt.Fprintf(stdout, "  channel %s  %s\n", ch.ID, ch.Name)
	}
	select {
	case <-ctx.Done():
		return nil
	case <-d.Registered():
		off, _ := d.ClockOffset()
		fmt.Fprintf(stdout, "registered (platform clock %+.1fs from ours)\n", off.Seconds())
	}
	<-ctx.Done()
	return nil
}

// ParseFlags turns `vigil camsim --gb28181` arguments into a Config, and
// reports whether -v was given. Usage and errors are written to output.
func ParseFlags(args []string, output io.Writer) (Config, bool, error) {
	var cfg Config
	fs := flag.NewFlagSet("camsim --gb28181", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintf(output, "usage: %s\n\nA simulated GB/T 28181 device (IPC or NVR) that registers to a platform with digest,\nanswers its catalog and sends its channels' video as MPEG-PS over RTP when invited.\n\n", Usage)
		fs.PrintDefaults()
	}
	fs.Bool("gb28181", true, "simulate a GB/T 28181 device instead of RTSP cameras")
	fs.StringVar(&cfg.Server, "sip", "", "the platform's SIP address HOST:PORT (required)")
	fs.StringVar(&cfg.ID, "id", "", "the device's 20-digit ID (required)")
	fs.StringVar(&cfg.Password, "password", "", "digest password")
	fs.StringVar(&cfg.Realm, "realm", "", "host part of the device's SIP URIs (default: the first 10 digits of --id)")
	fs.StringVar(&cfg.ServerID, "server-id", "", "the platform's 20-digit ID, user of the request URI (default: none)")
	fs.StringVar(&cfg.Transport, "sip-transport", "udp", "SIP transport: udp or tcp")
	fs.StringVar(&cfg.LocalIP, "local-ip", "", "address to listen on and announce (default: the one that routes to --sip)")
	channels := fs.Int("channels", 1, "number of channels (1: an IPC; more: an NVR)")
	fs.StringVar(&cfg.Codec, "codec", camsim.CodecH264, "video codec: h264 or h265")
	fs.StringVar(&cfg.Bitrate, "bitrate", camsim.BitrateNormal, "video bitrate: normal (~1.1 Mbit/s) or high (~2 Mbit/s, h264 only)")
	fs.BoolVar(&cfg.Audio, "audio", false, "add audio to the PS stream")
	fs.StringVar(&cfg.AudioCodec, "audio-codec", AudioAAC, "codec of the --audio: aac, pcma (G.711 A-law) or pcmu (G.711 µ-law)")
	fs.DurationVar(&cfg.Keepalive, "keepalive", 60*time.Second, "keepalive interval")
	fs.DurationVar(&cfg.Expires, "expires", 3600*time.Second, "registration lifetime asked for")
	fs.BoolVar(&cfg.CatalogSubscribe, "catalog-subscribe", false, "accept catalog subscriptions")
	fs.BoolVar(&cfg.MidGOP, "mid-gop", false, "start a stream where the clip is now, not at a keyframe (as a real camera; IFameCmd gets one)")
	ptz := fs.Bool("ptz", true, "channel 1 is a PTZ dome")
	verbose := fs.Bool("v", false, "log every SIP exchange")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return cfg, false, err
		}
		return cfg, false, fmt.Errorf("camsim --gb28181: %w", err)
	}
	if fs.NArg() > 0 {
		return cfg, false, fmt.Errorf("camsim --gb28181: unexpected argument %q", fs.Arg(0))
	}
	if cfg.Server == "" {
		return cfg, false, errors.New("camsim --gb28181: --sip HOST:PORT is required")
	}
	if !isCode(cfg.ID) {
		return cfg, false, fmt.Errorf("camsim --gb28181: --id %q: want the device's 20-digit ID", cfg.ID)
	}
	if *channels < 1 || *channels > maxChannels {
		return cfg, false, fmt.Errorf("camsim --gb28181: --channels %d: want 1 to %d", *channels, maxChannels)
	}
	switch strings.ToLower(cfg.Transport) {
	case "udp", "tcp":
	default:
		return cfg, false, fmt.Errorf("camsim --gb28181: --sip-transport %q: want udp or tcp", cfg.Transport)
	}
	for i := 1; i <= *channels; i++ {
		cfg.Channels = append(cfg.Channels, Channel{ID: ChannelID(cfg.ID, i), Name: "Channel " + strconv.Itoa(i), PTZ: *ptz && i == 1})
	}
	return cfg, *verbose, nil
}
