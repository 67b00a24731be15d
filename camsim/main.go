package camsim

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
)

// Main runs `vigil camsim`: it parses args (the arguments after "camsim"), starts a
// Server, prints the URL of every camera stream to stdout, and serves until ctx is
// cancelled. Logs go to stdout as well. A bad flag returns an error that names it;
// -h returns flag.ErrHelp after printing the usage.
func Main(ctx context.Context, args []string, stdout io.Writer) error {
	opts, verbose, err := ParseFlags(args, stdout)
	if err != nil {
		return err
	}
	level := slog.LevelInfo
	if verbose {
		level = slog.LevelDebug
	}
	opts.Log = slog.New(slog.NewTextHandler(stdout, &slog.HandlerOptions{Level: level}))

	s, err := New(opts)
	if err != nil {
		return err
	}
	if err := s.Start(); err != nil {
		return err
	}
	defer s.Close()

	for i := 1; i <= s.Count(); i++ {
		fmt.Fprintf(stdout, "cam%d  main %s  sub %s\n", i, s.URL(i, false), s.URL(i, true))
	}
	if opts.Username != "" {
		fmt.Fprintf(stdout, "readers must authenticate as %q\n", opts.Username)
	}
	<-ctx.Done()
	return nil
}

// ParseFlags turns `vigil camsim` arguments into Options, and reports whether -v
// (debug logging) was given. Usage and errors are written to output.
func ParseFlags(args []string, output io.Writer) (Options, bool, error) {
	var o Options
	fs := flag.NewFlagSet("camsim", flag.ContinueOnError)
	fs.SetOutput(output)
	fs.Usage = func() {
		fmt.Fprintf(output, "usage: vigil camsim [flags]\n\nSimulated RTSP cameras at rtsp://ADDR/camN and rtsp://ADDR/camN/sub.\nWith --gb28181, a simulated GB/T 28181 device instead (vigil camsim --gb28181 -h).\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&o.Addr, "addr", DefaultAddr, "RTSP listen address (port 0 picks a free port)")
	fs.StringVar(&o.UDPRTPAddress, "udp-rtp", "", "UDP address for RTP, even port; RTCP uses the next port (default: a free pair)")
	fs.BoolVar(&o.DisableUDP, "no-udp", false, "offer only TCP (interleaved) transport")
	fs.BoolVar(&o.SilentUDP, "silent-udp", false, "accept UDP readers but send them nothing (fault)")
	fs.IntVar(&o.Count, "count", 1, "number of cameras")
	fs.StringVar(&o.Codec, "codec", CodecH264, "video codec: h264 or h265")
	fs.StringVar(&o.Bitrate, "bitrate", BitrateNormal, "main stream bitrate: normal (~1.1 Mbit/s) or high (~2 Mbit/s, h264 only)")
	fs.BoolVar(&o.Audio, "audio", false, "add an AAC audio track to every stream")
	fs.StringVar(&o.AudioCodec, "audio-codec", "", "codec of the --audio track: aac (the default), or pcmu (G.711 µ-law, which WebRTC carries)")
	fs.StringVar(&o.Username, "username", "", "demand this username from readers")
	fs.StringVar(&o.Password, "password", "", "demand this password from readers (with -username)")
	fs.DurationVar(&o.DropEvery, "drop-every", 0, "close every connection at this interval (fault)")
	fs.BoolVar(&o.Stall, "stall", false, "keep sessions open but send no media (fault)")
	fs.DurationVar(&o.WithholdKeyframes, "withhold-keyframes", 0, "send no keyframe for this long after start (fault)")
	fs.DurationVar(&o.ClockOffset, "clock-offset", 0, "add this to the clock in RTCP sender reports, e.g. 8h or -8760h (fault)")
	fs.DurationVar(&o.Jitter, "jitter", 0, "jitter sender report times by up to ± this, and frames by up to 1/20 of it (fault; 1.9s is like GStreamer)")
	fs.DurationVar(&o.SenderReportEvery, "sr-every", 0, "also send an RTCP sender report at this interval (default: gortsplib's, every 10s)")
	fs.BoolVar(&o.StaggerGOPs, "stagger", false, "start each camera at a different point of the clip, so that their keyframes do not coincide (as with real cameras)")
	fs.BoolVar(&o.KeyframeOnPlay, "keyframe-on-play", false, "start a new GOP at every PLAY, as many cameras do")
	verbose := fs.Bool("v", false, "log every connection and session")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return o, false, err
		}
		return o, false, fmt.Errorf("camsim: %w", err)
	}
	if fs.NArg() > 0 {
		return o, false, fmt.Errorf("camsim: unexpected argument %q", fs.Arg(0))
	}
	if o.Count <= 0 {
		return o, false, fmt.Errorf("camsim: -count %d: must be at least 1", o.Count)
	}
	return o, *verbose, nil
}
