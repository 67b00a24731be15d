package ingest

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"
	"github.com/pion/rtp"
)

// rtspClient is the part of an RTSP client that a puller uses.
// *gortsplib.Client implements it; tests feed packets without a network.
type rtspClient interface {
	Describe(u *base.URL) (*description.Session, *base.Response, error)
	Setup(baseURL *base.URL, media *description.Media, rtpPort, rtcpPort int) (*base.Response, error)
	OnPacketRTP(medi *description.Media, forma format.Format, cb gortsplib.OnPacketRTPFunc)
	PacketPTS2(medi *description.Media, pkt *rtp.Packet) (int64, bool)
	OnPacketRTCP(medi *description.Media, cb gortsplib.OnPacketRTCPFunc)
	Play(ra *headers.Range) (*base.Response, error)
	Wait() error
	Close()
}

// udpFallbackAfter is how long transport auto waits for UDP packets before
// switching to TCP.
const udpFallbackAfter = 3 * time.Second

// dialFunc creates an RTSP client for a URL; it does not connect yet.
// log receives the session's packet-loss and decode-error reports.
type dialFunc func(u *base.URL, transport string, readTimeout time.Duration, log *slog.Logger) (rtspClient, error)

// dialGortsplib creates a gortsplib client. transport is auto, tcp or udp.
func dialGortsplib(u *base.URL, transport string, readTimeout time.Duration, log *slog.Logger) (rtspClient, error) {
	c := &gortsplib.Client{
		Scheme:                u.Scheme,
		Host:                  u.Host,
		ReadTimeout:           readTimeout,
		WriteTimeout:          readTimeout,
		InitialUDPReadTimeout: udpFallbackAfter,
		UserAgent:             "vigil",
		// a keyframe of a 4K camera is hundreds of packets in one burst: the
		// kernel's default socket buffer (208 KiB) overflows under load
		UDPReadBufferSize: udpReadBuffer,
	}
	// Without these, gortsplib prints every loss with the standard logger.
	// Report them through slog, summed and at most every lossLogEvery.
	rep := &lossReporter{log: log}
	c.OnPacketsLost = rep.lost
	c.OnDecodeError = rep.decodeError
	switch transport {
	case "", "auto":
		// gortsplib tries UDP first and switches to TCP (a new session on the
		// same client) when no packet arrives within InitialUDPReadTimeout
	case "tcp":
		v := gortsplib.TransportTCP
		c.Transport = &v
	case "udp":
		v := gortsplib.TransportUDP
		c.Transport = &v
	default:
		return nil, fmt.Errorf("unknown transport %q (want auto, tcp or udp)", transport)
	}
	sn := &sniffer{}
	dialer := &net.Dialer{}
	c.DialContext = func(ctx context.Context, network, address string) (net.Conn, error) {
		nc, err := dialer.DialContext(ctx, network, address)
		if err != nil {
			return nil, err
		}
		return newSniffConn(nc, sn), nil
	}
	if err := c.Start2(); err != nil {
		return nil, fmt.Errorf("start rtsp client: %w", err)
	}
	return &gortsplibClient{Client: c, sniff: sn}, nil
}

// udpReadBuffer is the socket receive buffer asked for UDP transport (the
// kernel caps it at net.core.rmem_max).
const udpReadBuffer = 4 << 20

// lossLogEvery bounds how often packet loss and decode errors are logged per session.
const lossLogEvery = 30 * time.Second

// lossReporter sums a session's lost packets and decode errors and logs them
// at a limited rate.
type lossReporter struct {
	log *slog.Logger

	mu         sync.Mutex
	lostN      uint64
	decodeN    uint64
	lastDecode string
	lastLog    time.Time
}

func (r *lossReporter) lost(n uint64) {
	r.mu.Lock()
	r.lostN += n
	r.flushLocked()
	r.mu.Unlock()
}

func (r *lossReporter) decodeError(err error) {
	r.mu.Lock()
	r.decodeN++
	r.lastDecode = err.Error()
	r.flushLocked()
	r.mu.Unlock()
}

func (r *lossReporter) flushLocked() {
	if r.log == nil || time.Since(r.lastLog) < lossLogEvery {
		return
	}
	r.lastLog = time.Now()
	if r.lostN > 0 {
		r.log.Warn("RTP packets lost", "packets", r.lostN, "hint", "network loss, or UDP from the camera overflowing: transport tcp avoids it")
		r.lostN = 0
	}
	if r.decodeN > 0 {
		r.log.Warn("RTP packets could not be decoded", "count", r.decodeN, "last", r.lastDecode)
		r.decodeN = 0
	}
}

// gortsplibClient is a gortsplib client that remembers how the camera's first answer began.
type gortsplibClient struct {
	*gortsplib.Client
	sniff *sniffer
}

func (c *gortsplibClient) firstBytes() []byte { return c.sniff.get() }

// sniffer keeps the first bytes a camera sent, to tell an answer that is not RTSP at all.
type sniffer struct {
	full atomic.Bool // sniffLen bytes kept: nothing more to do per read
	mu   sync.Mutex
	buf  []byte
}

const sniffLen = 48

func (s *sniffer) add(b []byte) {
	if s.full.Load() {
		return
	}
	s.mu.Lock()
	if n := sniffLen - len(s.buf); n > 0 {
		s.buf = append(s.buf, b[:min(n, len(b))]...)
	}
	if len(s.buf) >= sniffLen {
		s.full.Store(true)
	}
	s.mu.Unlock()
}

func (s *sniffer) get() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.buf)
}

// connReadBuffer is how much a camera connection reads from the socket at
// once. gortsplib reads through a 4 KiB buffer, and each interleaved RTP
// packet's payload (~1.4 KB) on its own, so that a burst of packets took a
// read system call per packet or two. Reading whatever has arrived, up to
// this, in one call roughly halved the reads of `vigil serve` recording 200
// cameras at 2 Mbit/s (15.6–20.5 k/s before, 9.9–10.8 k/s after; issue 17).
const connReadBuffer = 16 << 10

// sniffConn is a camera's connection: it shows the first bytes read to its
// sniffer, and reads from the socket in blocks of connReadBuffer (a
// bufio.Reader: a read at least that large goes straight to the socket).
type sniffConn struct {
	net.Conn
	r *bufio.Reader
}

func newSniffConn(nc net.Conn, s *sniffer) *sniffConn {
	return &sniffConn{Conn: nc, r: bufio.NewReaderSize(sniffReader{nc, s}, connReadBuffer)}
}

func (c *sniffConn) Read(b []byte) (int, error) { return c.r.Read(b) }

// sniffReader reads the socket and shows what it read to the sniffer.
type sniffReader struct {
	nc net.Conn
	s  *sniffer
}

func (r sniffReader) Read(b []byte) (int, error) {
	n, err := r.nc.Read(b)
	if n > 0 {
		r.s.add(b[:n])
	}
	return n, err
}

// notRTSP returns a *PullError when a camera's first answer was not RTSP
// (typically an HTTP server at the RTSP port), else nil.
func notRTSP(first []byte) *PullError {
	if len(first) == 0 || bytes.HasPrefix(first, []byte("RTSP/")) || first[0] == '$' ||
		bytes.HasPrefix([]byte("RTSP/"), first) {
		return nil
	}
	// The answer itself is not quoted: whatever service answers at an address
	// an admin typed is none of the status page's business.
	return &PullError{Kind: ErrBadReply, Msg: "the camera's answer is not RTSP: is this the RTSP port?"}
}

func printable(b []byte) string {
	out := make([]rune, 0, len(b))
	for _, c := range b {
		if c >= 0x20 && c < 0x7f {
			out = append(out, rune(c))
		} else {
			out = append(out, '.')
		}
	}
	return string(out)
}

// parseRTSPURL checks a camera URL.
func parseRTSPURL(raw string) (*base.URL, error) {
	u, err := base.ParseURL(raw)
	if err != nil {
		return nil, &PullError{Kind: ErrInvalidURL, Msg: "the camera URL is invalid", Err: fmt.Errorf("%s", RedactURL(err.Error()))}
	}
	if u.Scheme != "rtsp" && u.Scheme != "rtsps" {
		return nil, &PullError{Kind: ErrInvalidURL, Msg: fmt.Sprintf("unsupported URL scheme %q (want rtsp or rtsps)", u.Scheme)}
	}
	if u.Host == "" {
		return nil, &PullError{Kind: ErrInvalidURL, Msg: "the camera URL has no host"}
	}
	return u, nil
}

// closeOnDone closes c when ctx ends, so that a blocking request returns.
// The returned function stops the watch; call it before returning.
func closeOnDone(ctx context.Context, c rtspClient) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case <-ctx.Done():
			c.Close()
		case <-done:
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}
