package sip

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/vigil-vms/vigil/internal/testkit"
)

const (
	testRealm    = "4401130000"
	testPlatform = "44011300002000000001"
	testDevice   = "44011300001320000001"
)

type testServer struct {
	*Server
	udp, tcp string
	mu       sync.Mutex
	devices  map[string]string
}

// on is the server's address for a transport, "udp" or "tcp".
func (ts *testServer) on(transport string) string {
	if transport == "tcp" {
		return ts.tcp
	}
	return ts.udp
}

func (ts *testServer) lookup(id string) (string, bool, error) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	p, ok := ts.devices[id]
	return p, ok, nil
}

func startServer(t *testing.T, keepalive time.Duration, opts ...func(*Server)) *testServer {
	t.Helper()
	testkit.CheckLeaks(t)
	ts := &testServer{devices: map[string]string{testDevice: "secret1", "44011300001320000002": ""}}
	ts.Server = &Server{
		Realm: testRealm, ID: testPlatform, Password: "default1",
		Lookup: ts.lookup, KeepaliveInterval: keepalive,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	for _, o := range opts {
		o(ts.Server)
	}
	pc, ln := testkit.ListenUDPTCP(t)
	ts.udp, ts.tcp = pc.LocalAddr().String(), ln.Addr().String()
	testkit.Run(t, func(ctx context.Context) error { return ts.Serve(ctx, pc, ln) })
	return ts
}

type testDeviceClient struct {
	id     string
	client *sipgo.Client
	server sip.Uri
}

func newDevice(t *testing.T, id, serverAddr, transport string) *testDeviceClient {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgentHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); ua.Close() })
	host, port, _ := net.SplitHostPort(serverAddr)
	p, _ := strconv.Atoi(port)
	u := sip.Uri{User: testPlatform, Host: host, Port: p, UriParams: sip.NewParams(), Headers: sip.NewParams()}
	if transport == "tcp" {
		u.UriParams.Add("transport", "tcp")
	}
	return &testDeviceClient{id: id, client: c, server: u}
}

func (d *testDeviceClient) request(method sip.RequestMethod) *sip.Request {
	req := sip.NewRequest(method, d.server)
	from := &sip.FromHeader{Address: sip.Uri{User: d.id, Host: testRealm}, Params: sip.NewParams()}
	from.Params.Add("tag", sip.GenerateTagN(10))
	req.AppendHeader(from)
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: d.id, Host: testRealm}, Params: sip.NewParams()})
	return req
}

// register sends a REGISTER, answers a 401 with the password and returns
// the final response.
func (d *testDeviceClient) register(t *testing.T, password string, expires int) *sip.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := d.request(sip.REGISTER)
	req.AppendHeader(sip.NewHeader("Expires", strconv.Itoa(expires)))
	res, err := d.client.Do(ctx, req)
	if err != nil {
		t.Fatalf("register: %v", err)
	}
	if res.StatusCode != 401 {
		return res
	}
	res, err = d.client.DoDigestAuth(ctx, req, res, sipgo.DigestAuth{Username: d.id, Password: password})
	if err != nil {
		t.Fatalf("register with digest: %v", err)
	}
	return res
}

func (d *testDeviceClient) keepalive(t *testing.T) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req := d.request(sip.MESSAGE)
	req.AppendHeader(sip.NewHeader("Content-Type", "Application/MANSCDP+xml"))
	req.SetBody([]byte(`<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>` + d.id + `</DeviceID><Status>OK</Status></Notify>`))
	res, err := d.client.Do(ctx, req)
	if err != nil {
		t.Fatalf("keepalive: %v", err)
	}
	return res.StatusCode
}

func TestRegisterDigest(t *testing.T) {
	for _, tr := range []string{"udp", "tcp"} {
		t.Run(tr, func(t *testing.T) {
			ts := startServer(t, time.Minute)
			addr := ts.on(tr)
			if got := ts.DeviceState(testDevice).State; got != StateNever {
				t.Fatalf("state before register = %q, want never", got)
			}
			d := newDevice(t, testDevice, addr, tr)
			before := time.Now().Add(-time.Second)
			res := d.register(t, "secret1", 3600)
			if res.StatusCode != 200 {
				t.Fatalf("register: %d %s", res.StatusCode, res.Reason)
			}
			date := res.GetHeader("Date")
			if date == nil {
				t.Fatal("200 has no Date header")
			}
			at, err := time.ParseInLocation(DateFormat, date.Value(), time.Local)
			if err != nil || at.Before(before) || at.After(time.Now().Add(time.Second)) {
				t.Fatalf("Date %q: %v", date.Value(), err)
			}
			if e := res.GetHeader("Expires"); e == nil || e.Value() != "3600" {
				t.Fatalf("Expires = %v, want 3600", e)
			}
			st := ts.DeviceState(testDevice)
			if st.State != StateOnline || st.Transport != tr || st.Address == "" || st.LastError != "" {
				t.Fatalf("state = %+v", st)
			}
		})
	}
}

func TestRegisterDefaultPassword(t *testing.T) {
	ts := startServer(t, time.Minute)
	d := newDevice(t, "44011300001320000002", ts.udp, "udp")
	if res := d.register(t, "default1", 60); res.StatusCode != 200 {
		t.Fatalf("register with default password: %d", res.StatusCode)
	}
}

func TestRegisterWrongPassword(t *testing.T) {
	ts := startServer(t, time.Minute)
	d := newDevice(t, testDevice, ts.udp, "udp")
	res := d.register(t, "wrong", 3600)
	if res.StatusCode != 403 {
		t.Fatalf("wrong password: %d, want 403", res.StatusCode)
	}
	st := ts.DeviceState(testDevice)
	if st.State != StateNever || st.LastError != "wrong password" {
		t.Fatalf("state = %+v", st)
	}
	if len(ts.RefusedList()) != 0 {
		t.Fatal("a known device with a wrong password is not in the refused list")
	}
}

func TestRegisterUnknownDevice(t *testing.T) {
	ts := startServer(t, time.Minute, func(s *Server) { s.MaxRefused = 3 })
	for i := range 5 {
		id := "4401130000132000010" + strconv.Itoa(i)
		d := newDevice(t, id, ts.udp, "udp")
		for range 2 {
			if res := d.register(t, "x", 60); res.StatusCode != 403 {
				t.Fatalf("unknown device: %d, want 403", res.StatusCode)
			}
		}
	}
	refused := ts.RefusedList()
	if len(refused) != 3 {
		t.Fatalf("refused list has %d entries, want 3 (bounded)", len(refused))
	}
	r := refused[0]
	if r.ID != "44011300001320000104" || r.Count != 2 || r.Address == "" || r.Time.IsZero() {
		t.Fatalf("newest refused = %+v", r)
	}
}

func TestUnregisterAndExpiry(t *testing.T) {
	ts := startServer(t, time.Minute)
	d := newDevice(t, testDevice, ts.udp, "udp")
	if res := d.register(t, "secret1", 3600); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	res := d.register(t, "secret1", 0)
	if res.StatusCode != 200 {
		t.Fatalf("unregister: %d", res.StatusCode)
	}
	if st := ts.DeviceState(testDevice); st.State != StateOffline || st.LastError != "unregistered" {
		t.Fatalf("after unregister: %+v", st)
	}
	// A huge Expires is capped (24 h), not overflowed into the past.
	if res := d.register(t, "secret1", 1<<62); res.StatusCode != 200 || res.GetHeader("Expires").Value() != "86400" {
		t.Fatalf("huge Expires: %d %v", res.StatusCode, res.GetHeader("Expires"))
	}
	if st := ts.DeviceState(testDevice); st.State != StateOnline {
		t.Fatalf("after a huge Expires: %+v", st)
	}
	// A registration of 1 s lapses.
	if res := d.register(t, "secret1", 1); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	waitState(t, ts, StateOffline, "registration expired", 5*time.Second)
}

func TestKeepalive(t *testing.T) {
	ts := startServer(t, 200*time.Millisecond)
	d := newDevice(t, testDevice, ts.udp, "udp")
	if got := d.keepalive(t); got != 403 {
		t.Fatalf("keepalive before register: %d, want 403", got)
	}
	if res := d.register(t, "secret1", 3600); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	// Keepalives at the interval keep it online well past three intervals.
	for range 8 {
		if got := d.keepalive(t); got != 200 {
			t.Fatalf("keepalive: %d", got)
		}
		time.Sleep(150 * time.Millisecond)
	}
	if st := ts.DeviceState(testDevice); st.State != StateOnline {
		t.Fatalf("with keepalives: %+v", st)
	}
	waitState(t, ts, StateOffline, "3 keepalives missed", 3*time.Second)
}

// TestKeepaliveNewAddress: a keepalive from a new address (NAT rebinding,
// or TCP after a UDP REGISTER) moves the device there.
func TestKeepaliveNewAddress(t *testing.T) {
	ts := startServer(t, time.Minute)
	if res := newDevice(t, testDevice, ts.udp, "udp").register(t, "secret1", 3600); res.StatusCode != 200 {
		t.Fatal(res.StatusCode)
	}
	before := ts.DeviceState(testDevice)
	if got := newDevice(t, testDevice, ts.tcp, "tcp").keepalive(t); got != 200 {
		t.Fatalf("keepalive over tcp: %d", got)
	}
	after := ts.DeviceState(testDevice)
	if after.Transport != "tcp" || after.Address == before.Address || !after.Since.Equal(before.Since) {
		t.Fatalf("before %+v, after %+v", before, after)
	}
}

func waitState(t *testing.T, ts *testServer, state, cause string, within time.Duration) {
	t.Helper()
	testkit.WaitFor(t, within, "state "+state+" ("+cause+")", func() bool {
		st := ts.DeviceState(testDevice)
		return st.State == state && st.LastError == cause
	})
}

// TestEndlessHeaderTCP: a TCP peer that sends headers without end is cut
// off at sipgo's message limit (64 KiB), and the server goes on serving.
func TestEndlessHeaderTCP(t *testing.T) {
	ts := startServer(t, time.Minute)
	conn, err := net.Dial("tcp", ts.tcp)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(10 * time.Second))
	conn.Write([]byte("REGISTER sip:x SIP/2.0\r\n"))
	line := []byte("X-Junk: " + strings.Repeat("A", 1000) + "\r\n")
	var werr error
	for i := 0; i < 1000 && werr == nil; i++ {
		_, werr = conn.Write(line)
	}
	if ne, ok := werr.(net.Error); ok && ne.Timeout() {
		t.Fatal("the server neither read nor closed the connection")
	}
	if werr == nil {
		// the server stopped reading; the connection must be closed
		if _, err := conn.Read(make([]byte, 1)); err == nil {
			t.Fatal("the server answered an endless header")
		}
	}
	d := newDevice(t, testDevice, ts.tcp, "tcp")
	if res := d.register(t, "secret1", 60); res.StatusCode != 200 {
		t.Fatalf("register after the endless header: %d", res.StatusCode)
	}
}
