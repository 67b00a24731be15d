package sip

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
)

// CatalogChange reports whether items passed to OnCatalog are changes (a
// catalog notify: each item has its Event, ADD, DEL, ON, OFF, UPDATE, …)
// rather than a complete catalog (no Event on any item).
func CatalogChange(items []manscdp.Item) bool {
	for _, it := range items {
		if it.Event != "" {
			return true
		}
	}
	return false
}

// maxCatalogItems bounds the items one catalog answer may bring.
const maxCatalogItems = 20000

// decoded is a MANSCDP body read for one request.
type decoded struct {
	msg     manscdp.Message
	charset manscdp.Charset
	err     error
	// xml is true when the body is XML (err, if any, is a missing field
	// or an unsupported command), false when it is not XML at all.
	xml bool
}

func decodeBody(body []byte) decoded {
	m, cs, err := manscdp.DecodeCharset(body)
	var fe *manscdp.FieldError
	var ue *manscdp.UnsupportedError
	return decoded{msg: m, charset: cs, err: err,
		xml: err == nil || errors.As(err, &fe) || errors.As(err, &ue)}
}

// reasonPhrase makes err a SIP reason phrase: one line of printable ASCII
// (a reason phrase is UTF-8 in theory; devices' parsers are not), bounded.
func reasonPhrase(err error) string {
	msg := strings.TrimPrefix(err.Error(), "manscdp: ")
	b := make([]byte, 0, min(len(msg), 160))
	for i := 0; i < len(msg) && len(b) < 160; i++ {
		c := msg[i]
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		b = append(b, c)
	}
	return "Bad MANSCDP body: " + string(b)
}

// online marks a request from id as a sign of life when the device is
// online (a device behind NAT may come from a new port: later requests go
// where it was last heard from) and returns whether it is.
func (s *Server) online(id string, req *sip.Request, cs manscdp.Charset, keepalive bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.devices[id]
	if !ok || d.State.State != StateOnline {
		return false
	}
	if keepalive {
		d.lastKeepalive = s.Now()
	}
	d.Address = clip(req.Source(), maxAddressLen)
	d.Transport = strings.ToLower(req.Transport())
	if cs != "" {
		d.charset = cs
	}
	return true
}

// checkBody answers requests whose body cannot be used: 400 for a body that
// is not XML or misses required fields, 403 for a device that is not
// registered, 200 for a command this package does not handle. It returns
// the message when the caller is to handle it.
func (s *Server) checkBody(req *sip.Request, tx sip.ServerTransaction) (string, manscdp.Message, bool) {
	id := deviceID(req)
	d := decodeBody(req.Body())
	if !d.xml {
		s.badBody(req, tx, id, d.err)
		return "", nil, false
	}
	keepalive := false
	if n, ok := d.msg.(*manscdp.Notify); ok && n.CmdType == manscdp.CmdKeepalive {
		keepalive = true
	}
	if !s.online(id, req, d.charset, keepalive) {
		// Not registered: a 403 makes the device register again.
		s.respond(req, tx, 403, "Forbidden")
		return "", nil, false
	}
	var ue *manscdp.UnsupportedError
	switch {
	case errors.As(d.err, &ue):
		s.Log.Debug("gb28181 message not handled", "device", id, "error", d.err)
		s.respond(req, tx, 200, "OK")
		return "", nil, false
	case d.err != nil:
		s.badBody(req, tx, id, d.err)
		return "", nil, false
	}
	return id, d.msg, true
}

func (s *Server) badBody(req *sip.Request, tx sip.ServerTransaction, id string, err error) {
	// a registered device's bad body is worth a warning; anyone's garbage
	// is not (it would let a flood fill the log)
	level := s.Log.Debug
	if st := s.DeviceState(id); st.State == StateOnline {
		level = s.Log.Warn
	}
	level("gb28181 bad MANSCDP body", "device", clip(id, maxIDLen), "address", req.Source(), "method", string(req.Method), "error", err)
	s.respond(req, tx, 400, reasonPhrase(err))
}

func (s *Server) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	id, m, ok := s.checkBody(req, tx)
	if !ok {
		return
	}
	switch m := m.(type) {
	case *manscdp.Notify:
		s.respond(req, tx, 200, "OK")
		switch m.CmdType {
		case manscdp.CmdAlarm:
			s.confirmAlarm(id, m)
			if s.OnAlarm != nil {
				s.OnAlarm(id, m)
			}
		case manscdp.CmdCatalog:
			s.catalogNotify(id, m)
		}
	case *manscdp.Response:
		s.respond(req, tx, 200, "OK")
		s.deliver(id, m)
	default:
		// Query and Control are what a platform sends, not a device.
		s.respond(req, tx, 200, "OK")
	}
}

// onNotify handles NOTIFYs of a subscription: catalog changes and alarms.
func (s *Server) onNotify(req *sip.Request, tx sip.ServerTransaction) {
	id, m, ok := s.checkBody(req, tx)
	if !ok {
		return
	}
	s.respond(req, tx, 200, "OK")
	n, ok := m.(*manscdp.Notify)
	if !ok {
		return
	}
	switch n.CmdType {
	case manscdp.CmdCatalog:
		s.catalogNotify(id, n)
	case manscdp.CmdAlarm:
		if s.OnAlarm != nil {
			s.OnAlarm(id, n)
		}
	}
}

func (s *Server) catalogNotify(id string, n *manscdp.Notify) {
	if n.DeviceList == nil || len(n.DeviceList.Items) == 0 {
		return
	}
	if s.OnCatalog != nil {
		s.OnCatalog(id, n.DeviceList.Items)
	}
}

// confirmAlarm sends the Alarm Response a device waits for after an alarm
// MESSAGE (GB/T 28181-2016 9.4.2), in the background.
func (s *Server) confirmAlarm(id string, n *manscdp.Notify) {
	if s.ctx == nil {
		return
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		err := s.control(s.ctx, id, "Alarm response", manscdp.AlarmResponse(n.SN, n.DeviceID))
		if err != nil {
			s.Log.Info("gb28181 alarm response", "device", id, "error", err)
		}
	}()
}

// pendKey identifies the MANSCDP answer to one query.
type pendKey struct {
	device string
	cmd    manscdp.CmdType
	sn     int
}

// pending collects the answer to one query: the pages of a catalog, or
// one response.
type pending struct {
	key  pendKey
	done chan struct{}

	mu     sync.Mutex
	closed bool
	sum    int
	items  []manscdp.Item
	seen   map[string]bool
	resp   *manscdp.Response
}

func (p *pending) add(r *manscdp.Response) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	if r.CmdType != manscdp.CmdCatalog {
		p.resp = r
		p.finish()
		return
	}
	p.sum = r.SumNum
	if r.DeviceList != nil {
		for _, it := range r.DeviceList.Items {
			if p.seen[it.DeviceID] || len(p.items) >= maxCatalogItems {
				continue // a page sent twice (UDP retransmission, device bug)
			}
			p.seen[it.DeviceID] = true
			p.items = append(p.items, it)
		}
	}
	if len(p.items) >= p.sum || len(p.items) >= maxCatalogItems {
		p.finish()
	}
}

func (p *pending) finish() {
	p.closed = true
	close(p.done)
}

// snapshot returns the items so far and the SumNum announced.
func (p *pending) snapshot() ([]manscdp.Item, int, *manscdp.Response) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]manscdp.Item(nil), p.items...), p.sum, p.resp
}

func (s *Server) expect(device string, cmd manscdp.CmdType, sn int) *pending {
	p := &pending{key: pendKey{device, cmd, sn}, done: make(chan struct{}), seen: map[string]bool{}, sum: -1}
	s.mu.Lock()
	s.pending[p.key] = p
	s.mu.Unlock()
	return p
}

func (s *Server) unexpect(p *pending) {
	s.mu.Lock()
	delete(s.pending, p.key)
	s.mu.Unlock()
}

// deliver hands a response to the query waiting for it (same device,
// command and SN).
func (s *Server) deliver(id string, r *manscdp.Response) {
	s.mu.Lock()
	p := s.pending[pendKey{id, r.CmdType, r.SN}]
	s.mu.Unlock()
	if p == nil {
		s.Log.Debug("gb28181 response matches no query", "device", id, "cmd", string(r.CmdType), "sn", r.SN)
		return
	}
	p.add(r)
}

// wait waits for p to complete, for ctx or for d.
func wait(ctx context.Context, p *pending, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-p.done:
		return nil
	case <-t.C:
		return context.DeadlineExceeded
	case <-ctx.Done():
		return ctx.Err()
	}
}
