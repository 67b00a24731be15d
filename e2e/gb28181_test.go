package e2e

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"golang.org/x/text/encoding/simplifiedchinese"

	"github.com/vigil-vms/vigil/alerts"
	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit/hookrecv"
)

// gbVigil starts a Vigil with GB/T 28181 on (SIP on a free port of
// 127.0.0.1) besides the shared one, and returns it.
func gbVigil(t *testing.T, edit func(*config.Config)) *app.App {
	t.Helper()
	if e2e.skip != "" {
		t.Skip(e2e.skip)
	}
	return startSecondApp(t, func(cfg *config.Config) {
		cfg.GB28181.Enabled = true
		cfg.GB28181.Listen = "127.0.0.1:0"
		cfg.GB28181.Password = "default-device-pw"
		cfg.GB28181.MediaPort = 0 // a free port
		if edit != nil {
			edit(cfg)
		}
	}, app.Options{})
}

// tabAt opens a tab logged in as admin on the Vigil at base, on route.
func tabAt(t *testing.T, base, route string) context.Context {
	t.Helper()
	ctx := tab(t, true)
	do(t, ctx, "log in at "+base,
		chromedp.Navigate(base+"/#/login"),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=login-username]`)),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-username]`), "admin"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=login-password]`), adminPassword),
		chromedp.Click(chromedp.CSS(`[data-testid=login-submit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=current-user]`)),
		chromedp.Navigate(base+"/#"+route))
	return ctx
}

// sipDevice is a GB/T 28181 device as far as REGISTER goes: raw SIP over
// UDP, written here rather than with the SIP library Vigil uses, so that
// the test does not share its mistakes.
type sipDevice struct {
	id, realm, platform string
	conn                *net.UDPConn
	server              *net.UDPAddr
	seq                 int
}

func newSIPDevice(t *testing.T, id, server, realm, platform string) *sipDevice {
	t.Helper()
	raddr, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &sipDevice{id: id, realm: realm, platform: platform, conn: conn, server: raddr}
}

// register sends a REGISTER (with the Authorization header auth, if any)
// and returns the final response's status and headers.
func (d *sipDevice) register(t *testing.T, auth string) (int, string) {
	t.Helper()
	return d.registerFor(t, auth, 3600)
}

// registerFor is register asking for expires seconds (0 unregisters).
func (d *sipDevice) registerFor(t *testing.T, auth string, expires int) (int, string) {
	t.Helper()
	hdrs := fmt.Sprintf("Contact: <sip:%s@%s>\r\nExpires: %d\r\n", d.id, d.conn.LocalAddr(), expires)
	if auth != "" {
		hdrs += "Authorization: " + auth + "\r\n"
	}
	return d.request(t, "REGISTER", hdrs, nil)
}

// request sends a request (with headers, each line ending in CRLF, and a
// MANSCDP body when not nil) and returns the final response's status and
// text. Requests the server sends meanwhile (an alarm's confirmation) are
// answered 200.
func (d *sipDevice) request(t *testing.T, method, headers string, body []byte) (int, string) {
	t.Helper()
	d.seq++
	local := d.conn.LocalAddr().String()
	uri := fmt.Sprintf("sip:%s@%s", d.platform, d.realm)
	to := d.platform // a REGISTER's To is the device registering
	if method == "REGISTER" {
		to = d.id
	}
	msg := fmt.Sprintf("%s %s SIP/2.0\r\n"+
		"Via: SIP/2.0/UDP %s;rport;branch=z9hG4bK-e2e-%s-%d\r\n"+
		"From: <sip:%s@%s>;tag=e2e%d\r\n"+
		"To: <sip:%s@%s>\r\n"+
		"Call-ID: e2e-%s-%d@127.0.0.1\r\n"+
		"CSeq: %d %s\r\n"+
		"Max-Forwards: 70\r\n"+
		"User-Agent: e2e raw SIP\r\n", method, uri, local, d.id, d.seq, d.id, d.realm, d.seq, to, d.realm, d.id, d.seq, d.seq, method)
	msg += headers
	if body != nil {
		msg += "Content-Type: Application/MANSCDP+xml\r\n"
	}
	msg += fmt.Sprintf("Content-Length: %d\r\n\r\n", len(body)) + string(body)
	if _, err := d.conn.WriteToUDP([]byte(msg), d.server); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 65536)
	for {
		d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, from, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("%s of %s: no answer: %v", method, d.id, err)
		}
		res := string(buf[:n])
		if !strings.HasPrefix(res, "SIP/2.0 ") {
			d.answer(t, res, from)
			continue
		}
		var code int
		if _, err := fmt.Sscanf(res, "SIP/2.0 %d", &code); err != nil {
			t.Fatalf("not a SIP response: %q", res)
		}
		if code >= 200 && strings.Contains(res, fmt.Sprintf("CSeq: %d %s", d.seq, method)) {
			return code, res
		}
	}
}

// expectRequest waits for a request of the server, answers it 200 OK and
// returns it.
func (d *sipDevice) expectRequest(t *testing.T, what string) string {
	t.Helper()
	buf := make([]byte, 65536)
	for {
		d.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
		n, from, err := d.conn.ReadFromUDP(buf)
		if err != nil {
			t.Fatalf("waiting for %s: %v", what, err)
		}
		if req := string(buf[:n]); !strings.HasPrefix(req, "SIP/2.0 ") {
			d.answer(t, req, from)
			return req
		}
	}
}

// serve answers every request of the server 200 OK from now until the
// test ends (the test sends no more requests of its own), and passes on
// the <PTZCmd> of each DeviceControl, once per request (not per
// retransmission).
func (d *sipDevice) serve(t *testing.T) <-chan string {
	t.Helper()
	ptz := make(chan string, 100)
	cmdRE := regexp.MustCompile(`<PTZCmd>\s*([0-9A-Fa-f]+)\s*</PTZCmd>`)
	idRE := regexp.MustCompile(`(?im)^(?:Call-ID|i)\s*:\s*(\S+)\s*$`)
	done := make(chan struct{})
	go func() {
		defer close(done)
		seen := map[string]bool{}
		buf := make([]byte, 65536)
		for {
			d.conn.SetReadDeadline(time.Time{})
			n, from, err := d.conn.ReadFromUDP(buf)
			if err != nil {
				return // closed at the test's end
			}
			req := string(buf[:n])
			if strings.HasPrefix(req, "SIP/2.0 ") {
				continue
			}
			if d.reply(req, from) != nil {
				return
			}
			id := idRE.FindStringSubmatch(req)
			if m := cmdRE.FindStringSubmatch(req); m != nil && id != nil && !seen[id[1]] {
				seen[id[1]] = true
				ptz <- strings.ToUpper(m[1])
			}
		}
	}()
	t.Cleanup(func() {
		d.conn.Close()
		<-done
	})
	return ptz
}

// answer answers a request of the server 200 OK.
func (d *sipDevice) answer(t *testing.T, req string, to *net.UDPAddr) {
	t.Helper()
	if err := d.reply(req, to); err != nil {
		t.Fatal(err)
	}
}

// reply sends the 200 OK of a request of the server.
func (d *sipDevice) reply(req string, to *net.UDPAddr) error {
	head, _, _ := strings.Cut(req, "\r\n\r\n")
	res := "SIP/2.0 200 OK\r\n"
	for _, l := range strings.Split(head, "\r\n")[1:] {
		name, _, _ := strings.Cut(l, ":")
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "via", "from", "to", "call-id", "cseq", "v", "f", "t", "i":
			res += l + "\r\n"
		}
	}
	res += "Content-Length: 0\r\n\r\n"
	_, err := d.conn.WriteToUDP([]byte(res), to)
	return err
}

// registerWithDigest registers with password, answering the challenge.
func (d *sipDevice) registerWithDigest(t *testing.T, password string) int {
	t.Helper()
	return d.digestRegister(t, password, 3600)
}

// digestRegister registers for expires seconds (0 unregisters) with
// password, answering the challenge.
func (d *sipDevice) digestRegister(t *testing.T, password string, expires int) int {
	t.Helper()
	code, res := d.registerFor(t, "", expires)
	if code != 401 {
		t.Fatalf("REGISTER without credentials: %d, want 401: %s", code, res)
	}
	m := regexp.MustCompile(`(?i)nonce="([^"]+)"`).FindStringSubmatch(res)
	if m == nil {
		t.Fatalf("no nonce in %q", res)
	}
	uri := fmt.Sprintf("sip:%s@%s", d.platform, d.realm)
	h := func(s string) string { sum := md5.Sum([]byte(s)); return hex.EncodeToString(sum[:]) }
	resp := h(h(d.id+":"+d.realm+":"+password) + ":" + m[1] + ":" + h("REGISTER:"+uri))
	code, _ = d.registerFor(t, fmt.Sprintf(`Digest username="%s", realm="%s", nonce="%s", uri="%s", response="%s", algorithm=MD5`,
		d.id, d.realm, m[1], uri, resp), expires)
	return code
}

// The devices page: a device nobody added is refused and listed; "Add" on
// the refused row adds it (the ID filled in); with its password it
// registers and the page shows it online, from where, over which
// transport; a wrong password shows as its last error; edit and delete.
func TestGB28181DevicesPage(t *testing.T) {
	a := gbVigil(t, nil)
	base := "http://" + a.Addr()
	sipAddr, _ := a.GB28181Addr()
	cfg := config.Default().GB28181
	const id = "44011300001320000077"
	dev := newSIPDevice(t, id, sipAddr, cfg.Realm, cfg.ID)
	if code, res := dev.register(t, ""); code != 403 {
		t.Fatalf("REGISTER of an unknown device: %d, want 403: %s", code, res)
	}

	ctx := tabAt(t, base, "/admin/gb28181")
	row := `tr[data-testid=gb-refused-row][data-device-id="` + id + `"]`
	waitFor(t, ctx, "the refused registration", `document.querySelector('`+row+`') !== null && document.querySelector('`+row+`').textContent.includes('127.0.0.1')`, 15*time.Second)
	shot(t, ctx, "60-gb28181-refused")
	do(t, ctx, "add the refused device",
		chromedp.Click(chromedp.CSS(row+` [data-testid=gb-refused-add]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=gb-form]`)))
	if got := eval[string](t, ctx, `document.querySelector('[data-testid=gb-id]').value`); got != id {
		t.Fatalf("the form's id is %q, want the refused device's", got)
	}
	do(t, ctx, "fill in the device",
		chromedp.SendKeys(chromedp.CSS(`[data-testid=gb-name]`), "Riverside NVR"),
		chromedp.SetValue(chromedp.CSS(`[data-testid=gb-department]`), "flood-control"),
		chromedp.SendKeys(chromedp.CSS(`[data-testid=gb-password]`), "nvr-pw-77"),
		chromedp.Click(chromedp.CSS(`[data-testid=gb-save]`)))
	devRow := `tr[data-testid=gb-device][data-device-id="` + id + `"]`
	waitFor(t, ctx, "the device, never registered, and no longer refused",
		`document.querySelector('[data-testid=gb-dialog]') === null && document.querySelector('`+devRow+` [data-testid=gb-state]').dataset.state === 'never' && document.querySelector('`+row+`') === null`, 15*time.Second)

	// A wrong password is refused and named; the right one registers.
	if code := dev.registerWithDigest(t, "wrong-pw"); code != 403 {
		t.Fatalf("REGISTER with a wrong password: %d, want 403", code)
	}
	waitFor(t, ctx, "the wrong password as the last error", `document.querySelector('`+devRow+` [data-testid=gb-last-error]').textContent.includes('wrong password')`, 15*time.Second)
	if code := dev.registerWithDigest(t, "nvr-pw-77"); code != 200 {
		t.Fatalf("REGISTER with the password: %d, want 200", code)
	}
	local := dev.conn.LocalAddr().String()
	waitFor(t, ctx, "the device online, from its address, over UDP",
		`(() => { const r = document.querySelector('`+devRow+`'); return r.querySelector('[data-testid=gb-state]').dataset.state === 'online' && r.querySelector('[data-testid=gb-address]').textContent === '`+local+`' && r.querySelector('[data-testid=gb-transport]').textContent === 'UDP' && r.querySelector('[data-testid=gb-last-error]').textContent === '—'; })()`, 15*time.Second)
	shot(t, ctx, "61-gb28181-online")

	do(t, ctx, "rename the device",
		chromedp.Click(chromedp.CSS(devRow+` [data-testid=gb-edit]`)),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=gb-form]`)),
		chromedp.SetValue(chromedp.CSS(`[data-testid=gb-name]`), "Riverside NVR 2"),
		chromedp.Click(chromedp.CSS(`[data-testid=gb-save]`)))
	waitFor(t, ctx, "the new name", `document.querySelector('[data-testid=gb-dialog]') === null && document.querySelector('`+devRow+`').textContent.includes('Riverside NVR 2')`, 15*time.Second)
	// The password was kept (the field left empty): it still registers.
	if code := dev.registerWithDigest(t, "nvr-pw-77"); code != 200 {
		t.Fatalf("REGISTER after the rename: %d, want 200 (password kept)", code)
	}
	do(t, ctx, "delete the device",
		chromedp.Click(chromedp.CSS(devRow+` [data-testid=gb-delete]`)),
		chromedp.Click(chromedp.CSS(`[data-testid=confirm-ok]`)))
	waitFor(t, ctx, "the device gone", `document.querySelector('`+devRow+`') === null`, 15*time.Second)
	if code, _ := dev.register(t, ""); code != 403 {
		t.Fatalf("REGISTER of the deleted device: %d, want 403", code)
	}
}

// A device's alarm (a MESSAGE Notify, in GB2312) becomes an event of its
// channel's camera, a mark on the playback timeline and an `alarm` alert;
// the device has a health check, and going offline for
// alerts.offlineAfter (here: unregistering) and coming back raise
// device.offline and device.online.
func TestGB28181AlarmAndDeviceAlerts(t *testing.T) {
	hooks := hookrecv.New[alerts.Event](t, func(*http.Request, []byte) bool { return true })
	a := gbVigil(t, func(cfg *config.Config) {
		cfg.Alerts.OfflineAfter = config.Duration(time.Second)
		cfg.Alerts.Webhooks = []config.Webhook{{URL: hooks.URL}}
	})
	base := "http://" + a.Addr()
	admin, err := login(base, "admin", adminPassword)
	if err != nil {
		t.Fatal(err)
	}
	const dev, channel = "44011300001180000042", "44011300001310000042"
	const cam = "gb-" + channel
	if _, err := admin.do("POST", "/api/v1/gb28181/devices", map[string]string{"id": dev, "name": "Levee NVR", "department": "flood-control", "password": "levee-pw"}, http.StatusCreated); err != nil {
		t.Fatal(err)
	}
	// the camera of the device's channel, as its catalog would make it
	if _, err := a.Registry.CreateCamera(context.Background(), ingest.Camera{ID: cam, Name: "Levee gate", Department: "flood-control",
		Source: ingest.SourceGB28181, GB28181: &ingest.GBChannel{Device: dev, Channel: channel}}); err != nil {
		t.Fatal(err)
	}
	next := func(want string) alerts.Event {
		t.Helper()
		for {
			select {
			case e := <-hooks.Events:
				if e.Event == want {
					return e
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("no %s alert", want)
			}
		}
	}

	sipAddr, _ := a.GB28181Addr()
	cfg := config.Default().GB28181
	d := newSIPDevice(t, dev, sipAddr, cfg.Realm, cfg.ID)
	if code := d.digestRegister(t, "levee-pw", 3600); code != 200 {
		t.Fatalf("REGISTER: %d", code)
	}
	at := time.Now().Truncate(time.Second)
	body, err := simplifiedchinese.GBK.NewEncoder().String(`<?xml version="1.0" encoding="GB2312"?>
<Notify><CmdType>Alarm</CmdType><SN>7</SN><DeviceID>` + channel + `</DeviceID><AlarmPriority>1</AlarmPriority>
<AlarmMethod>5</AlarmMethod><AlarmTime>` + at.Format("2006-01-02T15:04:05") + `</AlarmTime>
<AlarmDescription>区域入侵 water over the gate</AlarmDescription><Info><AlarmType>2</AlarmType></Info></Notify>`)
	if err != nil {
		t.Fatal(err)
	}
	if code, res := d.request(t, "MESSAGE", "", []byte(body)); code != 200 {
		t.Fatalf("alarm MESSAGE: %d %s", code, res)
	}
	// The platform confirms the alarm (GB/T 28181 9.4.2: an Alarm Response).
	if req := d.expectRequest(t, "the alarm's confirmation"); !strings.HasPrefix(req, "MESSAGE ") || !strings.Contains(req, "<CmdType>Alarm</CmdType>") ||
		!strings.Contains(req, "<SN>7</SN>") || !strings.Contains(req, "<Result>OK</Result>") {
		t.Errorf("the confirmation: %s", req)
	}
	e := next(alerts.Alarm)
	if e.Camera != cam || e.Department != "flood-control" || e.Severity != alerts.Critical || !strings.Contains(e.Message, "区域入侵 water over the gate") || !e.Time.Equal(at) {
		t.Errorf("alarm alert %+v (alarm at %s)", e, at)
	}

	// On the timeline of the camera's playback.
	ctx := tabAt(t, base, "/playback?camera="+cam+"&t="+rfc(at.Add(-time.Minute)))
	mark := `[data-testid=timeline-event][data-type=alarm][data-start="` + at.UTC().Format("2006-01-02T15:04:05.000Z") + `"]`
	waitFor(t, ctx, "the alarm on the timeline", `document.querySelector('`+mark+`') !== null && document.querySelector('`+mark+`').title.includes('water over the gate')`, 20*time.Second)
	shot(t, ctx, "64-gb28181-alarm-timeline")

	health := func() (status, msg string) {
		t.Helper()
		b, err := admin.do("GET", "/api/v1/health", nil, http.StatusOK)
		if err != nil {
			t.Fatal(err)
		}
		var rep struct {
			Checks []struct{ Name, Status, Message string }
		}
		if err := json.Unmarshal(b, &rep); err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Checks {
			if c.Name == "gb28181/"+dev {
				return c.Status, c.Message
			}
		}
		t.Fatalf("no health check of the device: %s", b)
		return "", ""
	}
	if st, msg := health(); st != "ok" || !strings.Contains(msg, "online since") {
		t.Errorf("the device's health: %s %q", st, msg)
	}

	// Offline: unregistered, and still so after alerts.offlineAfter.
	if code := d.digestRegister(t, "levee-pw", 0); code != 200 {
		t.Fatalf("unREGISTER: %d", code)
	}
	e = next(alerts.DeviceOffline)
	if e.Department != "flood-control" || !strings.Contains(e.Message, dev) || !strings.Contains(e.Message, "Levee NVR") || !strings.Contains(e.Message, "unregistered") {
		t.Errorf("device.offline %+v", e)
	}
	if st, msg := health(); st != "degraded" || !strings.Contains(msg, "offline since") {
		t.Errorf("the offline device's health: %s %q", st, msg)
	}
	if code := d.digestRegister(t, "levee-pw", 3600); code != 200 {
		t.Fatalf("REGISTER again: %d", code)
	}
	if e = next(alerts.DeviceOnline); e.Department != "flood-control" || !strings.Contains(e.Message, "online again") {
		t.Errorf("device.online %+v", e)
	}
}
