package sip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
)

// catalogWorkers bounds the automatic catalog queries and subscriptions
// running at once (1000 devices coming online together do not send 1000
// queries at once).
const catalogWorkers = 4

// route is where and how requests to a device go.
type route struct {
	device    string
	dest      string // host:port the device was last heard from
	transport string // UDP or TCP
	local     string // our IP as the device reaches it
	port      int    // our listening port on that transport
	charset   manscdp.Charset
}

// DeviceHost returns the IP address the device registered (or last sent a
// keepalive) from, "" when it never registered.
func (s *Server) DeviceHost(deviceID string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.devices[deviceID]; ok && d.Address != "" {
		return hostOf(d.Address)
	}
	return ""
}

// route returns the route to an online device, or a *RequestError.
func (s *Server) route(deviceID, what string) (route, error) {
	s.mu.Lock()
	d, ok := s.devices[deviceID]
	if !ok || d.State.State != StateOnline || s.ua == nil {
		s.mu.Unlock()
		return route{}, &RequestError{Kind: RequestOffline, Device: deviceID, Request: what}
	}
	r := route{device: deviceID, dest: d.Address, transport: "UDP", port: s.udpPort, charset: d.charset}
	if d.Transport == "tcp" {
		r.transport, r.port = "TCP", s.tcpPort
	}
	if d.localFor == d.Address {
		r.local = d.local
	}
	s.mu.Unlock()
	if r.local == "" {
		r.local = s.localHost(r.transport, r.dest)
		s.mu.Lock()
		if d.Address == r.dest {
			d.local, d.localFor = r.local, r.dest
		}
		s.mu.Unlock()
	}
	return r, nil
}

// localHost is our address as seen from a device at dest: the local end of
// its TCP connection; the UDP listener's address when it is bound to one;
// else the source address the kernel picks towards dest.
func (s *Server) localHost(transport, dest string) string {
	if transport == "TCP" {
		if c, err := s.ua.TransportLayer().GetConnection("tcp", dest); err == nil {
			h := hostOf(c.LocalAddr().String())
			c.TryClose()
			return h
		}
	}
	if ip := s.udpLaddr.IP; ip != nil && !ip.IsUnspecified() {
		return ip.String()
	}
	if c, err := net.Dial("udp", dest); err == nil { // sends nothing
		h := hostOf(c.LocalAddr().String())
		c.Close()
		return h
	}
	return "127.0.0.1"
}

// newRequest builds a request to user (the device or one of its channels)
// at the device's address, sent from our listening socket.
func (s *Server) newRequest(method sip.RequestMethod, r route, user string) *sip.Request {
	host, portStr, _ := net.SplitHostPort(r.dest)
	port, _ := strconv.Atoi(portStr)
	req := sip.NewRequest(method, sip.Uri{Scheme: "sip", User: user, Host: host, Port: port})
	via := &sip.ViaHeader{ProtocolName: "SIP", ProtocolVersion: "2.0", Transport: r.transport,
		Host: r.local, Port: r.port, Params: sip.NewParams()}
	via.Params.Add("branch", sip.GenerateBranchN(16))
	via.Params.Add("rport", "")
	req.AppendHeader(via)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: s.ID, Host: s.Realm}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(16))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: user, Host: s.Realm}, Params: sip.NewParams()})
	req.SetTransport(r.transport)
	req.SetDestination(r.dest)
	if r.transport == "UDP" {
		// from the listening socket, so that the answer comes back
		// through the device's NAT mapping
		s.udpLaddr.Copy(&req.Laddr)
	}
	return req
}

// do sends req and waits for its final answer within RequestTimeout; a
// non-2xx answer or none is a *RequestError.
func (s *Server) do(ctx context.Context, req *sip.Request, r route, what string) (*sip.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, s.RequestTimeout)
	defer cancel()
	res, err := s.client.Do(ctx, req)
	if err != nil {
		if errors.Is(err, context.Canceled) && ctx.Err() != nil && !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, err
		}
		msg := fmt.Sprintf("nothing within %v over %s to %s", s.RequestTimeout, r.transport, r.dest)
		if !errors.Is(err, context.DeadlineExceeded) {
			msg = fmt.Sprintf("%s to %s: %v", r.transport, r.dest, err)
		}
		return nil, &RequestError{Kind: RequestNoAnswer, Device: r.device, Request: what, Msg: msg}
	}
	if res.StatusCode >= 300 {
		return res, &RequestError{Kind: RequestRefused, Code: res.StatusCode, Msg: res.Reason, Device: r.device, Request: what}
	}
	return res, nil
}

// message sends one MANSCDP body in a MESSAGE to the device.
func (s *Server) message(ctx context.Context, r route, what string, m manscdp.Message) error {
	body, err := s.marshal(r, m)
	if err != nil {
		return err
	}
	req := s.newRequest(sip.MESSAGE, r, r.device)
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	_, err = s.do(ctx, req, r, what)
	return err
}

func (s *Server) marshal(r route, m manscdp.Message) ([]byte, error) {
	cs := r.charset
	if cs == "" {
		cs = manscdp.GB2312
	}
	b, err := manscdp.Encoder{Charset: cs, Fallback: true}.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("gb28181 sip: %w", err)
	}
	return b, nil
}

func (s *Server) nextSN() int { return int(s.sn.Add(1) & 0x7fffffff) }

// control sends a MESSAGE that is answered by the SIP 200 alone.
func (s *Server) control(ctx context.Context, deviceID, what string, m manscdp.Message) error {
	r, err := s.route(deviceID, what)
	if err != nil {
		return err
	}
	return s.message(ctx, r, what, m)
}

// Catalog queries a device's catalog and waits for all pages of the answer
// (SumNum items, duplicates dropped) within CatalogTimeout. The complete
// catalog also goes to OnCatalog. When pages are missing at the deadline it
// returns the items received and a *RequestError of kind
// RequestIncomplete.
func (s *Server) Catalog(ctx context.Context, deviceID string) ([]manscdp.Item, error) {
	const what = "Catalog query"
	r, err := s.route(deviceID, what)
	if err != nil {
		return nil, err
	}
	sn := s.nextSN()
	p := s.expect(deviceID, manscdp.CmdCatalog, sn)
	defer s.unexpect(p)
	if err := s.message(ctx, r, what, manscdp.CatalogQuery(sn, deviceID)); err != nil {
		return nil, err
	}
	werr := wait(ctx, p, s.CatalogTimeout)
	items, sum, _ := p.snapshot()
	if werr != nil {
		if ctx.Err() != nil {
			return items, ctx.Err()
		}
		msg := fmt.Sprintf("sent no catalog answer within %v", s.CatalogTimeout)
		if sum >= 0 {
			msg = fmt.Sprintf("sent %d of %d catalog items within %v", len(items), sum, s.CatalogTimeout)
		}
		return items, &RequestError{Kind: RequestIncomplete, Device: deviceID, Request: what, Msg: msg}
	}
	if s.OnCatalog != nil {
		s.OnCatalog(deviceID, items)
	}
	return items, nil
}

// DeviceInfo queries a device's name, maker, model and firmware and waits
// for the answer within RequestTimeout.
func (s *Server) DeviceInfo(ctx context.Context, deviceID string) (*manscdp.Response, error) {
	const what = "DeviceInfo query"
	r, err := s.route(deviceID, what)
	if err != nil {
		return nil, err
	}
	sn := s.nextSN()
	p := s.expect(deviceID, manscdp.CmdDeviceInfo, sn)
	defer s.unexpect(p)
	if err := s.message(ctx, r, what, manscdp.DeviceInfoQuery(sn, deviceID)); err != nil {
		return nil, err
	}
	if err := wait(ctx, p, s.RequestTimeout); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &RequestError{Kind: RequestIncomplete, Device: deviceID, Request: what,
			Msg: fmt.Sprintf("sent no DeviceInfo response within %v", s.RequestTimeout)}
	}
	_, _, resp := p.snapshot()
	if resp.Result == manscdp.ResultError {
		return resp, &RequestError{Kind: RequestFailed, Device: deviceID, Request: what}
	}
	return resp, nil
}

// PTZ sends a PTZCmd DeviceControl for channelID to the device. The
// standard has no answer to it beyond the SIP 200.
func (s *Server) PTZ(ctx context.Context, deviceID, channelID string, cmd manscdp.PTZCmd) error {
	return s.control(ctx, deviceID, "PTZ control", manscdp.PTZControl(s.nextSN(), channelID, cmd))
}

// KeyFrame asks the device for a key frame on channelID (DeviceControl
// IFameCmd Send), right after a stream starts.
func (s *Server) KeyFrame(ctx context.Context, deviceID, channelID string) error {
	return s.control(ctx, deviceID, "key frame request", &manscdp.Control{
		Header:   manscdp.Header{CmdType: manscdp.CmdDeviceControl, SN: s.nextSN(), DeviceID: channelID},
		IFameCmd: "Send",
	})
}

// SubscribeCatalog sends a catalog SUBSCRIBE (Event: Catalog) asking for
// SubscribeExpires and returns the lifetime the device granted (its
// Expires, or what was asked when it sent none). The server does this
// itself when a device comes online; a *RequestError says how the device
// refused or that it did not answer.
func (s *Server) SubscribeCatalog(ctx context.Context, deviceID string) (time.Duration, error) {
	const what = "catalog SUBSCRIBE"
	r, err := s.route(deviceID, what)
	if err != nil {
		return 0, err
	}
	sn := s.nextSN()
	body, err := s.marshal(r, manscdp.CatalogQuery(sn, deviceID))
	if err != nil {
		return 0, err
	}
	req := s.newRequest(sip.SUBSCRIBE, r, deviceID)
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: s.ID, Host: r.local, Port: r.port}})
	req.AppendHeader(sip.NewHeader("Event", "Catalog;id="+strconv.Itoa(sn)))
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(int(s.SubscribeExpires/time.Second))))
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody(body)
	res, err := s.do(ctx, req, r, what)
	if err != nil {
		return 0, err
	}
	granted := s.SubscribeExpires
	if h := res.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil && n > 0 && time.Duration(n)*time.Second < granted {
			granted = time.Duration(n) * time.Second
		}
	}
	return granted, nil
}

func (s *Server) catalogWorker(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-s.catalogQ:
			s.refreshCatalog(ctx, id)
		}
	}
}

// refreshCatalog queries a device's catalog and (re)subscribes to its
// changes unless it refused before, then schedules the next round.
func (s *Server) refreshCatalog(ctx context.Context, id string) {
	if _, err := s.Catalog(ctx, id); err != nil && ctx.Err() == nil {
		s.Log.Info("gb28181 catalog query", "device", id, "error", err)
	}
	sub := s.DeviceState(id).Subscription
	next := s.CatalogRefresh
	var note string
	if sub != SubscriptionRefused {
		granted, err := s.SubscribeCatalog(ctx, id)
		var re *RequestError
		switch {
		case err == nil:
			sub = SubscriptionActive
			next = max(granted*3/4, time.Second)
			note = fmt.Sprintf("catalog changes are notified; the subscription is renewed every %v", next)
		case errors.As(err, &re) && re.Kind == RequestRefused:
			sub = SubscriptionRefused
			note = fmt.Sprintf("the device refused the catalog SUBSCRIBE with %d %s; its catalog is queried every %v", re.Code, re.Msg, next)
		case errors.As(err, &re) && re.Kind == RequestNoAnswer:
			sub = SubscriptionUnanswered
			note = fmt.Sprintf("the device did not answer the catalog SUBSCRIBE; its catalog is queried every %v", next)
		default:
			sub = "" // offline or shutting down
		}
		if sub != "" {
			s.Log.Debug("gb28181 catalog subscription", "device", id, "state", sub)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[id]
	if !ok {
		return
	}
	d.catalogBusy = false
	if d.State.State != StateOnline || ctx.Err() != nil {
		return
	}
	if note != "" {
		d.Subscription, d.SubscriptionNote = sub, note
	}
	d.catalogDue = s.Now().Add(next)
}
