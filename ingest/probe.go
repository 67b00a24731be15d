package ingest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
)

// ProbeResult is what a camera stream offers.
type ProbeResult struct {
	Video *VideoStatus `json:"video"`
	Audio *AudioStatus `json:"audio"`
}

// Probe connects to a camera stream ("test connection"): DESCRIBE, and when
// the SDP does not carry usable parameter sets, PLAY until the first keyframe.
// It returns the codec, picture size and audio, or a *PullError saying what is
// wrong. Without a deadline in ctx it gives up after 15 seconds.
func Probe(ctx context.Context, rawURL, transport string) (ProbeResult, error) {
	return probe(ctx, rawURL, transport, dialGortsplib)
}

func probe(ctx context.Context, rawURL, transport string, dial dialFunc) (ProbeResult, error) {
	timeout := 15 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if _, err := parseRTSPURL(rawURL); err != nil {
		return ProbeResult{}, err
	}
	readTimeout := min(timeout, 10*time.Second)
	var fromSDP *ProbeResult
	var client rtspClient
	keep := func(u *base.URL, transport string, readTimeout time.Duration, log *slog.Logger) (rtspClient, error) {
		c, err := dial(u, transport, readTimeout, log)
		client = c
		return c, err
	}
	p := newPuller(pullerConfig{
		camera: "probe", kind: Main, url: rawURL, transport: transport,
		stream: NewStream("probe"), log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		dial: keep, stall: timeout, readTimeout: readTimeout,
		onOnline: cancel,
		onDescribe: func(readers []*trackReader) bool {
			v := readers[0]
			if !v.params.ready() {
				return false
			}
			t := v.publishTrack()
			fromSDP = &ProbeResult{Video: &VideoStatus{Codec: t.Codec, Width: t.Width, Height: t.Height}}
			if len(readers) > 1 {
				a := readers[1].proto
				fromSDP.Audio = &AudioStatus{Codec: a.Codec, SampleRate: a.SampleRate, Channels: a.ChannelCount}
			}
			return true
		},
	})
	_, err := p.session(ctx)
	if fromSDP != nil {
		return *fromSDP, nil
	}
	p.mu.Lock()
	video, audio := p.video, p.audio
	p.mu.Unlock()
	if video != nil {
		return ProbeResult{Video: video, Audio: audio}, nil
	}
	answered := true
	if fb, ok := client.(interface{ firstBytes() []byte }); ok {
		answered = bytes.HasPrefix(fb.firstBytes(), []byte("RTSP/"))
	}
	pe := classify(err, hostOf(rawURL))
	if errors.Is(err, context.DeadlineExceeded) {
		pe = &PullError{Kind: ErrTimeout, Msg: "the camera sent no usable video before the test timed out"}
	}
	return ProbeResult{}, probeVerdict(pe, answered, hostOf(rawURL))
}

// probeVerdict keeps what a test of a camera says about an RTSP server
// (wrong password, no such stream, codec, no video) but says nothing more
// than "not reachable" about anything else: "test connection" reaches any
// host and port its caller names, and must not become a port scanner that
// tells a refused port from a silent one or echoes another service's banner.
func probeVerdict(pe *PullError, answered bool, host string) *PullError {
	switch {
	case errors.Is(pe, ErrRefused), errors.Is(pe, ErrUnreachable), errors.Is(pe, ErrClosedByCamera),
		!answered && (errors.Is(pe, ErrTimeout) || errors.Is(pe, ErrBadReply)):
		return &PullError{Kind: ErrUnreachable, Msg: fmt.Sprintf("no RTSP camera answered at %s: wrong address or port, "+
			"the camera is off, or a firewall drops the traffic", host)}
	}
	return pe
}
