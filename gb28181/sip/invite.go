package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
)

// InviteRequest asks a device for a channel's live video.
type InviteRequest struct {
	Device, Channel string
	SSRC            string // 10 digits, written in y=
	Transport       string // udp | tcp-passive | tcp-active
	MediaIP         string // address written in c= (our media address as the device reaches it)
	MediaPort       int
}

func (r InviteRequest) check() error {
	if why := idProblem(r.Device); why != "" {
		return fmt.Errorf("gb28181 invite: device ID %s", why)
	}
	if why := idProblem(r.Channel); why != "" {
		return fmt.Errorf("gb28181 invite: channel ID %s", why)
	}
	if len(r.SSRC) != 10 || !digits(r.SSRC) {
		return fmt.Errorf("gb28181 invite: SSRC %q is not 10 digits", r.SSRC)
	}
	switch r.Transport {
	case TransportUDP, TransportTCPPassive, TransportTCPActive:
	default:
		return fmt.Errorf("gb28181 invite: transport %q is not udp, tcp-passive or tcp-active", r.Transport)
	}
	if net.ParseIP(r.MediaIP) == nil {
		return fmt.Errorf("gb28181 invite: media IP %q is not an IP address", r.MediaIP)
	}
	if r.MediaPort <= 0 || r.MediaPort > 65535 {
		return fmt.Errorf("gb28181 invite: media port %d is not in 1…65535", r.MediaPort)
	}
	return nil
}

func idProblem(id string) string {
	if len(id) != 20 || !digits(id) {
		return fmt.Sprintf("%q is not 20 digits", clipText(id, 30))
	}
	return ""
}

func digits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Call is a live stream a device sends after an INVITE.
type Call struct {
	s       *Server
	callID  string
	device  string
	channel string
	answer  Answer
	sess    *sipgo.DialogClientSession

	done chan struct{}
	once sync.Once
	mu   sync.Mutex
	bye  bool // the device hung up
}

// Answer returns the device's parsed answer SDP.
func (c *Call) Answer() Answer { return c.answer }

// Done is closed when the call ends: the device sent BYE, Bye was called,
// or the server stopped.
func (c *Call) Done() <-chan struct{} { return c.done }

// HungUp reports whether the device ended the call (sent BYE).
func (c *Call) HungUp() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bye
}

// Bye hangs up: BYE to the device, waiting for its answer until ctx ends
// or RequestTimeout. Done is closed in any case. A call the device already
// ended is not hung up again.
func (c *Call) Bye(ctx context.Context) error {
	select {
	case <-c.done:
		return nil
	default:
	}
	defer c.end(false)
	ctx, cancel := context.WithTimeout(ctx, c.s.RequestTimeout)
	defer cancel()
	if err := c.sess.Bye(ctx); err != nil {
		return fmt.Errorf("gb28181 device %s, channel %s: BYE: %w", c.device, c.channel, err)
	}
	return nil
}

func (c *Call) end(byDevice bool) {
	c.once.Do(func() {
		c.mu.Lock()
		c.bye = byDevice
		c.mu.Unlock()
		c.s.mu.Lock()
		delete(c.s.calls, c.callID)
		c.s.mu.Unlock()
		close(c.done)
	})
}

// Invite asks a device for a channel's live video: INVITE with the SDP
// offer, then ACK. It ends within InviteTimeout (or ctx) with the call or a
// *InviteError: InviteOffline, InviteNoAnswer (nothing final in time; a
// CANCEL follows a provisional answer), InviteRefused (Code set) or
// InviteBadSDP (the 2xx is ACKed and hung up at once). A malformed request
// (IDs, SSRC, transport, media address) is a plain error.
func (s *Server) Invite(ctx context.Context, ir InviteRequest) (*Call, error) {
	if err := ir.check(); err != nil {
		return nil, err
	}
	ierr := func(kind InviteErrorKind, code int, msg string) *InviteError {
		return &InviteError{Kind: kind, Code: code, Msg: msg, Device: ir.Device, Channel: ir.Channel,
			Transport: ir.Transport, Timeout: s.InviteTimeout}
	}
	r, err := s.route(ir.Device, "INVITE")
	if err != nil {
		return nil, ierr(InviteOffline, 0, "")
	}
	req := s.newRequest(sip.INVITE, r, ir.Channel)
	contact := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: s.ID, Host: r.local, Port: r.port}}
	req.AppendHeader(&contact)
	req.AppendHeader(sip.NewHeader("Subject", fmt.Sprintf("%s:%s,%s:0", ir.Channel, ir.SSRC, s.ID)))
	req.AppendHeader(sip.NewHeader("Content-Type", "APPLICATION/SDP"))
	req.SetBody(offerSDP(s.ID, ir))

	cli, err := sipgo.NewClient(s.ua, sipgo.WithClientHostname(r.local), sipgo.WithClientPort(r.port),
		sipgo.WithClientLogger(s.Log))
	if err != nil {
		return nil, fmt.Errorf("gb28181 invite: %w", err)
	}
	// requests in the dialog (ACK, BYE) go where the answer came from
	dua := &sipgo.DialogUA{Client: cli, ContactHDR: contact, RewriteContact: true}

	// WaitAnswer waits for a provisional answer before a CANCEL unless the
	// cause is WaitAnswerForceCancelErr; we send the CANCEL ourselves.
	wctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	stop := context.AfterFunc(ctx, func() { cancel(sipgo.WaitAnswerForceCancelErr) })
	defer stop()
	timer := time.AfterFunc(s.InviteTimeout, func() { cancel(sipgo.WaitAnswerForceCancelErr) })
	defer timer.Stop()

	sess, err := dua.WriteInvite(wctx, req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, ierr(InviteNoAnswer, 0, fmt.Sprintf("the INVITE could not be sent over %s to %s: %v", r.transport, r.dest, err))
	}
	err = sess.WaitAnswer(wctx, sipgo.AnswerOptions{})
	var refused *sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &refused):
		return nil, ierr(InviteRefused, refused.Res.StatusCode, refused.Res.Reason)
	case err != nil:
		if res := sess.InviteResponse; res != nil && res.IsProvisional() {
			s.cancelInvite(cli, req)
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if wctx.Err() != nil {
			return nil, ierr(InviteNoAnswer, 0, "")
		}
		return nil, ierr(InviteNoAnswer, 0, err.Error())
	}
	res := sess.InviteResponse
	ackCtx, ackCancel := context.WithTimeout(context.Background(), s.RequestTimeout)
	defer ackCancel()
	if err := sess.Ack(ackCtx); err != nil {
		s.Log.Info("gb28181 invite: ACK", "device", ir.Device, "channel", ir.Channel, "error", err)
	}
	call := &Call{s: s, device: ir.Device, channel: ir.Channel, sess: sess, done: make(chan struct{})}
	if id := res.CallID(); id != nil {
		call.callID = id.Value()
	}
	ans, err := parseAnswer(res.Body(), ir.Transport)
	if err != nil {
		call.byeLater()
		return nil, ierr(InviteBadSDP, res.StatusCode, err.Error())
	}
	call.answer = ans
	s.mu.Lock()
	if s.calls == nil || s.ctx.Err() != nil {
		s.mu.Unlock()
		call.byeLater()
		return nil, ierr(InviteNoAnswer, 0, "the SIP server is stopping")
	}
	s.calls[call.callID] = call
	s.mu.Unlock()
	return call, nil
}

// byeLater hangs up a call nobody will use, in the background (Invite
// returns at once).
func (c *Call) byeLater() {
	c.s.bg.Add(1)
	go func() {
		defer c.s.bg.Done()
		if err := c.Bye(context.Background()); err != nil {
			c.s.Log.Info("gb28181 invite: BYE after a failed INVITE", "device", c.device, "channel", c.channel, "error", err)
		}
	}()
}

// cancelInvite sends a CANCEL for an INVITE that got a provisional answer
// and nothing final in time, in the background.
func (s *Server) cancelInvite(cli *sipgo.Client, invite *sip.Request) {
	c := sip.NewRequest(sip.CANCEL, invite.Recipient)
	c.AppendHeader(sip.HeaderClone(invite.Via()))
	c.AppendHeader(sip.HeaderClone(invite.From()))
	c.AppendHeader(sip.HeaderClone(invite.To()))
	c.AppendHeader(sip.HeaderClone(invite.CallID()))
	c.AppendHeader(&sip.CSeqHeader{SeqNo: invite.CSeq().SeqNo, MethodName: sip.CANCEL})
	mf := sip.MaxForwardsHeader(70)
	c.AppendHeader(&mf)
	c.SetBody(nil)
	c.SetTransport(invite.Transport())
	c.SetDestination(invite.Destination())
	invite.Laddr.Copy(&c.Laddr)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(context.Background(), s.RequestTimeout)
		defer cancel()
		if _, err := cli.Do(ctx, c, keepRequest); err != nil {
			s.Log.Debug("gb28181 invite: CANCEL", "error", err)
		}
	}()
}

// onBye handles a device hanging up a call.
func (s *Server) onBye(req *sip.Request, tx sip.ServerTransaction) {
	var call *Call
	if id := req.CallID(); id != nil {
		s.mu.Lock()
		call = s.calls[id.Value()]
		s.mu.Unlock()
	}
	if call == nil {
		s.respond(req, tx, 481, "Call/Transaction Does Not Exist")
		return
	}
	if err := call.sess.ReadBye(req, tx); err != nil {
		s.Log.Debug("gb28181 BYE from device", "device", call.device, "error", err)
	}
	s.Log.Info("gb28181 device hung up", "device", call.device, "channel", call.channel)
	call.end(true)
}

// hangUpAll sends BYE to every call still up, in parallel, bounded by one
// RequestTimeout.
func (s *Server) hangUpAll() {
	s.mu.Lock()
	calls := make([]*Call, 0, len(s.calls))
	for _, c := range s.calls {
		calls = append(calls, c)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.Bye(context.Background())
		}()
	}
	wg.Wait()
}

// unhandledResponse sees answers that match no transaction: retransmissions,
// and answers after we gave up. A 2xx to an INVITE that Invite already
// reported as unanswered would leave the device streaming to nobody (and,
// for devices with one stream per channel, refusing the next INVITE), so
// it is ACKed and hung up.
func (s *Server) unhandledResponse(r *sip.Response) {
	cseq, id := r.CSeq(), r.CallID()
	if !r.IsSuccess() || cseq == nil || cseq.MethodName != sip.INVITE || id == nil {
		s.Log.Debug("gb28181 answer to no pending request", "status", r.StatusCode, "source", r.Source())
		return
	}
	now := time.Now()
	s.mu.Lock()
	_, known := s.calls[id.Value()]
	_, seen := s.late[id.Value()]
	if !known && !seen {
		for k, at := range s.late { // bounded: entries live a minute
			if now.Sub(at) > time.Minute {
				delete(s.late, k)
			}
		}
		if len(s.late) < 1024 {
			s.late[id.Value()] = now
		}
	}
	ctx := s.ctx
	s.mu.Unlock()
	if known || ctx == nil {
		return // a 200 retransmitted for a call that is up: its dialog ACKs it
	}
	transport := sip.NetworkToUpper(r.Transport())
	r0 := route{dest: r.Source(), transport: transport, port: s.udpPort}
	if transport == "TCP" {
		r0.port = s.tcpPort
	}
	r0.local = s.localHost(transport, r0.dest)
	ack := s.inDialog(sip.ACK, r, r0, cseq.SeqNo)
	if err := s.client.WriteRequest(ack, keepRequest); err != nil {
		s.Log.Debug("gb28181 late INVITE answer: ACK", "error", err)
	}
	if seen {
		return // a retransmission: ACKed again, BYE already sent
	}
	s.Log.Info("gb28181 INVITE answered after the timeout: hanging up", "source", r.Source())
	bye := s.inDialog(sip.BYE, r, r0, cseq.SeqNo+1)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		ctx, cancel := context.WithTimeout(ctx, s.RequestTimeout)
		defer cancel()
		if _, err := s.client.Do(ctx, bye, keepRequest); err != nil {
			s.Log.Debug("gb28181 late INVITE answer: BYE", "error", err)
		}
	}()
}

// keepRequest is a client option that sends a request as built.
func keepRequest(*sipgo.Client, *sip.Request) error { return nil }

// inDialog builds an ACK or BYE in the dialog a 2xx answer to our INVITE
// set up, sent where the answer came from.
func (s *Server) inDialog(method sip.RequestMethod, r *sip.Response, rt route, seq uint32) *sip.Request {
	uri := sip.Uri{Scheme: "sip", Host: hostOf(rt.dest)}
	if c := r.Contact(); c != nil {
		uri = *c.Address.Clone()
	}
	req := sip.NewRequest(method, uri)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: rt.transport,
		Host: rt.local, Port: rt.port, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	req.AppendHeader(via)
	req.AppendHeader(sip.HeaderClone(r.From()))
	req.AppendHeader(sip.HeaderClone(r.To()))
	req.AppendHeader(sip.HeaderClone(r.CallID()))
	req.AppendHeader(&sip.CSeqHeader{SeqNo: seq, MethodName: method})
	mf := sip.MaxForwardsHeader(70)
	req.AppendHeader(&mf)
	req.SetBody(nil)
	req.SetTransport(rt.transport)
	req.SetDestination(rt.dest)
	if rt.transport == "UDP" {
		s.udpLaddr.Copy(&req.Laddr)
	}
	return req
}
