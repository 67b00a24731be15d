package sip

import (
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
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
	if res := handleRes(t, s, raw); res != nil {
		return res.StatusCode
	}
	return -1
}

func handleRes(t testing.TB, s *Server, raw []byte) *sip.Response {
	m, err := sip.ParseMessage(raw)
	if err != nil {
		return nil
	}
	req, ok := m.(*sip.Request)
	if !ok {
		return nil
	}
	tx := &recordTx{}
	switch req.Method {
	case sip.REGISTER:
		s.onRegister(req, tx)
	case sip.MESSAGE:
		s.onMessage(req, tx)
	case sip.NOTIFY:
		s.onNotify(req, tx)
	case sip.BYE:
		s.onBye(req, tx)
	default:
		return nil
	}
	if len(tx.responses) != 1 {
		t.Fatalf("%d responses to one request", len(tx.responses))
	}
	return tx.responses[0]
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

// online marks testDevice registered from 10.0.0.5 over UDP, as a REGISTER
// would.
func online(s *Server) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deviceLocked(testDevice)
	d.State.State = StateOnline
	d.Address, d.Transport = "10.0.0.5:5060", "udp"
	d.expires = time.Now().Add(time.Hour)
	d.lastKeepalive = time.Now()
}

func message(body string) string {
	return msg("MESSAGE sip:44011300002000000001@4401130000 SIP/2.0",
		"Via: SIP/2.0/UDP 10.0.0.5:5060;branch=z9hG4bK2", "From: <sip:44011300001320000001@4401130000>;tag=1",
		"To: <sip:44011300002000000001@4401130000>", "Call-ID: b", "CSeq: 3 MESSAGE", "Content-Type: Application/MANSCDP+xml",
		"Content-Length: "+strconv.Itoa(len(body)), "", body)
}

// TestMessageBody: bodies are read with manscdp.Decode; what is not XML is
// answered 400 whoever sends it, an unregistered device 403, a registered
// device's body missing fields 400 with the cause in the reason phrase,
// an unhandled command 200.
func TestMessageBody(t *testing.T) {
	const id = testDevice
	for _, tc := range []struct {
		name, body string
		registered bool
		want       int
		reason     string
	}{
		{"keepalive", `<?xml version="1.0" encoding="GB2312"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><Status>OK</Status></Notify>`, true, 200, "OK"},
		// GB2312 bytes of "北京" in another element
		{"keepalive gb2312", "<?xml version=\"1.0\" encoding=\"GB2312\"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>" + id + "</DeviceID><Status>OK</Status><Info>\xb1\xb1\xbe\xa9</Info></Notify>", true, 200, "OK"},
		{"keepalive unregistered", `<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><Status>OK</Status></Notify>`, false, 403, "Forbidden"},
		{"empty", ``, true, 400, "no XML element"},
		{"empty unregistered", ``, false, 400, "no XML element"},
		{"no CmdType", `<Notify><SN>1</SN></Notify>`, true, 400, "<CmdType> is missing"},
		{"no CmdType unregistered", `<Notify><SN>1</SN></Notify>`, false, 403, "Forbidden"},
		{"short DeviceID", `<Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>1</DeviceID><Status>OK</Status></Notify>`, true, 400, "<DeviceID> \"1\" has 1 characters"},
		{"truncated", `<Notify><CmdType>Keepalive`, true, 400, "malformed XML"},
		{"bad charset bytes", "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>" + id + "</DeviceID><Status>OK</Status><Info>\xff\xfe</Info></Notify>", true, 400, "Bad MANSCDP body"},
		{"unhandled command", `<Notify><CmdType>MobilePosition</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID></Notify>`, true, 200, "OK"},
		{"catalog response nobody asked for", `<Response><CmdType>Catalog</CmdType><SN>9</SN><DeviceID>` + id + `</DeviceID><SumNum>0</SumNum><DeviceList Num="0"></DeviceList></Response>`, true, 200, "OK"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := fuzzServer(t)
			if tc.registered {
				online(s)
			}
			res := handleRes(t, s, []byte(message(tc.body)))
			if res == nil || res.StatusCode != tc.want || !strings.Contains(res.Reason, tc.reason) {
				t.Fatalf("answer %v, want %d containing %q", res, tc.want, tc.reason)
			}
			for _, c := range res.Reason {
				if c < 0x20 || c > 0x7e {
					t.Fatalf("reason %q is not printable ASCII", res.Reason)
				}
			}
		})
	}
	// a body too large for manscdp (sipgo's parser stops earlier still)
	big := decodeBody([]byte(`<Notify>` + strings.Repeat("x", manscdp.MaxBodySize) + `</Notify>`))
	if big.xml || big.err == nil || !strings.Contains(reasonPhrase(big.err), "larger than 1 MiB") {
		t.Fatalf("too large: %+v", big)
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

// FuzzMessageBody: any MESSAGE or NOTIFY body from a registered device is
// answered once, 200 or 400 (never 5xx, never a panic), with a one-line
// reason; a catalog response goes to the query waiting for it, without
// duplicates.
func FuzzMessageBody(f *testing.F) {
	id := testDevice
	for _, b := range []string{
		`<?xml version="1.0" encoding="GB2312"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><Status>OK</Status></Notify>`,
		`<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><SumNum>2</SumNum><DeviceList Num="2"><Item><DeviceID>44011300001310000001</DeviceID><Name>a</Name></Item><Item><DeviceID>44011300001310000001</DeviceID></Item></DeviceList></Response>`,
		`<Notify><CmdType>Catalog</CmdType><SN>2</SN><DeviceID>` + id + `</DeviceID><SumNum>1</SumNum><DeviceList Num="1"><Item><DeviceID>44011300001310000001</DeviceID><Event>DEL</Event></Item></DeviceList></Notify>`,
		`<Notify><CmdType>Alarm</CmdType><SN>3</SN><DeviceID>` + id + `</DeviceID><AlarmPriority>1</AlarmPriority><AlarmMethod>5</AlarmMethod><AlarmTime>2026-11-29T08:00:00</AlarmTime></Notify>`,
		`<Response><CmdType>DeviceInfo</CmdType><SN>1</SN><DeviceID>` + id + `</DeviceID><Result>OK</Result><DeviceName>x</DeviceName></Response>`,
		"<?xml version=\"1.0\" encoding=\"GB2312\"?><Notify><CmdType>Keepalive</CmdType><SN>1</SN><DeviceID>" + id + "</DeviceID><Status>OK</Status><Info>\xb1\xb1</Info></Notify>",
		`<<<>>>&&&`,
	} {
		f.Add([]byte(b), false)
		f.Add([]byte(b), true)
	}
	s := fuzzServer(f)
	online(s)
	var catalogs int
	s.OnCatalog = func(string, []manscdp.Item) { catalogs++ }
	s.OnAlarm = func(string, *manscdp.Notify) {}
	f.Fuzz(func(t *testing.T, body []byte, notify bool) {
		p := s.expect(testDevice, manscdp.CmdCatalog, 1)
		defer s.unexpect(p)
		raw := message(string(body))
		if notify {
			raw = strings.Replace(strings.Replace(raw, "MESSAGE sip:", "NOTIFY sip:", 1), "3 MESSAGE", "3 NOTIFY", 1)
		}
		res := handleRes(t, s, []byte(raw))
		if res == nil {
			return // not parseable as SIP at all
		}
		if res.StatusCode != 200 && res.StatusCode != 400 {
			t.Fatalf("status %d %s", res.StatusCode, res.Reason)
		}
		if strings.ContainsAny(res.Reason, "\r\n") {
			t.Fatalf("reason with a line break: %q", res.Reason)
		}
		// a page may hold more items than its SumNum says (the items are
		// what counts), but never the same item twice
		items, _, _ := p.snapshot()
		seen := map[string]bool{}
		for _, it := range items {
			if seen[it.DeviceID] {
				t.Fatalf("item %s collected twice", it.DeviceID)
			}
			seen[it.DeviceID] = true
		}
	})
}
