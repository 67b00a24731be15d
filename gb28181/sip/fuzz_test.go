package sip

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/emiago/sipgo/sip"
)

// recordTx is a server transaction that keeps the responses.
type recordTx struct {
	sip.ServerTransaction // nil: the handlers only Respond
	responses             []*sip.Response
}

func (r *recordTx) Respond(res *sip.Response) error {
	r.responses = append(r.responses, res)
	return nil
}

func msg(lines ...string) string { return strings.Join(lines, "\r\n") }

var handlerCases = []struct {
	name string
	raw  string
	want int
}{
	{"register no auth", msg("REGISTER sip:44011300002000000001@4401130000 SIP/2.0",
		"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1", "From: <sip:44011300001320000001@4401130000>;tag=1",
		"To: <sip:44011300001320000001@4401130000>", "Call-ID: a", "CSeq: 1 REGISTER", "Expires: 3600", "Content-Length: 0", "", ""), 401},
	{"register unknown", msg("REGISTER sip:44011300002000000001@4401130000 SIP/2.0",
		"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1", "From: <sip:99999999999999999999@4401130000>;tag=1",
		"To: <sip:99999999999999999999@4401130000>", "Call-ID: a", "CSeq: 1 REGISTER", "Content-Length: 0", "", ""), 403},
	{"register bad auth", msg("REGISTER sip:44011300002000000001@4401130000 SIP/2.0",
		"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK1", "From: <sip:44011300001320000001@4401130000>;tag=1",
		"To: <sip:44011300001320000001@4401130000>", "Call-ID: a", "CSeq: 2 REGISTER",
		`Authorization: Digest username="44011300001320000001", realm="4401130000", nonce="1.2", uri="sip:x", response="0"`,
		"Content-Length: 0", "", ""), 401},
	{"keepalive unregistered", msg("MESSAGE sip:44011300002000000001@4401130000 SIP/2.0",
		"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK2", "From: <sip:44011300001320000001@4401130000>;tag=1",
		"To: <sip:44011300002000000001@4401130000>", "Call-ID: b", "CSeq: 3 MESSAGE", "Content-Type: Application/MANSCDP+xml",
		"Content-Length: 100", "",
		`<?xml version="1.0" encoding="GB2312"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN></Notify>        `), 403},
	{"message garbage body", msg("MESSAGE sip:44011300002000000001@4401130000 SIP/2.0",
		"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK2", "From: <sip:44011300001320000001@4401130000>;tag=1",
		"To: <sip:44011300002000000001@4401130000>", "Call-ID: b", "CSeq: 3 MESSAGE", "Content-Length: 9", "", "<<<>>>&&&"), 400},
}

func fuzzServer(t testing.TB) *Server {
	s := &Server{Realm: testRealm, ID: testPlatform, Password: "pw",
		Lookup: func(id string) (string, bool, error) { return "", id == testDevice, nil },
		Log:    slog.New(slog.NewTextHandler(io.Discard, nil))}
	if err := s.defaults(); err != nil {
		t.Fatal(err)
	}
	return s
}

// handle parses raw as SIP and runs the handler of its method; -1 when it
// is not a request we handle.
func handle(t testing.TB, s *Server, raw []byte) int {
	m, err := sip.ParseMessage(raw)
	if err != nil {
		return -1
	}
	req, ok := m.(*sip.Request)
	if !ok {
		return -1
	}
	tx := &recordTx{}
	switch req.Method {
	case sip.REGISTER:
		s.onRegister(req, tx)
	case sip.MESSAGE:
		s.onMessage(req, tx)
	default:
		return -1
	}
	if len(tx.responses) != 1 {
		t.Fatalf("%d responses to one request", len(tx.responses))
	}
	return tx.responses[0].StatusCode
}

func TestHandlers(t *testing.T) {
	for _, tc := range handlerCases {
		t.Run(tc.name, func(t *testing.T) {
			if got := handle(t, fuzzServer(t), []byte(tc.raw)); got != tc.want {
				t.Fatalf("status %d, want %d", got, tc.want)
			}
		})
	}
}

func TestParseMessage(t *testing.T) {
	for _, tc := range []struct {
		body, cmd, err string
	}{
		{`<?xml version="1.0" encoding="GB2312"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID></Notify>`, "Keepalive", ""},
		{`<Response><CmdType>Catalog</CmdType></Response>`, "Catalog", ""},
		// GB2312 bytes of "北京" in another element
		{"<?xml version=\"1.0\" encoding=\"GB2312\"?><Notify><CmdType>Keepalive</CmdType><Info>\xb1\xb1\xbe\xa9</Info></Notify>", "Keepalive", ""},
		{``, "", "empty body"},
		{`<Notify><SN>1</SN></Notify>`, "", "no CmdType"},
		{`<Notify><CmdType>Keepalive`, "", "unexpected EOF"},
		{`<Notify>` + strings.Repeat("x", maxBody) + `</Notify>`, "", "exceeds"},
	} {
		m, err := parseMessage([]byte(tc.body))
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%.40q: err %v, want %q", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || m.CmdType != tc.cmd {
			t.Errorf("%.40q: %+v %v", tc.body, m, err)
		}
	}
}

// FuzzHandlers: any bytes, parsed as SIP and handed to the handlers, give
// one response and no panic; the refused list stays bounded.
func FuzzHandlers(f *testing.F) {
	for _, tc := range handlerCases {
		f.Add([]byte(tc.raw))
	}
	s := fuzzServer(f)
	f.Fuzz(func(t *testing.T, raw []byte) {
		handle(t, s, raw)
		if n := len(s.RefusedList()); n > s.MaxRefused {
			t.Fatalf("refused list grew to %d", n)
		}
	})
}

// TestRegisterFloodBounded: a flood of REGISTERs with ever new IDs and
// nonces from one address leaves bounded state: nonces are stateless and
// the refused list keeps MaxRefused entries.
func TestRegisterFloodBounded(t *testing.T) {
	s := fuzzServer(t)
	s.MaxRefused = 16
	for i := range 5000 {
		id := fmt.Sprintf("9999999999999%07d", i)
		raw := strings.ReplaceAll(handlerCases[1].raw, "99999999999999999999", id)
		if got := handle(t, s, []byte(raw)); got != 403 {
			t.Fatalf("unknown %s: %d", id, got)
		}
		if got := handle(t, s, []byte(handlerCases[0].raw)); got != 401 {
			t.Fatalf("challenge: %d", got)
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.refused) != 16 || len(s.devices) != 0 {
		t.Fatalf("after the flood: %d refused, %d devices", len(s.refused), len(s.devices))
	}
}
