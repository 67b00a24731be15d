package upstream

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
)

// RequestError is a request to an upper platform that got no answer
// (Code 0) or a final answer other than 2xx.
type RequestError struct {
	Platform, Method string
	Code             int
	Msg              string
}

func (e *RequestError) Error() string {
	if e.Code == 0 {
		return fmt.Sprintf("%s to upper platform %s: %s", e.Method, e.Platform, e.Msg)
	}
	return fmt.Sprintf("%s to upper platform %s: answered %d %s", e.Method, e.Platform, e.Code, e.Msg)
}

func (s *Service) transport(p *platform) string {
	if p.cfg.Transport == "tcp" {
		return "TCP"
	}
	return "UDP"
}

// localHost is our address as the platform reaches it.
func (s *Service) localHost(p *platform) string {
	if p.local != "" {
		return p.local
	}
	if ip := s.udpLaddr.IP; ip != nil && !ip.IsUnspecified() {
		p.local = ip.String()
		return p.local
	}
	if c, err := net.Dial("udp", p.cfg.Address); err == nil { // sends nothing
		h, _, _ := net.SplitHostPort(c.LocalAddr().String())
		c.Close()
		p.local = h
		return h
	}
	return "127.0.0.1"
}

func (s *Service) localPort(p *platform) int {
	if s.transport(p) == "TCP" {
		return s.tcpPort
	}
	return s.udpPort
}

// newRequest builds a request to user at the platform's address, from our
// listening socket (UDP), with From our local ID.
func (s *Service) newRequest(method sip.RequestMethod, p *platform, user string) *sip.Request {
	host, portStr, _ := net.SplitHostPort(p.cfg.Address)
	port, _ := strconv.Atoi(portStr)
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: user, Host: host, Port: port})
	tr := s.transport(p)
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: tr,
		Host: s.localHost(p), Port: s.localPort(p), Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.LocalID, Host: localRealm(p, s)}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	to := &sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: p.cfg.Realm}, Params: sip.NewParams()}
	if method == sip.REGISTER {
		to.Address = from.Address
	}
	req.AppendHeader(to)
	req.SetTransport(tr)
	req.SetDestination(p.cfg.Address)
	if tr == "UDP" {
		s.udpLaddr.Copy(&req.Laddr)
	}
	return req
}

func localRealm(p *platform, s *Service) string {
	if len(p.cfg.LocalID) >= 10 {
		return p.cfg.LocalID[:10]
	}
	return s.Realm
}

// do sends req and waits for its final answer within RequestTimeout (at
// most the keepalive interval).
func (s *Service) do(ctx context.Context, p *platform, req *sip.Request) (*sip.Response, error) {
	d := min(s.RequestTimeout, p.cfg.Keepalive)
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	res, err := s.client.Do(ctx, req)
	if err != nil {
		if ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, err // our own end
		}
		msg := fmt.Sprintf("no answer within %v over %s from %s", d, s.transport(p), p.cfg.Address)
		if ctx.Err() == nil {
			msg = fmt.Sprintf("cannot send over %s to %s: %v", s.transport(p), p.cfg.Address, err)
		}
		return nil, &RequestError{Platform: p.cfg.ID, Method: string(req.Method), Msg: msg}
	}
	return res, nil
}

// register sends a REGISTER with the given lifetime (0 unregisters),
// answering a digest challenge once.
func (s *Service) register(ctx context.Context, p *platform, expires time.Duration) error {
	secs := int(expires.Seconds())
	build := func() *sip.Request {
		req := s.newRequest(sip.REGISTER, p, p.cfg.ID)
		req.Recipient.User = p.cfg.ID
		cid := sip.CallIDHeader(p.callID)
		req.AppendHeader(&cid)
		req.AppendHeader(&sip.CSeqHeader{SeqNo: p.cseq.Add(1), MethodName: sip.REGISTER})
		req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.cfg.LocalID,
			Host: s.localHost(p), Port: s.localPort(p)}})
		req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(secs)))
		return req
	}
	req := build()
	res, err := s.do(ctx, p, req)
	if err != nil {
		return err
	}
	if res.StatusCode == 401 || res.StatusCode == 407 {
		hname, aname := "WWW-Authenticate", "Authorization"
		if res.StatusCode == 407 {
			hname, aname = "Proxy-Authenticate", "Proxy-Authorization"
		}
		h := res.GetHeader(hname)
		if h == nil {
			return &RequestError{Platform: p.cfg.ID, Method: "REGISTER", Code: res.StatusCode, Msg: res.Reason + " without a challenge"}
		}
		chal, err := digest.ParseChallenge(h.Value())
		if err != nil {
			return &RequestError{Platform: p.cfg.ID, Method: "REGISTER", Code: res.StatusCode, Msg: "unreadable challenge: " + err.Error()}
		}
		chal.Algorithm = strings.ToUpper(chal.Algorithm)
		req = build()
		cred, err := digest.Digest(chal, digest.Options{Method: "REGISTER", URI: req.Recipient.Addr(),
			Username: p.cfg.LocalID, Password: p.cfg.Password})
		if err != nil {
			return fmt.Errorf("REGISTER to upper platform %s: digest: %w", p.cfg.ID, err)
		}
		req.AppendHeader(sip.NewHeader(aname, cred.String()))
		if res, err = s.do(ctx, p, req); err != nil {
			return err
		}
		if res.StatusCode == 401 || res.StatusCode == 403 {
			return &RequestError{Platform: p.cfg.ID, Method: "REGISTER", Code: res.StatusCode,
				Msg: res.Reason + " (the password or local ID is not what the upper platform has)"}
		}
	}
	if !res.IsSuccess() {
		return &RequestError{Platform: p.cfg.ID, Method: "REGISTER", Code: res.StatusCode, Msg: res.Reason}
	}
	return nil
}

// message sends one MANSCDP body as a MESSAGE to the platform.
func (s *Service) message(ctx context.Context, p *platform, body []byte) error {
	req := s.newRequest(sip.MESSAGE, p, p.cfg.ID)
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	res, err := s.do(ctx, p, req)
	if err != nil {
		return err
	}
	if !res.IsSuccess() {
		return &RequestError{Platform: p.cfg.ID, Method: "MESSAGE", Code: res.StatusCode, Msg: res.Reason}
	}
	return nil
}

func (s *Service) keepalive(ctx context.Context, p *platform) error {
	body, err := manscdp.Encoder{}.Marshal(manscdp.KeepaliveNotify(s.nextSN(), p.cfg.LocalID))
	if err != nil {
		return err
	}
	return s.message(ctx, p, body)
}
