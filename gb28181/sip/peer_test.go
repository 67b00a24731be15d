package sip

import (
	"context"
	"fmt"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// peer is a minimal GB/T 28181 device built with sipgo, for the tests: it
// registers from its own listening socket (UDP) or connection (TCP),
// answers catalog and DeviceInfo queries, records DeviceControl commands
// and alarm responses, answers SUBSCRIBE and INVITE as configured, and
// sends keepalives, alarms, catalog notifies and BYE.
type peer struct {
	t         *testing.T
	id        string
	transport string
	ua        *sipgo.UserAgent
	cli       *sipgo.Client
	dialogs   *sipgo.DialogServerCache
	server    sip.Uri
	closing   chan struct{}
	wg        sync.WaitGroup

	// configuration, set before traffic
	// configuration, changed under mu (set sets it)
	channels      []manscdp.Item
	pageSize      int  // catalog items per page
	dupPages      bool // send every catalog page twice
	dropPages     int  // leave out this many last pages
	subscribeCode int  // answer to SUBSCRIBE
	subscribeFor  int  // Expires granted in a 200 (default 3600)
	invite        func(offer string) (code int, sdp string)
	inviteDelay   time.Duration // before the final answer

	mu        sync.Mutex
	controls  []*manscdp.Control
	responses []*manscdp.Response
	offers    []*sip.Request
	subjects  []string
	acks      int
	byes      int
	dialog    *sipgo.DialogServerSession
}

func newPeer(t *testing.T, id, serverAddr, transport string) *peer {
	t.Helper()
	p := &peer{t: t, id: id, transport: transport, closing: make(chan struct{}), pageSize: 2, subscribeCode: 200}
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	p.ua = ua
	srv, err := sipgo.NewServer(ua)
	if err != nil {
		t.Fatal(err)
	}
	opts := []sipgo.ClientOption{sipgo.WithClientHostname("127.0.0.1")}
	var pc net.PacketConn
	if transport == "udp" {
		pc, err = net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		opts = append(opts, sipgo.WithClientConnectionAddr(pc.LocalAddr().String()))
	}
	p.cli, err = sipgo.NewClient(ua, opts...)
	if err != nil {
		t.Fatal(err)
	}
	p.dialogs = sipgo.NewDialogServerCache(p.cli, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: id, Host: "127.0.0.1"}})
	srv.OnMessage(p.onMessage)
	srv.OnSubscribe(p.onSubscribe)
	srv.OnInvite(p.onInvite)
	srv.OnAck(func(req *sip.Request, tx sip.ServerTransaction) {
		p.mu.Lock()
		p.acks++
		p.mu.Unlock()
		p.dialogs.ReadAck(req, tx)
	})
	srv.OnBye(func(req *sip.Request, tx sip.ServerTransaction) {
		// only a BYE in a dialog the peer answered counts (counted
		// before the 200 goes out, so the sender sees it counted)
		dlg, err := p.dialogs.MatchDialogRequest(req)
		if err != nil {
			tx.Respond(sip.NewResponseFromRequest(req, 481, "No dialog", nil))
			return
		}
		p.mu.Lock()
		p.byes++
		p.mu.Unlock()
		dlg.ReadBye(req, tx)
	})
	if pc != nil {
		p.wg.Add(1)
		go func() { defer p.wg.Done(); srv.ServeUDP(pc) }()
		// requests go out from the listener once it is in sipgo's pool
		testkit.WaitFor(t, 5*time.Second, "peer listening", func() bool {
			c, err := ua.TransportLayer().GetConnection("udp", pc.LocalAddr().String())
			if err == nil {
				c.TryClose()
			}
			return err == nil
		})
	}
	t.Cleanup(func() {
		close(p.closing)
		if pc != nil {
			pc.Close()
		}
		ua.Close()
		p.wg.Wait()
	})
	host, port, _ := net.SplitHostPort(serverAddr)
	pn, _ := strconv.Atoi(port)
	p.server = sip.Uri{Scheme: "sip", User: testPlatform, Host: host, Port: pn, UriParams: sip.NewParams(), Headers: sip.NewParams()}
	if transport == "tcp" {
		p.server.UriParams.Add("transport", "tcp")
	}
	return p
}

func (p *peer) request(method sip.RequestMethod, body string) *sip.Request {
	req := sip.NewRequest(method, p.server)
	from := &sip.FromHeader{Address: sip.Uri{Scheme: "sip", User: p.id, Host: testRealm}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{Scheme: "sip", User: testPlatform, Host: testRealm}, Params: sip.NewParams()})
	if body != "" {
		req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
		req.SetBody([]byte(body))
	}
	return req
}

// do sends a request and returns the final answer's status (0: none).
func (p *peer) do(req *sip.Request) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return 0
	}
	return res.StatusCode
}

func (p *peer) register(password string) int { return p.registerFor(password, 3600) }

func (p *peer) registerFor(password string, expires int) int {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := p.request(sip.REGISTER, "")
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	req.AppendHeader(&sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: p.id, Host: "127.0.0.1"}})
	res, err := p.cli.Do(ctx, req)
	if err != nil {
		return 0
	}
	if res.StatusCode == 401 {
		res, err = p.cli.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: p.id, Password: password})
		if err != nil {
			return 0
		}
	}
	return res.StatusCode
}

func (p *peer) send(m manscdp.Message) int {
	body, err := manscdp.Encoder{}.Marshal(m)
	if err != nil {
		p.t.Errorf("marshal: %v", err)
		return 0
	}
	return p.do(p.request(sip.MESSAGE, string(body)))
}

func (p *peer) onMessage(req *sip.Request, tx sip.ServerTransaction) {
	m, err := manscdp.Decode(req.Body())
	if err != nil {
		tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad body", nil))
		return
	}
	switch m := m.(type) {
	case *manscdp.Control:
		p.mu.Lock()
		p.controls = append(p.controls, m)
		p.mu.Unlock()
	case *manscdp.Response:
		p.mu.Lock()
		p.responses = append(p.responses, m)
		p.mu.Unlock()
	}
	tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
	switch m := m.(type) {
	case *manscdp.Query:
		p.wg.Add(1)
		go func() { defer p.wg.Done(); p.answer(m) }()
	}
}

// answer sends the MANSCDP answer to a query, as devices do: after the
// 200, in MESSAGEs of their own.
func (p *peer) answer(q *manscdp.Query) {
	p.mu.Lock()
	chans, pageSize, drop, dup := p.channels, p.pageSize, p.dropPages, p.dupPages
	p.mu.Unlock()
	switch q.CmdType {
	case manscdp.CmdCatalog:
		pages, err := manscdp.Encoder{}.CatalogPages(q.SN, p.id, chans, pageSize, 0)
		if err != nil {
			p.t.Errorf("catalog pages: %v", err)
			return
		}
		pages = pages[:len(pages)-min(drop, len(pages))]
		for _, b := range pages {
			for range 1 + btoi(dup) {
				p.do(p.request(sip.MESSAGE, string(b)))
			}
		}
	case manscdp.CmdDeviceInfo:
		one := len(chans)
		p.send(&manscdp.Response{Header: manscdp.Header{CmdType: manscdp.CmdDeviceInfo, SN: q.SN, DeviceID: p.id},
			Result: manscdp.ResultOK, DeviceName: "河边摄像机", Manufacturer: "Test", Model: "T1", Firmware: "1.0", Channel: &one})
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func (p *peer) onSubscribe(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	code, expires := p.subscribeCode, p.subscribeFor
	p.mu.Unlock()
	if expires == 0 {
		expires = 3600
	}
	res := sip.NewResponseFromRequest(req, code, statusText(code), nil)
	if code == 200 {
		res.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	}
	tx.Respond(res)
}

func (p *peer) onInvite(req *sip.Request, tx sip.ServerTransaction) {
	p.mu.Lock()
	p.offers = append(p.offers, req)
	if s := req.GetHeader("Subject"); s != nil {
		p.subjects = append(p.subjects, s.Value())
	}
	answer := p.invite
	p.mu.Unlock()
	dlg, err := p.dialogs.ReadInvite(req, tx)
	if err != nil {
		p.t.Errorf("read invite: %v", err)
		return
	}
	code, sdp := 0, ""
	if answer != nil {
		code, sdp = answer(string(req.Body()))
	}
	p.mu.Lock()
	delay := p.inviteDelay
	p.mu.Unlock()
	if delay > 0 {
		select {
		case <-time.After(delay):
		case <-p.closing:
			return
		}
	}
	switch {
	case code == 0: // never answer
	case code < 200:
		dlg.Respond(code, statusText(code), nil)
	case code < 300:
		p.mu.Lock()
		p.dialog = dlg
		p.mu.Unlock()
		dlg.Respond(code, "OK", []byte(sdp), sip.NewHeader("Content-Type", "application/sdp"))
		return
	default:
		dlg.Respond(code, statusText(code), nil)
		return
	}
	// a device that does not answer forgets the INVITE after a while
	select {
	case <-tx.Done():
	case <-p.closing:
	case <-time.After(2 * time.Second):
	}
}

// hangUp sends BYE for the last answered INVITE.
func (p *peer) hangUp() error {
	p.mu.Lock()
	dlg := p.dialog
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return dlg.Bye(ctx)
}

// sdpAnswer is a device's answer to offer: the y= of the offer, port 30000,
// with transport lines for TCP.
func sdpAnswer(offer string, extra ...string) string {
	ssrc := ""
	proto := "RTP/AVP"
	setup := ""
	for _, l := range strings.Split(offer, "\r\n") {
		switch {
		case strings.HasPrefix(l, "y="):
			ssrc = l[2:]
		case strings.HasPrefix(l, "m=video") && strings.Contains(l, "TCP"):
			proto = "TCP/RTP/AVP"
		case l == "a=setup:passive":
			setup = "a=setup:active\r\n"
		case l == "a=setup:active":
			setup = "a=setup:passive\r\n"
		}
	}
	return fmt.Sprintf("v=0\r\no=34020000001320000001 0 0 IN IP4 127.0.0.1\r\ns=Play\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n"+
		"m=video 30000 %s 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n%sy=%s\r\n%s", proto, setup, ssrc, strings.Join(extra, ""))
}

func statusText(code int) string {
	switch code {
	case 100:
		return "Trying"
	case 180:
		return "Ringing"
	case 200:
		return "OK"
	case 486:
		return "Busy Here"
	case 501:
		return "Not Implemented"
	}
	return "Status " + strconv.Itoa(code)
}

func keepaliveOf(id string) *manscdp.Notify { return manscdp.KeepaliveNotify(1, id) }

// set changes the peer's configuration while it may be serving.
func (p *peer) set(f func(p *peer)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}
