package gbsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// SessionInfo describes one media session (an accepted INVITE).
type SessionInfo struct {
	Channel   string
	Transport string // TransportUDP, TransportTCPPassive or TransportTCPActive
	// SSRC is the offered y= (echoed in the answer); RTPSSRC is the SSRC the
	// RTP packets carry (different under Faults.WrongSSRC).
	SSRC    string
	RTPSSRC uint32
	// Remote is where the media goes (UDP, tcp-passive) or came from (tcp-active).
	Remote string
	// LocalPort is the port in the answer SDP.
	LocalPort int
	// Packets and Bytes count the RTP packets sent (payload and header).
	Packets, Bytes int64
	// Keyframes counts the video keyframes sent.
	Keyframes int64
}

// session is one accepted INVITE and the media it sends.
type session struct {
	d         *Device
	dlg       *sipgo.DialogServerSession
	channel   string
	offer     offer
	ssrc      uint32
	udp       net.PacketConn // TransportUDP
	ln        net.Listener   // TransportTCPActive
	localPort int
	faults    Faults // as they were at the INVITE
	keyframe  atomic.Bool

	acked   chan struct{} // closed by the ACK
	ackOnce sync.Once

	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	remote  string
	packets int64
	bytes   int64
	keys    int64
}

// onInvite answers an INVITE for a channel: refused under the faults that
// say so, otherwise 200 with the answer SDP; media starts after the ACK.
func (d *Device) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	channel := req.Recipient.User
	if s := req.GetHeader("Subject"); channel == "" && s != nil {
		channel, _, _ = strings.Cut(s.Value(), ":")
	}
	if !d.hasChannel(channel) {
		d.respond(req, tx, 404, "Not Found")
		return
	}
	faults := d.Faults()
	if faults.NoAnswer {
		d.respond(req, tx, 100, "Trying")
		t := time.NewTimer(64 * sip.T1)
		defer t.Stop()
		select { // keep the transaction: retransmissions and a CANCEL are absorbed
		case <-tx.Done():
		case <-d.ctx.Done():
		case <-t.C:
		}
		return
	}
	if code := faults.RefuseInvite; code != 0 {
		d.respond(req, tx, code, "Refused by gbsim")
		return
	}
	o, err := parseOffer(req.Body())
	if err != nil {
		d.log.Info("gbsim: bad INVITE offer", "error", err)
		d.respond(req, tx, 488, "Not Acceptable Here")
		return
	}
	if slices.Contains(faults.RefuseTransports, o.Transport) {
		d.respond(req, tx, 488, "Not Acceptable Here")
		return
	}
	if _, err := d.loadClips(); err != nil {
		d.log.Error("gbsim: clips", "error", err)
		d.respond(req, tx, 500, "Server Internal Error")
		return
	}
	dlg, err := d.dialogs.ReadInvite(req, tx)
	if err != nil {
		d.respond(req, tx, 400, "Bad Request")
		return
	}
	s, err := d.newSession(dlg, channel, o, faults)
	if err != nil {
		d.log.Error("gbsim: media socket", "error", err)
		_ = dlg.Respond(500, "Server Internal Error", nil)
		dlg.Close()
		return
	}
	answer := answerSDP(d.cfg.ID, d.localIP, s.localPort, o)
	if faults.BadSDP {
		answer = badAnswerSDP(d.cfg.ID)
	}
	// The 200 is sent here rather than with sipgo's RespondSDP, which
	// blocks until the ACK: the session's goroutine waits for it instead,
	// so that Close does not wait on an INVITE handler.
	res := sip.NewSDPResponseFromRequest(dlg.InviteRequest, answer)
	if res.Contact() == nil {
		contact := d.contact()
		res.AppendHeader(&contact)
	}
	dlg.InviteResponse = res
	d.mu.Lock()
	d.sessions[dlg.ID] = s
	d.mu.Unlock()
	if !d.spawn(func() { s.run() }) {
		s.stop()
		d.forget(s)
		d.respond(req, tx, 503, "Service Unavailable")
		return
	}
	if err := tx.Respond(res); err != nil {
		d.log.Info("gbsim: answer INVITE", "channel", channel, "error", err)
		s.stop()
		d.forget(s)
	}
}

func (d *Device) hasChannel(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, ch := range d.channels {
		if ch.ID == id {
			return true
		}
	}
	return false
}

func (d *Device) newSession(dlg *sipgo.DialogServerSession, channel string, o offer, f Faults) (*session, error) {
	s := &session{d: d, dlg: dlg, channel: channel, offer: o, faults: f, acked: make(chan struct{}), done: make(chan struct{})}
	s.ctx, s.cancel = context.WithCancel(d.ctx)
	if o.SSRC != "" {
		v, _ := strconv.ParseUint(o.SSRC, 10, 64)
		s.ssrc = uint32(v)
	} else {
		s.ssrc = rand.Uint32()
	}
	if f.WrongSSRC {
		s.ssrc ^= 0x5A5A
	}
	switch o.Transport {
	case TransportUDP:
		pc, err := net.ListenPacket("udp", net.JoinHostPort(d.localIP, "0"))
		if err != nil {
			return nil, err
		}
		s.udp, s.localPort = pc, pc.LocalAddr().(*net.UDPAddr).Port
		s.remote = net.JoinHostPort(o.IP, strconv.Itoa(o.Port))
	case TransportTCPActive:
		ln, err := net.Listen("tcp", net.JoinHostPort(d.localIP, "0"))
		if err != nil {
			return nil, err
		}
		s.ln, s.localPort = ln, ln.Addr().(*net.TCPAddr).Port
	case TransportTCPPassive:
		// the device connects after the ACK; its port is not known yet
		s.localPort = 9
		s.remote = net.JoinHostPort(o.IP, strconv.Itoa(o.Port))
	}
	return s, nil
}

func (d *Device) forget(s *session) {
	d.mu.Lock()
	if d.sessions[s.dlg.ID] == s {
		delete(d.sessions, s.dlg.ID)
	}
	d.mu.Unlock()
}

// sessionOf finds the session of an in-dialog request.
func (d *Device) sessionOf(req *sip.Request) *session {
	id, err := sip.DialogIDFromRequestUAS(req)
	if err != nil {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sessions[id]
}

func (d *Device) onAck(req *sip.Request, tx sip.ServerTransaction) {
	s := d.sessionOf(req)
	if s == nil {
		d.log.Debug("gbsim: ACK outside a dialog")
		return
	}
	if err := s.dlg.ReadAck(req, tx); err != nil {
		d.log.Debug("gbsim: ACK", "error", err)
		return
	}
	s.ackOnce.Do(func() { close(s.acked) })
}

func (d *Device) onBye(req *sip.Request, tx sip.ServerTransaction) {
	s := d.sessionOf(req)
	if s == nil {
		d.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if err := s.dlg.ReadBye(req, tx); err != nil {
		d.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	d.forget(s)
	s.stop()
}

// keyframe makes the next video unit of the channel's sessions a keyframe
// (every session when id is the device's own).
func (d *Device) keyframe(id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, s := range d.sessions {
		if s.channel == id || id == d.cfg.ID {
			s.keyframe.Store(true)
		}
	}
}

// Sessions lists the media sessions in progress.
func (d *Device) Sessions() []SessionInfo {
	d.mu.Lock()
	ss := make([]*session, 0, len(d.sessions))
	for _, s := range d.sessions {
		ss = append(ss, s)
	}
	d.mu.Unlock()
	out := make([]SessionInfo, len(ss))
	for i, s := range ss {
		out[i] = s.info()
	}
	return out
}

// Hangup ends the channel's sessions with a BYE from the device.
func (d *Device) Hangup(ctx context.Context, channel string) error {
	d.mu.Lock()
	var ss []*session
	for _, s := range d.sessions {
		if s.channel == channel {
			ss = append(ss, s)
		}
	}
	d.mu.Unlock()
	if len(ss) == 0 {
		return fmt.Errorf("gbsim: no session on channel %s", channel)
	}
	var errs []error
	for _, s := range ss {
		errs = append(errs, s.hangup(ctx))
	}
	return errors.Join(errs...)
}

func (s *session) info() SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return SessionInfo{
		Channel: s.channel, Transport: s.offer.Transport, SSRC: s.offer.SSRC, RTPSSRC: s.ssrc,
		Remote: s.remote, LocalPort: s.localPort, Packets: s.packets, Bytes: s.bytes, Keyframes: s.keys,
	}
}

// hangup sends a BYE and stops the media.
func (s *session) hangup(ctx context.Context) error {
	s.d.forget(s)
	err := s.dlg.Bye(ctx)
	s.stop()
	if err != nil {
		return fmt.Errorf("gbsim: BYE on channel %s: %w", s.channel, err)
	}
	return nil
}

// stop ends the media without signalling.
func (s *session) stop() {
	s.cancel()
	s.dlg.Close() // out of sipgo's dialog cache
	if s.udp != nil {
		s.udp.Close()
	}
	if s.ln != nil {
		s.ln.Close()
	}
}

// silent reports whether the faults say this session sends nothing.
func (s *session) silent() bool {
	f := s.faults
	return f.NoRTP || f.BadSDP || slices.Contains(f.SilentTransports, s.offer.Transport)
}

// run sends the media until the session ends; a broken TCP connection ends
// it with a BYE from the device.
func (s *session) run() {
	defer close(s.done)
	defer s.stop()
	// RFC 3261 13.3.1.4: without an ACK in 64*T1 the session ends with a BYE.
	t := time.NewTimer(64 * sip.T1)
	select {
	case <-s.acked:
		t.Stop()
	case <-s.ctx.Done():
		t.Stop()
		return
	case <-t.C:
		s.d.log.Info("gbsim: no ACK to the 200 for the INVITE", "channel", s.channel)
		s.byeAfterFailure()
		return
	}
	if s.silent() {
		<-s.ctx.Done()
		return
	}
	write, closeConn, err := s.connect()
	if err != nil {
		if s.ctx.Err() == nil {
			s.d.log.Info("gbsim: media connection failed", "channel", s.channel, "transport", s.offer.Transport, "error", err)
			s.byeAfterFailure()
		}
		return
	}
	defer closeConn()
	err = s.stream(write)
	if err != nil && s.ctx.Err() == nil {
		s.d.log.Info("gbsim: media stopped", "channel", s.channel, "transport", s.offer.Transport, "error", err)
		s.byeAfterFailure()
	}
}

func (s *session) byeAfterFailure() {
	ctx, cancel := context.WithTimeout(s.d.ctx, 5*time.Second)
	defer cancel()
	if err := s.hangup(ctx); err != nil {
		s.d.log.Debug("gbsim: BYE after media failure", "error", err)
	}
}

// connect opens the media path and returns a writer of one unit's RTP
// packets (a batch) and a closer.
func (s *session) connect() (func([][]byte) error, func(), error) {
	switch s.offer.Transport {
	case TransportUDP:
		dst, err := net.ResolveUDPAddr("udp", s.remote)
		if err != nil {
			return nil, nil, err
		}
		return func(pkts [][]byte) error {
			for _, p := range pkts {
				if _, err := s.udp.WriteTo(p, dst); err != nil {
					return err
				}
			}
			return nil
		}, func() {}, nil
	case TransportTCPPassive:
		var dl net.Dialer
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		defer cancel()
		c, err := dl.DialContext(ctx, "tcp", s.remote)
		if err != nil {
			return nil, nil, err
		}
		return framedWriter(c), func() { c.Close() }, nil
	default: // TransportTCPActive
		type accepted struct {
			c   net.Conn
			err error
		}
		ch := make(chan accepted, 1)
		go func() { c, err := s.ln.Accept(); ch <- accepted{c, err} }()
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case a := <-ch:
			if a.err != nil {
				return nil, nil, a.err
			}
			s.mu.Lock()
			s.remote = a.c.RemoteAddr().String()
			s.mu.Unlock()
			s.ln.Close() // one connection per session
			return framedWriter(a.c), func() { a.c.Close() }, nil
		case <-t.C:
			s.ln.Close()
			return nil, nil, errors.New("the platform did not connect in 10s")
		case <-s.ctx.Done():
			s.ln.Close()
			return nil, nil, s.ctx.Err()
		}
	}
}
