// Package camsim simulates a fleet of RTSP IP cameras for tests, benchmarks and the demo.
//
// A Server serves Count cameras at rtsp://ADDR/camN (main stream, 1280x720) and
// rtsp://ADDR/camN/sub (sub-stream, 640x360), N from 1 to Count. Each stream loops a
// real encoded clip (embedded in the package) at real-time pace, with a keyframe every
// 2 s and parameter sets before every keyframe; RTP timestamps and sequence numbers keep
// increasing across loops. Readers over UDP and TCP (interleaved) receive the same
// packets: each stream is packetized once and fanned out by gortsplib.
//
// Faults for tests: a password, dropping every connection periodically, stalling the
// media while sessions stay open, withholding keyframes, a wrong clock in the RTCP
// sender reports, and jittered timing. KeyframeOnPlay starts a GOP at every PLAY, as
// many cameras do. They can be switched on a
// running server.
package camsim

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// Codecs of the simulated video.
const (
	CodecH264 = "h264"
	CodecH265 = "h265"
)

// Bitrates of the simulated main stream (Options.Bitrate).
const (
	// BitrateNormal is the main stream of about 1.1 Mbit/s (H.265 about 0.85).
	BitrateNormal = "normal"
	// BitrateHigh is an H.264 main stream of about 2 Mbit/s, as issue 2's benchmark
	// asks for: a 2 s clip of one GOP, looped. H.264 only.
	BitrateHigh = "high"
)

// DefaultAddr is the listen address when Options.Addr is empty.
const DefaultAddr = "127.0.0.1:8554"

// maxCount bounds Options.Count.
const maxCount = 10000

// Options configure a Server. The zero value serves one H.264 camera without audio on
// DefaultAddr.
type Options struct {
	// Addr is the RTSP (TCP) listen address. Port 0 picks a free port; Server.Addr
	// returns the real address after Start. It defaults to DefaultAddr.
	Addr string
	// UDPRTPAddress is the UDP address for RTP to readers that ask for UDP transport; its
	// port must be even, and the port after it is used for RTCP. It defaults to a free
	// pair of consecutive ports on the host of Addr.
	UDPRTPAddress string
	// DisableUDP makes the server offer only TCP (interleaved) transport: a reader that
	// asks for UDP gets 461 Unsupported Transport. It defaults to false.
	DisableUDP bool
	// SilentUDP accepts UDP readers but never sends them a packet, as a firewall that
	// drops UDP would; TCP readers get media as usual. It tests a reader's fallback from
	// UDP to TCP. It defaults to false.
	SilentUDP bool
	// Count is the number of cameras, cam1 to camN. It defaults to 1.
	Count int
	// Codec is the video codec, CodecH264 or CodecH265. It defaults to CodecH264.
	Codec string
	// Bitrate picks the main stream's clip: BitrateNormal or BitrateHigh (H.264 only).
	// The sub-stream is the same for both. It defaults to BitrateNormal.
	Bitrate string
	// Audio adds an AAC track (mono, 48 kHz) to the main and sub streams. It defaults
	// to false.
	Audio bool
	// AudioCodec is the codec of the Audio track: AudioAAC, or AudioPCMU (G.711 µ-law,
	// 8 kHz, a 1 kHz tone in 20 ms packets: what WebRTC can carry to a browser). It
	// defaults to AudioAAC.
	AudioCodec string
	// Username and Password, when Username is set, are demanded from every reader
	// (basic or digest authentication); a reader without them gets 401. They default
	// to empty: no authentication.
	Username, Password string
	// DropEvery, when positive, closes every connection and session every DropEvery,
	// as a flaky network would. It defaults to 0: never.
	DropEvery time.Duration
	// KeyframeOnPlay starts a new GOP at every PLAY, as many cameras do: the next video
	// frame of the stream is a keyframe, for every reader of it. Without it a new reader
	// waits up to 2 s for the next keyframe. It defaults to false.
	KeyframeOnPlay bool
	// StaggerGOPs starts each camera at a different point of its clip, spread
	// evenly over the clip's length by camera number, so that the cameras'
	// keyframes do not all come at the same instant, as with real cameras
	// (which are never in step). Without it every camera starts the clip
	// together: all keyframes, and their bursts of packets, coincide. It
	// defaults to false.
	StaggerGOPs bool
	// Stall starts the server with media stalled: sessions open and play, but no RTP
	// is sent until SetStall(false). It defaults to false.
	Stall bool
	// WithholdKeyframes, when positive, sends no keyframe for this long after Start
	// (only the frames between keyframes). SetWithholdKeyframes switches it at runtime.
	// It defaults to 0.
	WithholdKeyframes time.Duration
	// ClockOffset is added to the wall-clock time in the RTCP sender reports, as a
	// camera whose clock is wrong would send (8h: a clock 8 hours fast; -8760h: one
	// reset to last year). RTP timestamps and pacing stay right. It defaults to 0.
	ClockOffset time.Duration
	// Jitter, when positive, makes the timing as rough as a real camera's: the time in
	// each sender report is off by a random amount within ±Jitter against its RTP
	// timestamp (GStreamer's RTSP server shows about ±1.9 s), and each frame is sent up
	// to Jitter/20 (at most 100 ms) late. It defaults to 0: exact timing.
	Jitter time.Duration
	// SenderReportEvery, when positive, sends an RTCP sender report with the video of
	// every stream at this interval, besides gortsplib's own every 10 s. It defaults
	// to 0: only gortsplib's.
	SenderReportEvery time.Duration
	// Log receives connection and session events. It defaults to a logger that
	// discards everything.
	Log *slog.Logger
}

// Server is a running set of simulated cameras. Create it with New, then Start it;
// Close stops it. Its methods are safe for concurrent use.
type Server struct {
	opts  Options
	log   *slog.Logger
	clips *clips

	stall         atomic.Bool
	withhold      atomic.Bool
	withholdUntil time.Time // from Options.WithholdKeyframes, fixed at Start
	startedAt     time.Time // time of the first frame of every stream; set by Start

	rtsp     *gortsplib.Server
	addr     string
	mu       sync.Mutex
	streams  map[string]*stream // by path without the leading slash: "cam1", "cam1/sub"
	conns    map[*gortsplib.ServerConn]struct{}
	sessions map[*gortsplib.ServerSession]struct{}
	started  bool
	closed   bool

	done chan struct{}
	wg   sync.WaitGroup
}

// New validates the options and parses the fixtures. It starts nothing.
func New(opts Options) (*Server, error) {
	if opts.Addr == "" {
		opts.Addr = DefaultAddr
	}
	if _, _, err := net.SplitHostPort(opts.Addr); err != nil {
		return nil, fmt.Errorf("camsim: addr %q: %w", opts.Addr, err)
	}
	if opts.UDPRTPAddress != "" {
		if opts.DisableUDP {
			return nil, errors.New("camsim: udp rtp address set while udp is disabled")
		}
		if _, err := udpPorts(opts.UDPRTPAddress); err != nil {
			return nil, fmt.Errorf("camsim: udp rtp address %q: %w", opts.UDPRTPAddress, err)
		}
	}
	if opts.SilentUDP && opts.DisableUDP {
		return nil, errors.New("camsim: silent udp set while udp is disabled")
	}
	if opts.Count == 0 {
		opts.Count = 1
	}
	if opts.Count < 0 || opts.Count > maxCount {
		return nil, fmt.Errorf("camsim: count %d out of range 1..%d", opts.Count, maxCount)
	}
	if opts.Codec == "" {
		opts.Codec = CodecH264
	}
	opts.Codec = strings.ToLower(opts.Codec)
	if opts.Codec != CodecH264 && opts.Codec != CodecH265 {
		return nil, fmt.Errorf("camsim: codec %q: want %s or %s", opts.Codec, CodecH264, CodecH265)
	}
	if opts.Bitrate == "" {
		opts.Bitrate = BitrateNormal
	}
	opts.Bitrate = strings.ToLower(opts.Bitrate)
	switch {
	case opts.Bitrate != BitrateNormal && opts.Bitrate != BitrateHigh:
		return nil, fmt.Errorf("camsim: bitrate %q: want %s or %s", opts.Bitrate, BitrateNormal, BitrateHigh)
	case opts.Bitrate == BitrateHigh && opts.Codec != CodecH264:
		return nil, fmt.Errorf("camsim: bitrate %s exists for %s only", BitrateHigh, CodecH264)
	}
	if opts.Username == "" && opts.Password != "" {
		return nil, errors.New("camsim: password without username")
	}
	if opts.DropEvery < 0 {
		return nil, fmt.Errorf("camsim: drop interval %v is negative", opts.DropEvery)
	}
	if opts.Jitter < 0 {
		return nil, fmt.Errorf("camsim: jitter %v is negative", opts.Jitter)
	}
	if opts.SenderReportEvery < 0 {
		return nil, fmt.Errorf("camsim: sender report interval %v is negative", opts.SenderReportEvery)
	}
	if opts.WithholdKeyframes < 0 {
		return nil, fmt.Errorf("camsim: keyframe withholding %v is negative", opts.WithholdKeyframes)
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	switch opts.AudioCodec {
	case "":
		opts.AudioCodec = AudioAAC
	case AudioAAC, AudioPCMU:
	default:
		return nil, fmt.Errorf("camsim: audio codec %q is not %s or %s", opts.AudioCodec, AudioAAC, AudioPCMU)
	}
	cs, err := loadClips(opts.Codec, opts.Bitrate, opts.Audio, opts.AudioCodec)
	if err != nil {
		return nil, fmt.Errorf("camsim: %w", err)
	}
	s := &Server{
		opts:     opts,
		log:      log,
		clips:    cs,
		conns:    make(map[*gortsplib.ServerConn]struct{}),
		sessions: make(map[*gortsplib.ServerSession]struct{}),
		done:     make(chan struct{}),
	}
	s.stall.Store(opts.Stall)
	return s, nil
}

// Start listens and starts streaming. It returns once readers can connect. After an
// error nothing is left open, and Start may be tried again.
func (s *Server) Start() error {
	s.mu.Lock()
	if s.started || s.closed {
		s.mu.Unlock()
		return errors.New("camsim: already started or closed")
	}
	s.started = true
	s.mu.Unlock()
	err := s.start()
	if err != nil {
		s.mu.Lock()
		s.started = false
		s.mu.Unlock()
	}
	return err
}

func (s *Server) start() error {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return fmt.Errorf("camsim: listen: %w", err)
	}
	s.addr = ln.Addr().String()
	host, _, _ := net.SplitHostPort(s.addr)

	var rtpConn, rtcpConn net.PacketConn
	if !s.opts.DisableUDP {
		if s.opts.UDPRTPAddress != "" {
			rtpConn, rtcpConn, err = listenUDPPairAt(s.opts.UDPRTPAddress)
		} else {
			rtpConn, rtcpConn, err = ListenUDPPair(host)
		}
		if err != nil {
			ln.Close()
			return fmt.Errorf("camsim: %w", err)
		}
	}

	s.rtsp = &gortsplib.Server{
		Handler:     (*handler)(s),
		RTSPAddress: s.addr,
		// packets waiting per reader: a keyframe at 2 Mbit/s is ~75; the
		// default 256 overflowed with 300 cameras on a starved machine
		WriteQueueSize: 1024,
		Listen: func(string, string) (net.Listener, error) {
			return ln, nil
		},
	}
	if rtpConn != nil {
		UseUDPPair(s.rtsp, rtpConn, rtcpConn)
	}
	if err := s.rtsp.Start(); err != nil {
		ln.Close()
		if rtpConn != nil {
			rtpConn.Close()
			rtcpConn.Close()
		}
		return fmt.Errorf("camsim: start rtsp server: %w", err)
	}

	start := time.Now()
	s.mu.Lock()
	s.startedAt = start
	if s.opts.WithholdKeyframes > 0 {
		s.withholdUntil = start.Add(s.opts.WithholdKeyframes)
	}
	s.mu.Unlock()
	streams := make(map[string]*stream, 2*s.opts.Count)
	for i := 1; i <= s.opts.Count; i++ {
		for _, sub := range []bool{false, true} {
			path := streamPath(i, sub)
			v := s.clips.main
			if sub {
				v = s.clips.sub
			}
			st, err := newStream(s, path, v, s.clips.audio)
			if err != nil {
				for _, st := range streams {
					st.close()
				}
				s.rtsp.Close()
				return fmt.Errorf("camsim: stream %s: %w", path, err)
			}
			streams[path] = st
		}
	}
	s.mu.Lock()
	s.streams = streams
	s.mu.Unlock()
	for path, st := range streams {
		begin := start
		if s.opts.StaggerGOPs {
			begin = start.Add(-s.staggerOffset(path))
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			st.run(s.done, begin)
		}()
	}
	if s.opts.DropEvery > 0 {
		s.wg.Add(1)
		go s.dropLoop()
	}
	s.log.Info("camsim listening", "addr", s.addr, "udp", s.rtsp.UDPRTPAddress,
		"count", s.opts.Count, "codec", s.opts.Codec, "bitrate", s.opts.Bitrate, "audio", s.opts.Audio)
	return nil
}

// staggerOffset is how far into its clip the camera of a stream path starts
// under Options.StaggerGOPs: camera i of n at (i-1)/n of the main clip's
// length (its main and sub-stream alike). The frames before are not sent
// (they are more than a second late), so its first keyframe comes when the
// clip reaches its next GOP.
func (s *Server) staggerOffset(path string) time.Duration {
	var cam int
	if _, err := fmt.Sscanf(path, "cam%d", &cam); err != nil || cam < 1 || s.opts.Count < 1 {
		return 0
	}
	c := s.clips.main
	total := ticksToDuration(c.duration, c.clockRate)
	return total * time.Duration(cam-1) / time.Duration(s.opts.Count)
}

// Addr returns the RTSP listen address, with the real port once Start has returned.
func (s *Server) Addr() string {
	if s.addr == "" {
		return s.opts.Addr
	}
	return s.addr
}

// URL returns the RTSP URL of camera cam (1-based), its sub-stream when sub is true.
// The URL carries no credentials.
func (s *Server) URL(cam int, sub bool) string {
	return "rtsp://" + s.Addr() + "/" + streamPath(cam, sub)
}

// Count returns the number of cameras.
func (s *Server) Count() int { return s.opts.Count }

// SetStall stops (true) or resumes (false) sending media on every stream. Sessions stay
// open while stalled; the timeline keeps running, so a resumed stream jumps ahead in
// time as a real camera's would after a network stall.
func (s *Server) SetStall(stall bool) { s.stall.Store(stall) }

// SetWithholdKeyframes switches keyframe withholding: while on, every stream sends only
// the frames between keyframes. Switching it off also ends a withholding period set by
// Options.WithholdKeyframes.
func (s *Server) SetWithholdKeyframes(on bool) {
	s.mu.Lock()
	s.withholdUntil = time.Time{}
	s.mu.Unlock()
	s.withhold.Store(on)
}

func (s *Server) withholding(now time.Time) bool {
	if s.withhold.Load() {
		return true
	}
	s.mu.Lock()
	until := s.withholdUntil
	s.mu.Unlock()
	return now.Before(until)
}

// DropConnections closes every open connection and session now, as a network failure
// would. Readers may connect again.
func (s *Server) DropConnections() {
	s.mu.Lock()
	conns := make([]*gortsplib.ServerConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	sessions := make([]*gortsplib.ServerSession, 0, len(s.sessions))
	for ss := range s.sessions {
		sessions = append(sessions, ss)
	}
	s.mu.Unlock()
	for _, ss := range sessions {
		ss.Close()
	}
	for _, c := range conns {
		c.Close()
	}
	if len(conns)+len(sessions) > 0 {
		s.log.Info("camsim dropped connections", "connections", len(conns), "sessions", len(sessions))
	}
}

// Sessions returns the number of open RTSP sessions (readers that have sent SETUP).
func (s *Server) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// Close stops streaming, closes every connection and the listeners, and waits for the
// server's goroutines. It may be called more than once, and on a server never started.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed || !s.started {
		s.closed = true
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.mu.Unlock()

	close(s.done)
	s.wg.Wait()
	for _, st := range s.streams {
		st.close()
	}
	s.rtsp.Close()
}

func (s *Server) dropLoop() {
	defer s.wg.Done()
	t := time.NewTicker(s.opts.DropEvery)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			s.DropConnections()
		}
	}
}

func streamPath(cam int, sub bool) string {
	p := "cam" + strconv.Itoa(cam)
	if sub {
		p += "/sub"
	}
	return p
}

// handler receives gortsplib's callbacks. It is the Server under another method set,
// so that the callbacks stay out of the Server's exported API.
type handler Server

func (h *handler) OnConnOpen(ctx *gortsplib.ServerHandlerOnConnOpenCtx) {
	h.mu.Lock()
	h.conns[ctx.Conn] = struct{}{}
	h.mu.Unlock()
	h.log.Debug("camsim connection opened", "remote", ctx.Conn.NetConn().RemoteAddr().String())
}

func (h *handler) OnConnClose(ctx *gortsplib.ServerHandlerOnConnCloseCtx) {
	h.mu.Lock()
	delete(h.conns, ctx.Conn)
	h.mu.Unlock()
	h.log.Debug("camsim connection closed", "remote", ctx.Conn.NetConn().RemoteAddr().String(), "error", ctx.Error)
}

func (h *handler) OnSessionOpen(ctx *gortsplib.ServerHandlerOnSessionOpenCtx) {
	h.mu.Lock()
	h.sessions[ctx.Session] = struct{}{}
	h.mu.Unlock()
}

func (h *handler) OnSessionClose(ctx *gortsplib.ServerHandlerOnSessionCloseCtx) {
	h.mu.Lock()
	delete(h.sessions, ctx.Session)
	h.mu.Unlock()
	h.log.Debug("camsim session closed", "camera", strings.Trim(ctx.Session.SetuppedPath(), "/"), "error", ctx.Error)
}

// lookup checks credentials and finds the stream of a request path.
func (h *handler) lookup(conn *gortsplib.ServerConn, req *base.Request, path string) (*base.Response, *gortsplib.ServerStream, error) {
	if h.opts.Username != "" && !conn.VerifyCredentials(req, h.opts.Username, h.opts.Password) {
		return &base.Response{StatusCode: base.StatusUnauthorized}, nil, liberrors.ErrServerAuth{}
	}
	h.mu.Lock()
	st, ok := h.streams[strings.Trim(path, "/")]
	h.mu.Unlock()
	if !ok {
		// A real camera answers 404 and keeps the connection open.
		return &base.Response{StatusCode: base.StatusNotFound}, nil, nil
	}
	return &base.Response{StatusCode: base.StatusOK}, st.ss, nil
}

func (h *handler) OnDescribe(ctx *gortsplib.ServerHandlerOnDescribeCtx) (*base.Response, *gortsplib.ServerStream, error) {
	return h.lookup(ctx.Conn, ctx.Request, ctx.Path)
}

func (h *handler) OnSetup(ctx *gortsplib.ServerHandlerOnSetupCtx) (*base.Response, *gortsplib.ServerStream, error) {
	if ctx.Session.State() == gortsplib.ServerSessionStatePreRecord {
		return &base.Response{StatusCode: base.StatusBadRequest}, nil, errors.New("publishing is not supported")
	}
	res, ss, err := h.lookup(ctx.Conn, ctx.Request, ctx.Path)
	if ss != nil && h.opts.SilentUDP && ctx.Transport == gortsplib.TransportUDP {
		h.mu.Lock()
		ss = h.streams[strings.Trim(ctx.Path, "/")].silent
		h.mu.Unlock()
	}
	return res, ss, err
}

func (h *handler) OnPlay(ctx *gortsplib.ServerHandlerOnPlayCtx) (*base.Response, error) {
	h.log.Debug("camsim play", "camera", strings.Trim(ctx.Path, "/"), "remote", ctx.Conn.NetConn().RemoteAddr().String())
	if h.opts.KeyframeOnPlay {
		h.mu.Lock()
		st := h.streams[strings.Trim(ctx.Path, "/")]
		h.mu.Unlock()
		if st != nil {
			st.newGOP.Store(true)
		}
	}
	return &base.Response{StatusCode: base.StatusOK}, nil
}

func (h *handler) OnAnnounce(*gortsplib.ServerHandlerOnAnnounceCtx) (*base.Response, error) {
	return &base.Response{StatusCode: base.StatusMethodNotAllowed}, errors.New("publishing is not supported")
}

// udpPorts parses an RTP address and checks that its port is even and below 65535.
func udpPorts(address string) (int, error) {
	_, p, err := net.SplitHostPort(address)
	if err != nil {
		return 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port >= 65535 {
		return 0, fmt.Errorf("invalid port %q", p)
	}
	if port%2 != 0 {
		return 0, fmt.Errorf("rtp port %d is odd", port)
	}
	return port, nil
}

func listenUDPPairAt(address string) (net.PacketConn, net.PacketConn, error) {
	port, err := udpPorts(address)
	if err != nil {
		return nil, nil, fmt.Errorf("udp rtp address %q: %w", address, err)
	}
	host, _, _ := net.SplitHostPort(address)
	rtp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return nil, nil, fmt.Errorf("listen udp rtp: %w", err)
	}
	rtcp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port+1)))
	if err != nil {
		rtp.Close()
		return nil, nil, fmt.Errorf("listen udp rtcp: %w", err)
	}
	return rtp, rtcp, nil
}

// UseUDPPair has srv serve RTP and RTCP over UDP on the two connections
// bound already (by ListenUDPPair, say), instead of binding ports itself.
func UseUDPPair(srv *gortsplib.Server, rtp, rtcp net.PacketConn) {
	srv.UDPRTPAddress = rtp.LocalAddr().String()
	srv.UDPRTCPAddress = rtcp.LocalAddr().String()
	srv.ListenPacket = func(_, address string) (net.PacketConn, error) {
		switch address {
		case rtp.LocalAddr().String():
			return rtp, nil
		case rtcp.LocalAddr().String():
			return rtcp, nil
		}
		return nil, fmt.Errorf("unexpected udp listen address %q", address)
	}
}

// ListenUDPPair binds a free even port and the odd port after it on host,
// the pair an RTSP server announces for RTP and RTCP.
func ListenUDPPair(host string) (net.PacketConn, net.PacketConn, error) {
	var lastErr error
	for range 100 {
		rtp, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return nil, nil, fmt.Errorf("listen udp: %w", err)
		}
		port := rtp.LocalAddr().(*net.UDPAddr).Port
		if port%2 != 0 || port >= 65535 {
			rtp.Close()
			continue
		}
		rtcp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port+1)))
		if err != nil {
			rtp.Close()
			lastErr = err
			continue
		}
		return rtp, rtcp, nil
	}
	return nil, nil, fmt.Errorf("no free pair of udp ports on %q: %v", host, lastErr)
}
