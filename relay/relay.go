// Package relay sends the hub's camera streams live to browsers over WebRTC
// (WHEP, RFC 9725), without transcoding: every viewer shares one UDP port
// (ICE UDP mux) with ICE-TCP on the same port number as a fallback, a new
// viewer starts from the cached GOP so that a picture appears at once, and each
// viewer reads through its own bounded subscription so that a slow one never
// delays the others.
//
// The HTTP layer (package ui) authorizes the request and calls Offer, Patch and
// Delete; errors carry internal/apierr kinds.
package relay

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// Options configure a Relay.
type Options struct {
	// UDPPort is the ICE UDP mux port shared by every viewer; ICE-TCP listens on
	// the same number. The configuration's default is DefaultUDPPort (8189);
	// 0 picks a free port (tests).
	UDPPort int
	// ListenIP is the address to listen on. It defaults to all interfaces.
	// A loopback address (tests) also makes the relay offer loopback candidates.
	ListenIP string
	// PublicIPs are the NAT 1:1 addresses: host candidates are rewritten to
	// them. It defaults to none (candidates carry the interface addresses).
	PublicIPs []string
	// ICEServers are the STUN/TURN servers used by the server and offered to
	// browsers. It defaults to none.
	ICEServers []ICEServer
	// SessionTimeout ends a session whose ICE is not connected within it.
	// It defaults to 15 seconds.
	SessionTimeout time.Duration
	// MaxSessions caps the sessions of the process, connected or not; an offer
	// beyond it fails with ErrUnavailable (503). It defaults to 1000.
	MaxSessions int
	// MaxPending caps the sessions whose viewer has not connected yet (each
	// holds a peer connection, about 10 goroutines and 200 KB, until it
	// connects or SessionTimeout passes): offers that never connect cannot
	// pile up. An offer beyond it fails with ErrUnavailable (503). It
	// defaults to 256 (16 walls of 16 tiles reconnecting at once).
	MaxPending int
	// TrackWait is how long Offer waits for the first tracks of a camera that
	// is not connected yet before it fails with ErrUnavailable.
	// It defaults to 5 seconds.
	TrackWait time.Duration
	// StepDownLag is how long a unit may wait for a viewer before the relay
	// counts itself overloaded: every viewer then gets keyframes only and
	// new viewers are refused (503) until StepDownFor has passed without a
	// unit this late. It defaults to 2 seconds (a hiccup of a shared host
	// is not an overload; the queue holds several seconds).
	StepDownLag time.Duration
	// StepDownFor is how long the viewers stay on keyframes only after the
	// last unit that waited longer than StepDownLag. It defaults to 10 seconds.
	StepDownFor time.Duration
	// Log receives the relay's messages. It defaults to slog.Default().
	Log *slog.Logger
}

// DefaultUDPPort is the contract's WebRTC media port.
const DefaultUDPPort = 8189

// Source gives the hub stream of a camera. ingest.Fleet satisfies it.
// It returns nil for an unknown camera or a stream the camera does not have.
type Source interface {
	Stream(cameraID string, kind ingest.StreamKind) *ingest.Stream
}

// Relay is the process's WebRTC engine: one pion API, one UDP port, any number
// of viewer sessions.
type Relay struct {
	opts       Options
	src        Source
	log        *slog.Logger
	listenIP   net.IP
	iceServers []webrtc.ICEServer

	ready chan struct{}
	// warnings limits the rate of warnings that repeat (pion's, a camera's
	// B-frames told to every viewer).
	warnings *rateLimitedLog
	// nacked counts the packets viewers asked to be sent again (benchmark figure).
	nacked atomic.Int64
	// load steps every viewer down to keyframes when the relay falls behind.
	load *overload
	// slowWrite, when set (tests), runs before each unit is written to a
	// viewer (given the session's ID): a slow host or viewer.
	slowWrite func(session string)
	// writeErrors counts the writes to viewers that failed (and were lost).
	writeErrors atomic.Int64

	mu       sync.Mutex
	api      *webrtc.API // nil unless running
	udp      *udpConn    // the socket under the ICE UDP mux, while running
	udpPort  int         // the port actually listened on
	sessions map[string]*session
	// reserved counts the sessions being negotiated or running (at most
	// MaxSessions); pending those not connected yet (at most MaxPending).
	reserved int
	pending  int
	packets  map[*ingest.Stream]*packetCache // of the streams being watched
	groups   groups                          // the fan-out goroutines (own lock)
	stopping bool
	ran      bool
	wg       sync.WaitGroup // session goroutines
}

// New validates the options; it opens nothing (Run does).
func New(opts Options, src Source) (*Relay, error) {
	if src == nil {
		return nil, errors.New("relay: nil source")
	}
	if opts.UDPPort < 0 || opts.UDPPort > 65535 {
		return nil, fmt.Errorf("relay: udp port %d is not a port number (0-65535)", opts.UDPPort)
	}
	var ip net.IP
	if opts.ListenIP != "" {
		if ip = net.ParseIP(opts.ListenIP); ip == nil || ip.To4() == nil {
			return nil, fmt.Errorf("relay: listen address %q is not an IPv4 address", opts.ListenIP)
		}
	}
	for _, p := range opts.PublicIPs {
		if net.ParseIP(p) == nil {
			return nil, fmt.Errorf("relay: public IP %q is not an IP address", p)
		}
	}
	var servers []webrtc.ICEServer
	for i, s := range opts.ICEServers {
		if err := s.Validate(); err != nil {
			return nil, fmt.Errorf("relay: ICE server %d: %w", i, err)
		}
		servers = append(servers, webrtc.ICEServer{
			URLs: append([]string(nil), s.URLs...), Username: s.Username, Credential: s.Credential,
		})
	}
	if opts.SessionTimeout < 0 {
		return nil, fmt.Errorf("relay: negative session timeout %v", opts.SessionTimeout)
	}
	if opts.SessionTimeout == 0 {
		opts.SessionTimeout = 15 * time.Second
	}
	if opts.MaxSessions < 0 || opts.MaxPending < 0 {
		return nil, fmt.Errorf("relay: negative session cap (max sessions %d, max pending %d)", opts.MaxSessions, opts.MaxPending)
	}
	if opts.MaxSessions == 0 {
		opts.MaxSessions = 1000
	}
	if opts.MaxPending == 0 {
		opts.MaxPending = 256
	}
	if opts.TrackWait <= 0 {
		opts.TrackWait = 5 * time.Second
	}
	if opts.StepDownLag < 0 || opts.StepDownFor < 0 {
		return nil, fmt.Errorf("relay: negative step-down lag %v or duration %v", opts.StepDownLag, opts.StepDownFor)
	}
	if opts.StepDownLag == 0 {
		opts.StepDownLag = 2 * time.Second
	}
	if opts.StepDownFor == 0 {
		opts.StepDownFor = 10 * time.Second
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	r := &Relay{
		opts:       opts,
		src:        src,
		log:        opts.Log,
		warnings:   newRateLimitedLog(opts.Log, time.Minute),
		listenIP:   ip,
		load:       &overload{lag: opts.StepDownLag, hold: opts.StepDownFor, log: opts.Log},
		iceServers: servers,
		ready:      make(chan struct{}),
		sessions:   map[string]*session{},
		packets:    map[*ingest.Stream]*packetCache{},
	}
	r.groups = groups{r: r, by: map[*ingest.Stream][]*group{}}
	return r, nil
}

// Ready is closed once Run listens and Offer is served.
func (r *Relay) Ready() <-chan struct{} { return r.ready }

// UDPPort returns the port the relay listens on (after Ready), useful when
// Options.UDPPort was 0.
func (r *Relay) UDPPort() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.udpPort
}

// ICEServers returns the STUN/TURN servers to offer to browsers (WHEP Link headers).
func (r *Relay) ICEServers() []ICEServer {
	out := make([]ICEServer, 0, len(r.opts.ICEServers))
	for _, s := range r.opts.ICEServers {
		out = append(out, ICEServer{
			URLs: append([]string(nil), s.URLs...), Username: s.Username, Credential: s.Credential,
		})
	}
	return out
}

// Sessions returns the number of live sessions (connecting or playing).
func (r *Relay) Sessions() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// Run opens the UDP mux and the TCP listener, serves sessions until ctx ends,
// then ends every session and waits for them.
func (r *Relay) Run(ctx context.Context) error {
	r.mu.Lock()
	if r.ran {
		r.mu.Unlock()
		return errors.New("relay: Run called twice")
	}
	r.ran = true
	r.mu.Unlock()
	udp, tcp, err := r.listen()
	if err != nil {
		return err
	}
	lf := &pionLogs{log: r.log, limit: r.warnings}
	defer r.warnings.close()
	uc := newUDPConn(udp)
	uc.onGSOOff = func(err error) {
		r.log.Info("UDP segmentation offload is not available: sending packets one by one", "err", err)
	}
	udpMux := webrtc.NewICEUDPMux(lf.NewLogger("ice-udp"), uc)
	tcpMux := webrtc.NewICETCPMux(lf.NewLogger("ice-tcp"), tcp, 8)
	closeMuxes := func() {
		_ = udpMux.Close()
		_ = tcpMux.Close()
		_ = tcp.Close()
		_ = udp.Close()
	}
	api, err := r.newAPI(lf, udpMux, tcpMux)
	if err != nil {
		closeMuxes()
		return err
	}
	port := udp.LocalAddr().(*net.UDPAddr).Port
	r.mu.Lock()
	r.api = api
	r.udp = uc
	r.udpPort = port
	r.mu.Unlock()
	r.log.Info("webrtc relay listening", "udp", udp.LocalAddr().String(), "tcp", tcp.Addr().String())
	close(r.ready)

	<-ctx.Done()

	r.mu.Lock()
	r.stopping = true
	r.api = nil
	all := make([]*session, 0, len(r.sessions))
	for _, s := range r.sessions {
		all = append(all, s)
	}
	r.mu.Unlock()
	for _, s := range all {
		s.stop()
	}
	r.wg.Wait()
	closeMuxes()
	return nil
}

// listen opens the UDP socket and the TCP listener on the same port number.
func (r *Relay) listen() (*net.UDPConn, *net.TCPListener, error) {
	ip := r.listenIP
	if ip == nil {
		ip = net.IPv4zero
	}
	// With port 0 the UDP port the kernel picks may be taken in TCP: retry.
	attempts := 1
	if r.opts.UDPPort == 0 {
		attempts = 10
	}
	var lastErr error
	for range attempts {
		udp, err := net.ListenUDP("udp4", &net.UDPAddr{IP: ip, Port: r.opts.UDPPort})
		if err != nil {
			return nil, nil, fmt.Errorf("relay: listen udp %s: %w",
				net.JoinHostPort(ip.String(), strconv.Itoa(r.opts.UDPPort)), err)
		}
		port := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: ip, Port: port})
		if err == nil {
			return udp, tcp, nil
		}
		_ = udp.Close()
		lastErr = fmt.Errorf("relay: listen tcp %s: %w", net.JoinHostPort(ip.String(), strconv.Itoa(port)), err)
	}
	return nil, nil, lastErr
}

func (r *Relay) newAPI(lf *pionLogs, udpMux ice.UDPMux, tcpMux ice.TCPMux) (*webrtc.API, error) {
	se := webrtc.SettingEngine{LoggerFactory: lf}
	se.SetICEUDPMux(udpMux)
	se.SetICETCPMux(tcpMux)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeTCP4})
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetICETimeouts(5*time.Second, 10*time.Second, 2*time.Second)
	if r.listenIP != nil && r.listenIP.IsLoopback() {
		se.SetIncludeLoopbackCandidate(true)
	}
	if len(r.opts.PublicIPs) > 0 {
		if err := se.SetICEAddressRewriteRules(webrtc.ICEAddressRewriteRule{
			External:        append([]string(nil), r.opts.PublicIPs...),
			AsCandidateType: webrtc.ICECandidateTypeHost,
			Mode:            webrtc.ICEAddressRewriteReplace,
		}); err != nil {
			return nil, fmt.Errorf("relay: public IPs: %w", err)
		}
	}
	me := &webrtc.MediaEngine{}
	if err := registerCodecs(me); err != nil {
		return nil, fmt.Errorf("relay: register codecs: %w", err)
	}
	ir, err := interceptors(me)
	if err != nil {
		return nil, err
	}
	return webrtc.NewAPI(webrtc.WithSettingEngine(se), webrtc.WithMediaEngine(me),
		webrtc.WithInterceptorRegistry(ir)), nil
}

// nackUnits is how many sent video units (pictures) of a viewer are kept
// for resending their packets when the viewer asks (NACK): 2.5 s at 25
// pictures a second, several round trips, at any bitrate. The payloads are
// the shared ones, so the history costs 32 bytes a picture (see history), 2 KB.
const nackUnits = 64

// interceptors are what a send-only viewer needs from pion: none. A viewer
// sends no media, so the NACK generator and the receiver reports (which run
// a ticker per connection) would do nothing; NACKs are answered from the
// sender's own compact history (pion's responder keeps an allocated packet
// and header per packet sent, 260 KB a viewer) and the sender makes its
// sender reports itself (pion's run a goroutine and a ticker per viewer and
// lock on every packet).
func interceptors(me *webrtc.MediaEngine) (*interceptor.Registry, error) {
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack"}, webrtc.RTPCodecTypeVideo)
	me.RegisterFeedback(webrtc.RTCPFeedback{Type: "nack", Parameter: "pli"}, webrtc.RTPCodecTypeVideo)
	return &interceptor.Registry{}, nil
}

// Offer starts a session that sends the camera's stream to the peer that made
// offerSDP, and returns the session's ID and the SDP answer (ICE candidates
// gathered). stream=sub falls back to main when the camera has no sub-stream.
func (r *Relay) Offer(ctx context.Context, cameraID string, kind ingest.StreamKind, offerSDP string) (sessionID, answerSDP string, err error) {
	offer, err := parseOffer(offerSDP)
	if err != nil {
		return "", "", err
	}
	r.mu.Lock()
	running := r.api != nil
	r.mu.Unlock()
	if !running {
		return "", "", apierr.New(apierr.ErrUnavailable, "the live relay is not running")
	}
	if kind != ingest.Main && kind != ingest.Sub {
		return "", "", apierr.New(apierr.ErrInvalid, "unknown stream %q: use main or sub", kind)
	}
	st := r.src.Stream(cameraID, kind)
	if st == nil && kind == ingest.Sub {
		st = r.src.Stream(cameraID, ingest.Main)
	}
	if st == nil {
		return "", "", apierr.New(apierr.ErrNotFound, "camera %q not found", cameraID)
	}
	media, err := waitMedia(ctx, st, r.opts.TrackWait)
	if err != nil {
		return "", "", fmt.Errorf("camera %q: %w", cameraID, err)
	}
	plan, err := planTracks(media, offer)
	if err != nil {
		return "", "", err
	}

	r.mu.Lock()
	api := r.api
	r.mu.Unlock()
	if api == nil {
		return "", "", apierr.New(apierr.ErrUnavailable, "the live relay is not running")
	}
	id, err := newSessionID()
	if err != nil {
		return "", "", err
	}
	if r.load.keyframesOnly(time.Now()) {
		return "", "", apierr.New(apierr.ErrUnavailable, "the live relay is overloaded: its viewers get keyframes only; try again in a few seconds")
	}
	if err := r.reserve(); err != nil {
		return "", "", err
	}
	s, answer, err := newSession(ctx, r, api, id, cameraID, st, media, plan, offerSDP)
	if err != nil {
		r.release(true)
		return "", "", err
	}
	r.mu.Lock()
	if r.stopping {
		r.mu.Unlock()
		s.closePeer()
		r.release(true)
		return "", "", apierr.New(apierr.ErrUnavailable, "the live relay is shutting down")
	}
	r.sessions[id] = s
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		s.run()
		r.mu.Lock()
		delete(r.sessions, id)
		r.mu.Unlock()
		r.release(!s.wasConnected())
	}()
	return id, answer, nil
}

// reserve takes a session slot and a pending one, or fails with
// ErrUnavailable when either cap is reached.
func (r *Relay) reserve() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reserved >= r.opts.MaxSessions {
		return apierr.New(apierr.ErrUnavailable, "the live relay serves its maximum of %d sessions: try again later", r.opts.MaxSessions)
	}
	if r.pending >= r.opts.MaxPending {
		return apierr.New(apierr.ErrUnavailable, "%d live sessions are waiting for their viewers to connect: try again in a few seconds", r.opts.MaxPending)
	}
	r.reserved++
	r.pending++
	return nil
}

// connectedSlot turns a pending slot into a connected one.
func (r *Relay) connectedSlot() {
	r.mu.Lock()
	r.pending--
	r.mu.Unlock()
}

// release gives back a session slot, and its pending slot when it never connected.
func (r *Relay) release(pending bool) {
	r.mu.Lock()
	r.reserved--
	if pending {
		r.pending--
	}
	r.mu.Unlock()
}

// SteppedDown tells whether the viewers get keyframes only now (the relay
// is overloaded), and how many times that happened.
func (r *Relay) SteppedDown() (now bool, times int64) {
	return r.load.keyframesOnly(time.Now()), r.load.steps.Load()
}

// Playing returns the number of sessions whose viewer connected.
func (r *Relay) Playing() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reserved - r.pending
}

// Pending returns the number of sessions whose viewer has not connected yet.
func (r *Relay) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.pending
}

// Alive tells whether a session exists (connecting or playing).
func (r *Relay) Alive(sessionID string) bool {
	return r.session(sessionID) != nil
}

// waitMedia returns the stream's tracks, waiting up to wait for a camera that
// is not connected yet (until the hub says its first tracks are published).
// It wants the stream: a pushed camera that nothing needed starts now, while
// the viewer's connection is set up, and lingers until the viewer subscribes.
func waitMedia(ctx context.Context, st *ingest.Stream, wait time.Duration) (*ingest.Media, error) {
	defer st.Want()()
	if m := st.Media(); m != nil {
		return m, nil
	}
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-deadline.C:
		return nil, apierr.New(apierr.ErrUnavailable,
			"the camera is not connected yet (no video after %v); try again in a moment", wait)
	case <-st.Published():
		return st.Media(), nil
	}
}

// Patch applies a trickle-ICE SDP fragment (RFC 8840) to a session: the
// peer's further candidates.
func (r *Relay) Patch(ctx context.Context, sessionID, sdpFragment string) error {
	frag, err := parseSDPFragment(sdpFragment)
	if err != nil {
		return err
	}
	s := r.session(sessionID)
	if s == nil {
		return apierr.New(apierr.ErrNotFound, "WHEP session %q not found", sessionID)
	}
	return s.addCandidates(frag)
}

// Delete ends a session.
func (r *Relay) Delete(sessionID string) error {
	s := r.session(sessionID)
	if s == nil {
		return apierr.New(apierr.ErrNotFound, "WHEP session %q not found", sessionID)
	}
	s.stop()
	<-s.done
	return nil
}

// acquirePackets returns the shared packet cache of a stream for one more
// session; releasePackets gives it back and drops it with the last session.
func (r *Relay) acquirePackets(st *ingest.Stream) *packetCache {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.packets[st]
	if c == nil {
		c = newPacketCache()
		r.packets[st] = c
	}
	c.refs++
	return c
}

func (r *Relay) releasePackets(st *ingest.Stream) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if c := r.packets[st]; c != nil {
		if c.refs--; c.refs <= 0 {
			delete(r.packets, st)
		}
	}
}

func (r *Relay) session(id string) *session {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sessions[id]
}

func newSessionID() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("session id: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// describeCodecs lists codec names for messages ("VP8, VP9").
func describeCodecs(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// udpConn returns the socket under the ICE UDP mux (nil when not running).
func (r *Relay) udpConn() *udpConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.udp
}
