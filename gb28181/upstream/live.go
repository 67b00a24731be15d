package upstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/pion/rtcp"
	"github.com/pion/rtp"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/gb28181/replay"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/registry"
)

// Media transports, from Vigil's side: udp; tcp-passive (the offer says
// a=setup:active: the upper platform connects, Vigil listens); tcp-active
// (the offer says a=setup:passive: Vigil connects to the offer's port).
const (
	TransportUDP        = "udp"
	TransportTCPPassive = "tcp-passive"
	TransportTCPActive  = "tcp-active"
)

// maxRTPPayload keeps an RTP packet with its headers under a 1500-byte MTU.
const maxRTPPayload = 1400

// offer is what Vigil reads of an upper platform's SDP offer.
type offer struct {
	Session   string // Play, Playback or Download
	IP        string
	Port      int
	Transport string // from Vigil's side
	SSRC      string // the y= line, 10 digits (may be empty)
	// Range is the t= line's value (s=Playback and s=Download).
	Range string
	// DownloadSpeed is a=downloadspeed: (s=Download); 0 when absent.
	DownloadSpeed float64
}

// parseOffer reads an INVITE's SDP offer.
func parseOffer(body []byte) (offer, error) {
	var o offer
	setup := ""
	tcp := false
	seenM := false
	for _, line := range strings.Split(string(body), "\n") {
		line = strings.TrimSpace(line)
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		v := line[2:]
		switch line[0] {
		case 's':
			o.Session = strings.TrimSpace(v)
		case 't':
			o.Range = strings.TrimSpace(v)
		case 'c':
			f := strings.Fields(v)
			if len(f) != 3 || net.ParseIP(f[2]) == nil {
				return o, fmt.Errorf("SDP c= line %q has no IP address", v)
			}
			o.IP = f[2]
		case 'm':
			f := strings.Fields(v)
			if seenM || len(f) < 3 || f[0] != "video" {
				continue
			}
			seenM = true
			port, err := strconv.Atoi(f[1])
			if err != nil || port < 0 || port > 65535 {
				return o, fmt.Errorf("SDP m= line %q has no port", v)
			}
			o.Port = port
			tcp = strings.HasPrefix(strings.ToUpper(f[2]), "TCP")
		case 'a':
			if s, ok := strings.CutPrefix(v, "setup:"); ok && seenM {
				setup = strings.TrimSpace(s)
			}
			if s, ok := strings.CutPrefix(v, "downloadspeed:"); ok {
				n, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
				if err != nil || n <= 0 {
					return o, fmt.Errorf("SDP a=downloadspeed:%q is not a positive number", s)
				}
				o.DownloadSpeed = n
			}
		case 'y':
			o.SSRC = strings.TrimSpace(v)
		}
	}
	switch {
	case !seenM:
		return o, errors.New("SDP offer has no m=video line")
	case o.IP == "":
		return o, errors.New("SDP offer has no c= address")
	case !tcp:
		o.Transport = TransportUDP
	case setup == "passive":
		o.Transport = TransportTCPActive
	case setup == "active":
		o.Transport = TransportTCPPassive
	default:
		return o, fmt.Errorf("SDP offer over TCP says a=setup:%q, not active or passive", setup)
	}
	if o.Transport != TransportTCPPassive && o.Port == 0 {
		return o, errors.New("SDP offer has port 0")
	}
	if o.SSRC != "" {
		if n, err := strconv.ParseUint(o.SSRC, 10, 32); err != nil || n == 0 {
			return o, fmt.Errorf("SDP y=%q is not an SSRC (decimal, below 2^32)", o.SSRC)
		}
	}
	return o, nil
}

// answerSDP is Vigil's answer: sendonly PS on payload 96 from ip:port.
func answerSDP(localID, ip string, port int, o offer, ssrc string) []byte {
	var b bytes.Buffer
	proto := "RTP/AVP"
	if o.Transport != TransportUDP {
		proto = "TCP/RTP/AVP"
	}
	fmt.Fprintf(&b, "v=0\r\no=%s 0 0 IN IP4 %s\r\ns=%s\r\nc=IN IP4 %s\r\nt=0 0\r\n", localID, ip, o.Session, ip)
	fmt.Fprintf(&b, "m=video %d %s 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n", port, proto)
	switch o.Transport {
	case TransportTCPPassive:
		b.WriteString("a=setup:passive\r\na=connection:new\r\n")
	case TransportTCPActive:
		b.WriteString("a=setup:active\r\na=connection:new\r\n")
	}
	fmt.Fprintf(&b, "y=%s\r\nf=\r\n", ssrc)
	return b.Bytes()
}

// live is one live view of an upper platform.
type live struct {
	p       *platform
	ch      channel
	o       offer
	ssrc    uint32
	dlg     *sipgo.DialogServerSession
	sub     *ingest.Subscription
	udp     net.PacketConn
	ln      net.Listener
	ctx     context.Context
	cancel  context.CancelFunc
	acked   chan struct{}
	started time.Time
	// rs sends a recorded range instead of the camera's stream
	// (s=Playback, s=Download); w is its media path once connected.
	rs *replay.Session
	w  packetWriter

	// FirstRTP is the time from the ACK to the first RTP packet sent
	// (set once, before the first packet leaves).
	firstRTP time.Duration
}

// onInvite answers an upper platform's INVITE for a shared channel.
func (s *Service) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	p := s.from(req)
	if p == nil {
		respond(req, tx, 403, "Forbidden")
		return
	}
	o, err := parseOffer(req.Body())
	if err != nil {
		s.Log.Info("gb28181 upstream: INVITE with a bad offer", "platform", p.cfg.ID, "error", err)
		respond(req, tx, 400, "Bad SDP")
		return
	}
	if o.Session == sessPlayback || o.Session == sessDownload {
		s.onReplayInvite(req, tx, p, o)
		return
	}
	if o.Session != "Play" {
		respond(req, tx, 488, "Only s=Play, s=Playback and s=Download are served")
		return
	}
	chID := req.Recipient.User
	ctx := s.ctx
	ch, ok, err := s.find(ctx, p, chID)
	if err != nil {
		s.Log.Error("gb28181 upstream: INVITE", "platform", p.cfg.ID, "error", err)
		respond(req, tx, 500, "Server Internal Error")
		return
	}
	var stream *ingest.Stream
	if ok && s.Stream != nil {
		stream = s.Stream(ch.Cam.ID)
	}
	if !ok || stream == nil {
		s.audit(registry.AuditEntry{User: p.cfg.ID, Address: req.Source(), Action: "live", Camera: ch.Cam.ID,
			Result: "denied", Detail: "GB/T 28181 upper platform; channel " + chID + " is not shared with it"})
		respond(req, tx, 404, "Not Found")
		return
	}
	l, err := s.startLive(req, tx, p, ch, o, stream)
	if err != nil {
		s.Log.Warn("gb28181 upstream: INVITE", "platform", p.cfg.ID, "camera", ch.Cam.ID, "error", err)
		return
	}
	s.audit(registry.AuditEntry{User: p.cfg.ID, Address: req.Source(), Action: "live", Camera: ch.Cam.ID,
		Start: l.started, Result: "ok",
		Detail: fmt.Sprintf("GB/T 28181 upper platform; channel %s over %s to %s:%d", ch.ID, o.Transport, o.IP, o.Port)})
}

func (s *Service) audit(e registry.AuditEntry) {
	if s.Audit == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Audit(ctx, e); err != nil {
		s.Log.Error("cannot write the audit log", "action", e.Action, "user", e.User, "error", err)
	}
}

func (s *Service) mediaHost(p *platform) string {
	if s.MediaIP != "" {
		return s.MediaIP
	}
	return s.localHost(p)
}

func (s *Service) bindHost() string {
	if ip := s.udpLaddr.IP; ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	return ""
}

func (s *Service) startLive(req *sip.Request, tx sip.ServerTransaction, p *platform, ch channel, o offer, stream *ingest.Stream) (*live, error) {
	dlg, err := s.dialogs.ReadInvite(req, tx)
	if err != nil {
		respond(req, tx, 400, "Bad Request")
		return nil, err
	}
	return s.startMedia(req, dlg, &live{p: p, ch: ch, o: o, dlg: dlg, acked: make(chan struct{}), started: time.Now()}, stream)
}

// startMedia answers the INVITE of l (dialog read) with its media socket
// and serves it: a live view of stream, or l.rs (stream nil).
func (s *Service) startMedia(req *sip.Request, dlg *sipgo.DialogServerSession, l *live, stream *ingest.Stream) (*live, error) {
	o, p, ch := l.o, l.p, l.ch
	var err error
	ssrc := o.SSRC
	if ssrc == "" {
		ssrc = fmt.Sprintf("0%09d", rand.N(1_000_000_000))
	}
	n, _ := strconv.ParseUint(ssrc, 10, 32)
	l.ssrc = uint32(n)
	port := 9
	switch o.Transport {
	case TransportUDP:
		l.udp, err = net.ListenPacket("udp", net.JoinHostPort(s.bindHost(), "0"))
		if err == nil {
			port = l.udp.LocalAddr().(*net.UDPAddr).Port
		}
	case TransportTCPPassive:
		l.ln, err = net.Listen("tcp", net.JoinHostPort(s.bindHost(), "0"))
		if err == nil {
			port = l.ln.Addr().(*net.TCPAddr).Port
		}
	}
	if err != nil {
		dlg.Respond(500, "Server Internal Error", nil)
		dlg.Close()
		return nil, fmt.Errorf("media socket: %w", err)
	}
	// Subscribing now, before answering, creates demand (a pushed camera
	// is invited) and holds the GOP for the first packet after the ACK.
	if stream != nil {
		l.sub = stream.Subscribe(ingest.SubscribeOptions{Kind: ingest.Viewer, FromGOP: true, QueueLen: 1024})
	}
	l.ctx, l.cancel = context.WithCancel(s.ctx)
	dlg.OnState(func(st sip.DialogState) {
		switch st {
		case sip.DialogStateConfirmed:
			select {
			case <-l.acked:
			default:
				close(l.acked)
			}
		case sip.DialogStateEnded:
			l.cancel()
		}
	})
	callID := req.CallID().Value()
	s.mu.Lock()
	s.lives[callID] = l
	p.st.Viewers++
	s.mu.Unlock()
	if err := dlg.RespondSDP(answerSDP(p.cfg.LocalID, s.mediaHost(p), port, o, ssrc)); err != nil {
		s.endLive(callID, l, false)
		return nil, fmt.Errorf("answer: %w", err)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		err := s.serveLive(l)
		byUs := l.ctx.Err() == nil || s.ctx.Err() != nil
		if err != nil && !errors.Is(err, context.Canceled) {
			s.Log.Info("gb28181 upstream: live view ended", "platform", p.cfg.ID, "camera", ch.Cam.ID, "cause", err)
		}
		s.endLive(callID, l, byUs)
	}()
	return l, nil
}

func (s *Service) endLive(callID string, l *live, bye bool) {
	l.cancel()
	if l.sub != nil {
		l.sub.Close()
	}
	if l.rs != nil {
		l.rs.Close()
	}
	if l.udp != nil {
		l.udp.Close()
	}
	if l.ln != nil {
		l.ln.Close()
	}
	if bye {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		if err := l.dlg.Bye(ctx); err != nil {
			s.Log.Debug("gb28181 upstream: BYE", "platform", l.p.cfg.ID, "error", err)
		}
		cancel()
	}
	l.dlg.Close()
	s.mu.Lock()
	if s.lives[callID] == l {
		delete(s.lives, callID)
		l.p.st.Viewers--
	}
	s.mu.Unlock()
}

// View is one live view of an upper platform.
type View struct {
	Platform  string `json:"platform"`
	Camera    string `json:"camera"`
	Channel   string `json:"channel"`
	Transport string `json:"transport"`
	// Listen is Vigil's media port for a tcp-passive view (the upper
	// platform connects to it); "" otherwise.
	Listen  string    `json:"listen,omitempty"`
	Started time.Time `json:"started"`
	// FirstRTP is the time from the upper platform's ACK to the first RTP
	// packet sent; 0 until then.
	FirstRTP time.Duration `json:"firstRtp"`
}

// Views returns the live views in progress.
func (s *Service) Views() []View {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]View, 0, len(s.lives))
	for _, l := range s.lives {
		v := View{Platform: l.p.cfg.ID, Camera: l.ch.Cam.ID, Channel: l.ch.ID,
			Transport: l.o.Transport, Started: l.started, FirstRTP: l.firstRTP}
		if l.ln != nil {
			v.Listen = l.ln.Addr().String()
		}
		out = append(out, v)
	}
	return out
}

// endLives ends every live view (Serve's end).
func (s *Service) endLives() {
	s.mu.Lock()
	for _, l := range s.lives {
		l.cancel()
	}
	s.mu.Unlock()
}

func (s *Service) onAck(req *sip.Request, tx sip.ServerTransaction) {
	if err := s.dialogs.ReadAck(req, tx); err != nil {
		s.Log.Debug("gb28181 upstream: ACK", "error", err)
	}
}

func (s *Service) onBye(req *sip.Request, tx sip.ServerTransaction) {
	if err := s.dialogs.ReadBye(req, tx); err != nil {
		respond(req, tx, 481, "Call/Transaction Does Not Exist")
	}
	s.mu.Lock()
	l := s.lives[req.CallID().Value()]
	s.mu.Unlock()
	if l != nil {
		l.cancel()
	}
}

// recheck is how often a live view checks that its camera is still shared.
const recheck = 5 * time.Second

// serveLive waits for the ACK, connects the media, and sends the camera's
// units as PS over RTP until the view ends.
func (s *Service) serveLive(l *live) error {
	select {
	case <-l.acked:
	case <-l.ctx.Done():
		return l.ctx.Err()
	case <-time.After(10 * time.Second):
		return errors.New("no ACK within 10s")
	}
	ack := time.Now()
	w, err := s.connect(l)
	if err != nil {
		return err
	}
	defer w.Close()
	if l.rs != nil {
		return s.serveReplay(l, w)
	}
	ctx := l.ctx
	if l.udp != nil {
		rctx, stop := context.WithCancelCause(l.ctx)
		defer stop(nil)
		go watchRTCP(rctx, l.udp, stop)
		ctx = rctx
	}
	check := time.NewTicker(recheck)
	defer check.Stop()
	snd := sender{w: w, ssrc: l.ssrc, seq: uint16(rand.N(1 << 16))}
	var mux *ps.Muxer
	for {
		select {
		case <-check.C:
			if _, ok, err := s.find(l.ctx, l.p, l.ch.ID); err == nil && !ok {
				return fmt.Errorf("camera %s is no longer shared with the platform", l.ch.Cam.ID)
			}
		default:
		}
		u, gap, err := l.sub.Next(ctx)
		if err != nil {
			if c := context.Cause(ctx); errors.Is(c, errRTCPSilent) {
				return c // ended by us: BYE
			}
			return err
		}
		if gap && mux != nil && u.Track.Video {
			mux = nil // restart at this keyframe with fresh headers
		}
		if mux == nil {
			if !u.Track.Video || !u.Keyframe {
				continue
			}
			if mux, err = newMuxer(u.Media); err != nil {
				return err
			}
		}
		pu, ok := psUnit(u, mux, snd.annexB)
		if !ok {
			continue
		}
		snd.annexB = pu.Payload
		if snd.buf, err = mux.AppendUnit(snd.buf[:0], &pu); err != nil {
			return err
		}
		if snd.sent == 0 {
			s.mu.Lock()
			l.firstRTP = time.Since(ack)
			s.mu.Unlock()
			s.Log.Info("gb28181 upstream: live view started", "platform", l.p.cfg.ID, "camera", l.ch.Cam.ID,
				"transport", l.o.Transport, "ackToFirstRTP", l.firstRTP)
		}
		if err := snd.send(uint32(pu.PTS)); err != nil {
			return fmt.Errorf("sending RTP over %s: %w", l.o.Transport, err)
		}
	}
}

// connect opens the media path of the view.
func (s *Service) connect(l *live) (packetWriter, error) {
	dest := net.JoinHostPort(l.o.IP, strconv.Itoa(l.o.Port))
	switch l.o.Transport {
	case TransportUDP:
		addr, err := net.ResolveUDPAddr("udp", dest)
		if err != nil {
			return nil, err
		}
		return &udpWriter{c: l.udp, to: addr}, nil
	case TransportTCPActive:
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err := d.DialContext(l.ctx, "tcp", dest)
		if err != nil {
			return nil, fmt.Errorf("connecting to the upper platform's media port %s: %w", dest, err)
		}
		return &tcpWriter{c: c}, nil
	default: // tcp-passive
		stop := context.AfterFunc(l.ctx, func() { l.ln.Close() })
		defer stop()
		if tl, ok := l.ln.(*net.TCPListener); ok {
			tl.SetDeadline(time.Now().Add(10 * time.Second))
		}
		c, err := l.ln.Accept()
		if err != nil {
			return nil, fmt.Errorf("the upper platform did not connect to our media port within 10s: %w", err)
		}
		return &tcpWriter{c: c}, nil
	}
}

func newMuxer(m *ingest.Media) (*ps.Muxer, error) {
	mux := &ps.Muxer{}
	if v := m.Video(); v != nil {
		switch v.Codec {
		case ingest.CodecH264:
			mux.VideoType = ps.TypeH264
		case ingest.CodecH265:
			mux.VideoType = ps.TypeH265
		default:
			return nil, fmt.Errorf("video codec %s cannot be carried in PS", v.Codec)
		}
	}
	if a := m.Audio(); a != nil {
		switch a.Codec {
		case ingest.CodecPCMA:
			mux.AudioType = ps.TypeG711A
		case ingest.CodecPCMU:
			mux.AudioType = ps.TypeG711U
		}
	}
	return mux, nil
}

var startCode = []byte{0, 0, 0, 1}

// psUnit is u as a PS unit, its Annex-B video payload appended to buf; ok
// is false for a unit the muxer does not carry (AAC audio).
func psUnit(u *ingest.Unit, mux *ps.Muxer, buf []byte) (ps.Unit, bool) {
	ts := u.PTS.Microseconds() * 9 / 100
	pu := ps.Unit{PTS: ts, DTS: ts, Keyframe: u.Keyframe}
	if u.Track.Video {
		pu.Type = mux.VideoType
		pu.Payload = buf[:0]
		for _, d := range u.Data {
			pu.Payload = append(append(pu.Payload, startCode...), d...)
		}
		return pu, true
	}
	if mux.AudioType == 0 || len(u.Data) == 0 {
		return pu, false
	}
	pu.Type, pu.Payload = mux.AudioType, u.Data[0]
	return pu, true
}

type packetWriter interface {
	WritePacket(b []byte) error
	Close() error
}

type udpWriter struct {
	c  net.PacketConn
	to net.Addr
}

func (w *udpWriter) WritePacket(b []byte) error {
	_, err := w.c.WriteTo(b, w.to)
	return err
}

func (w *udpWriter) Close() error { return nil } // the socket is the live's

type tcpWriter struct {
	c     net.Conn
	frame []byte
}

func (w *tcpWriter) WritePacket(b []byte) error {
	var err error
	if w.frame, err = ps.AppendFrame(w.frame[:0], b); err != nil {
		return err
	}
	w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	_, err = w.c.Write(w.frame)
	return err
}

func (w *tcpWriter) Close() error { return w.c.Close() }

// sender cuts PS bytes into RTP packets.
type sender struct {
	w      packetWriter
	ssrc   uint32
	seq    uint16
	buf    []byte // the PS bytes of the unit
	annexB []byte // the unit's video in Annex-B
	pieces [][]byte
	pkt    []byte
	sent   uint64
}

func (s *sender) send(ts uint32) error {
	s.pieces = ps.Payloads(s.pieces[:0], s.buf, maxRTPPayload)
	for i, pc := range s.pieces {
		p := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: s.seq,
			Timestamp: ts, SSRC: s.ssrc, Marker: i == len(s.pieces)-1}, Payload: pc}
		n := p.MarshalSize()
		if cap(s.pkt) < n {
			s.pkt = make([]byte, n)
		}
		s.pkt = s.pkt[:n]
		if _, err := p.MarshalTo(s.pkt); err != nil {
			return err
		}
		if err := s.w.WritePacket(s.pkt); err != nil {
			return err
		}
		s.seq++
		s.sent++
	}
	return nil
}

// errRTCPSilent ends a UDP view whose upper platform stopped sending RTCP.
var errRTCPSilent = errors.New("the upper platform's RTCP stopped")

// rtcpSilenceMin is the least RTCP silence that ends a view.
var rtcpSilenceMin = 15 * time.Second

// watchRTCP reads what the upper platform sends to the view's RTP socket
// (RTCP receiver reports, on the RTP port as with rtcp-mux) until ctx ends
// or the socket closes. Once RTCP has been seen, a silence of 3× the last
// interval between reports, and at least rtcpSilenceMin, ends the view
// (stop with errRTCPSilent) as a BYE would. An upper platform that never
// sends RTCP (many do not) is not affected.
func watchRTCP(ctx context.Context, c net.PacketConn, stop context.CancelCauseFunc) {
	var (
		mu       sync.Mutex
		last     time.Time
		interval time.Duration
	)
	go func() {
		buf := make([]byte, 1500)
		for {
			n, _, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			if _, err := rtcp.Unmarshal(buf[:n]); err != nil {
				continue
			}
			now := time.Now()
			mu.Lock()
			if !last.IsZero() {
				interval = now.Sub(last)
			}
			last = now
			mu.Unlock()
		}
	}()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		mu.Lock()
		l, bound := last, max(rtcpSilenceMin, 3*interval)
		mu.Unlock()
		if !l.IsZero() && time.Since(l) > bound {
			stop(fmt.Errorf("%w: none for %s", errRTCPSilent, time.Since(l).Round(time.Second)))
			return
		}
	}
}
