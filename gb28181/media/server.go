package media

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/vigil-vms/vigil/gb28181/ps"
)

// Media transports, as in the INVITE's SDP.
const (
	TransportUDP        = "udp"
	TransportTCPPassive = "tcp-passive" // the device connects to our media port
	TransportTCPActive  = "tcp-active"  // we connect to the device
)

// Defaults of the Server's options.
const (
	DefaultHandshakeTimeout = 5 * time.Second
	DefaultIdleTimeout      = 15 * time.Second
	DefaultReorderWindow    = 8
	DefaultQueueSize        = 512
	DefaultMaxQueueBytes    = 4 << 20
	DefaultMaxPendingConns  = 64
	DefaultReadBuffer       = 4 << 20
	maxStrangers            = 256
	udpBufSize              = 64 << 10
)

// ErrServerClosed is returned by Expect and Dial after Serve has returned.
var ErrServerClosed = errors.New("gb28181 media server is closed")

// Server receives the RTP streams of every device on one UDP socket and one
// TCP listener. Set its options before Serve; the zero value is ready to use.
type Server struct {
	// Log receives warnings about streams and peers. It defaults to
	// slog.Default().
	Log *slog.Logger
	// HandshakeTimeout bounds how long a TCP connection to the media port
	// may take to send a first RTP packet whose SSRC is expected; then it
	// is closed. It defaults to 5 seconds.
	HandshakeTimeout time.Duration
	// IdleTimeout: a started stream that receives nothing for this long is
	// reported on Receiver.Err (MediaStopped), and its TCP connection is
	// closed. It defaults to 15 seconds.
	IdleTimeout time.Duration
	// ReorderWindow is how many out-of-order UDP packets a receiver holds
	// while waiting for a missing one (at most 64). It defaults to 8.
	ReorderWindow int
	// QueueSize is the number of packets queued for each receiver's
	// demuxer; when it is full, UDP packets are dropped (a loss for the
	// demuxer) and a TCP connection waits. It defaults to 512.
	QueueSize int
	// MaxQueueBytes bounds the bytes queued for each receiver (UDP packets
	// beyond it are dropped, a TCP connection waits). It defaults to 4 MiB.
	MaxQueueBytes int
	// ReadBuffer is the receive buffer Serve asks for on the UDP socket
	// (SO_RCVBUF; Linux caps it at net.core.rmem_max, so raise that for
	// many cameras): a keyframe of each of tens of cameras can arrive in
	// the same few milliseconds. It defaults to 4 MiB; -1 leaves the
	// socket as it is.
	ReadBuffer int
	// MaxPendingConns bounds the TCP connections that have not yet sent an
	// expected SSRC; when a new one would exceed it, the oldest is closed
	// (a device sends its first packet at once, so a flood of silent
	// connections cannot keep it out). It defaults to 64.
	MaxPendingConns int

	mu        sync.RWMutex
	serving   bool
	closed    bool
	udp       net.PacketConn
	tcp       net.Listener
	receivers map[uint32]*Receiver
	strangers map[netip.Addr]*stranger
	conns     map[net.Conn]struct{}
	pending   map[net.Conn]time.Time // connections that have not named an expected SSRC
	wg        sync.WaitGroup
	garbage   atomic.Uint64
	unknown   atomic.Uint64
}

// stranger remembers RTP from one source address with an SSRC nobody expects.
type stranger struct {
	ssrc      uint32
	transport string
	packets   uint64
	last      time.Time
}

// ServerStats counts what the server could not route.
type ServerStats struct {
	// Garbage counts UDP datagrams and TCP connections that were not RTP.
	Garbage uint64
	// UnknownSSRC counts RTP packets with an SSRC no receiver expects.
	UnknownSSRC uint64
}

// Stats returns the server's counters.
func (s *Server) Stats() ServerStats {
	return ServerStats{Garbage: s.garbage.Load(), UnknownSSRC: s.unknown.Load()}
}

func (s *Server) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

func orDefault[T int | time.Duration](v, def T) T {
	if v > 0 {
		return v
	}
	return def
}

func (s *Server) init() {
	if s.receivers == nil {
		s.receivers = make(map[uint32]*Receiver)
		s.strangers = make(map[netip.Addr]*stranger)
		s.conns = make(map[net.Conn]struct{})
		s.pending = make(map[net.Conn]time.Time)
	}
}

// Serve receives RTP on udp and TCP connections accepted on tcp (either may
// be nil) until ctx ends, then closes both, every connection and every
// receiver, and returns nil. It returns an error when a socket fails (a
// moment without file descriptors is waited out).
func (s *Server) Serve(ctx context.Context, udp net.PacketConn, tcp net.Listener) error {
	s.mu.Lock()
	if s.serving || s.closed {
		s.mu.Unlock()
		return errors.New("gb28181 media: Serve called twice")
	}
	s.init()
	s.serving, s.udp, s.tcp = true, udp, tcp
	s.mu.Unlock()

	if uc, ok := udp.(*net.UDPConn); ok && s.ReadBuffer >= 0 {
		if err := uc.SetReadBuffer(orDefault(s.ReadBuffer, DefaultReadBuffer)); err != nil {
			s.log().Warn("gb28181 media: cannot enlarge the UDP receive buffer", "error", err)
		}
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var loops sync.WaitGroup
	if udp != nil {
		loops.Go(func() { cancel(s.readUDP(ctx, udp)) })
	}
	if tcp != nil {
		loops.Go(func() { cancel(s.accept(ctx, tcp)) })
	}
	<-ctx.Done()
	err := context.Cause(ctx)
	if udp != nil {
		udp.Close()
	}
	if tcp != nil {
		tcp.Close()
	}
	loops.Wait()

	s.mu.Lock()
	s.closed = true
	rs := make([]*Receiver, 0, len(s.receivers))
	for _, r := range s.receivers {
		rs = append(rs, r)
	}
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	for _, r := range rs {
		r.Close()
	}
	s.wg.Wait()
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return nil
	}
	return err
}

// Expect reserves ssrc for one incoming stream over transport ("udp",
// "tcp-passive" or "tcp-active"). from is the device's IP address (it may
// be empty): packets from there with another SSRC make WaitStart report
// MediaWrongSSRC. Close the Receiver when the stream ends.
func (s *Server) Expect(ssrc uint32, from, transport string) (*Receiver, error) {
	return s.ExpectUnits(ssrc, from, transport, nil)
}

// ExpectUnits is Expect with the Receiver's OnUnit set to onUnit, as
// setting the field before the first WaitStart, Started, Err or Dial is.
func (s *Server) ExpectUnits(ssrc uint32, from, transport string, onUnit func(u *ps.Unit)) (*Receiver, error) {
	switch transport {
	case TransportUDP, TransportTCPPassive, TransportTCPActive:
	default:
		return nil, fmt.Errorf("gb28181 media: unknown transport %q (want udp, tcp-passive or tcp-active)", transport)
	}
	r := newReceiver(s, ssrc, from, transport)
	r.OnUnit = onUnit
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrServerClosed
	}
	s.init()
	if _, ok := s.receivers[ssrc]; ok {
		return nil, fmt.Errorf("gb28181 media: SSRC %010d is already expected", ssrc)
	}
	s.receivers[ssrc] = r
	return r, nil
}

func (s *Server) remove(r *Receiver) {
	s.mu.Lock()
	if s.receivers[r.ssrc] == r {
		delete(s.receivers, r.ssrc)
	}
	s.mu.Unlock()
}

// lookup returns the receiver expecting ssrc over transport.
func (s *Server) lookup(ssrc uint32, transport string) *Receiver {
	s.mu.RLock()
	r := s.receivers[ssrc]
	s.mu.RUnlock()
	if r == nil || r.transport != transport {
		return nil
	}
	return r
}

// localAddr is our address for transport, for error messages.
func (s *Server) localAddr(transport string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case transport == TransportUDP && s.udp != nil:
		return s.udp.LocalAddr().String()
	case transport == TransportTCPPassive && s.tcp != nil:
		return s.tcp.Addr().String()
	}
	return "the media port"
}

// noteStranger counts a packet with an unexpected SSRC from addr.
func (s *Server) noteStranger(addr netip.Addr, ssrc uint32, transport string) {
	s.unknown.Add(1)
	addr = addr.Unmap()
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.strangers[addr]
	if st == nil {
		if len(s.strangers) >= maxStrangers {
			var oldest netip.Addr
			var t time.Time
			for a, o := range s.strangers {
				if t.IsZero() || o.last.Before(t) {
					oldest, t = a, o.last
				}
			}
			delete(s.strangers, oldest)
		}
		st = &stranger{}
		s.strangers[addr] = st
	}
	st.ssrc, st.transport, st.last = ssrc, transport, now
	st.packets++
}

// strangerSince returns what addr sent with an unexpected SSRC over
// transport since t.
func (s *Server) strangerSince(addr netip.Addr, transport string, t time.Time) (stranger, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.strangers[addr.Unmap()]
	if st == nil || st.transport != transport || st.last.Before(t) {
		return stranger{}, false
	}
	return *st, true
}

func (s *Server) readUDP(ctx context.Context, conn net.PacketConn) error {
	buf := make([]byte, udpBufSize)
	uc, _ := conn.(*net.UDPConn)
	for {
		var n int
		var from netip.AddrPort
		var err error
		if uc != nil {
			n, from, err = uc.ReadFromUDPAddrPort(buf)
		} else {
			var a net.Addr
			n, a, err = conn.ReadFrom(buf)
			if ua, ok := a.(*net.UDPAddr); ok {
				from = ua.AddrPort()
			}
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("gb28181 media: read UDP: %w", err)
		}
		s.routeUDP(buf[:n], from.Addr())
	}
}

func (s *Server) routeUDP(b []byte, from netip.Addr) {
	ssrc, ok := rtpSSRC(b)
	if !ok {
		s.garbage.Add(1)
		return
	}
	r := s.lookup(ssrc, TransportUDP)
	if r == nil {
		s.noteStranger(from, ssrc, TransportUDP)
		return
	}
	r.pushUDP(b)
}

func (s *Server) accept(ctx context.Context, l net.Listener) error {
	var backoff time.Duration
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			if !errors.Is(err, syscall.EMFILE) && !errors.Is(err, syscall.ENFILE) && !errors.Is(err, syscall.ECONNABORTED) {
				return fmt.Errorf("gb28181 media: accept TCP: %w", err)
			}
			// Out of file descriptors (or a connection reset before it was
			// accepted): wait and go on, as net/http does.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log().Warn("gb28181 media: accept TCP; retrying", "error", err, "in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
			}
			continue
		}
		backoff = 0
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			continue
		}
		if len(s.pending) >= orDefault(s.MaxPendingConns, DefaultMaxPendingConns) {
			s.evictPending()
		}
		s.pending[c] = time.Now()
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.servePassive(c)
		}()
	}
}

// evictPending closes the oldest pending connection; s.mu is held.
func (s *Server) evictPending() {
	var oldest net.Conn
	var t time.Time
	for c, at := range s.pending {
		if oldest == nil || at.Before(t) {
			oldest, t = c, at
		}
	}
	if oldest != nil {
		delete(s.pending, oldest)
		oldest.Close()
		s.log().Debug("gb28181 media: too many TCP connections without an expected SSRC; closing the oldest", "from", oldest.RemoteAddr().String())
	}
}

// track registers a connection to close when Serve returns; false when the
// server is closed.
func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.init()
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *Server) untrack(c net.Conn) {
	c.Close()
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// servePassive reads a connection the device opened to the media port: its
// first packets must carry an expected SSRC within HandshakeTimeout.
func (s *Server) servePassive(c net.Conn) {
	defer s.untrack(c)
	donePending := sync.OnceFunc(func() {
		s.mu.Lock()
		delete(s.pending, c)
		s.mu.Unlock()
	})
	defer donePending()
	from := addrOf(c.RemoteAddr())
	c.SetReadDeadline(time.Now().Add(orDefault(s.HandshakeTimeout, DefaultHandshakeTimeout)))
	fr := ps.NewFrameReader(bufio.NewReaderSize(c, 8<<10))
	var noted uint32
	var notedAt time.Time
	for {
		pkt, err := fr.ReadFrame()
		if err != nil {
			return
		}
		ssrc, ok := rtpSSRC(pkt)
		if !ok {
			s.garbage.Add(1)
			s.log().Debug("gb28181 media: closing a TCP connection that does not send RTP", "from", c.RemoteAddr().String())
			return
		}
		r := s.lookup(ssrc, TransportTCPPassive)
		if r == nil {
			// once a second per SSRC: a flood of frames takes no lock
			if now := time.Now(); ssrc != noted || now.Sub(notedAt) > time.Second {
				s.noteStranger(from, ssrc, TransportTCPPassive)
				noted, notedAt = ssrc, now
			} else {
				s.unknown.Add(1)
			}
			continue
		}
		donePending()
		r.readConn(c, fr, pkt)
		return
	}
}

func addrOf(a net.Addr) netip.Addr {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap()
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}
