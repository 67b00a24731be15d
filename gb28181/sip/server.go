// Package sip is Vigil's GB/T 28181 SIP side: devices REGISTER with MD5
// digest, send keepalive MESSAGEs and are tracked online or offline; Vigil
// queries their catalog and device info, subscribes to catalog changes,
// receives alarms, moves their cameras (PTZ), asks for key frames and
// invites their live video.
//
// It is built on github.com/emiago/sipgo (transport, transactions, dialogs,
// parsing) and gb28181/manscdp (the XML bodies); this package adds the
// GB/T 28181 rules: who may register, the digest check, the Date header
// devices take their time from, the bounded list of refused devices, the
// three-missed-keepalives rule, and the requests a platform sends.
//
// # Registration
//
// Answers to a REGISTER: no Authorization → 401 with a fresh nonce; a
// nonce that is ours but older than NonceLifetime → 401 stale=true; a
// device no admin registered → 403 (and the refused list); a wrong
// password, user name or realm → 403, not another 401, so that a device
// configured wrongly does not loop on challenges (the cause is in the
// device's lastError); success → 200 with Date (DateFormat) and Expires.
// Unknown devices are refused before any challenge: their ID is all an
// admin needs to add them. OnState is called on every online/offline
// transition.
//
// # Messages from devices
//
// MESSAGE and NOTIFY bodies are read with manscdp.Decode (GB2312, GBK,
// GB18030 or UTF-8, strict). A body that is not XML at all is answered 400
// with the cause as the reason phrase; a device that is not registered is
// answered 403 (so it registers again); a body that is XML but misses
// required fields is answered 400 with the cause; a command this package
// does not handle (MobilePosition, …) is answered 200 and ignored. Keepalive
// notifies keep a device online; Catalog responses are matched to the
// pending query by device and SN; catalog change notifies (MESSAGE or NOTIFY)
// go to OnCatalog with each item's Event set (see CatalogChange); alarms go
// to OnAlarm after the 200, and an alarm MESSAGE is confirmed with an Alarm
// Response MESSAGE as GB/T 28181-2016 9.4.2 asks.
//
// # Requests to devices
//
// Requests go where the device was last heard from (its REGISTER or
// keepalive source address, which is its NAT mapping) over the transport it
// used: over UDP from the server's own listening socket, over TCP on the
// device's own connection, so they pass the NAT the device sits behind.
// Catalog assembles the pages of a catalog answer (SumNum items, duplicates
// dropped) within CatalogTimeout. When a device comes online the server
// queries its catalog and SUBSCRIBEs to catalog changes; a device that
// refuses the subscription (4xx/5xx, typically 501) or does not answer it
// is queried again every CatalogRefresh instead, and State.Subscription
// says which happened. DeviceInfo waits for the DeviceInfo response; PTZ
// and KeyFrame (IFameCmd) are DeviceControl MESSAGEs answered by the SIP
// 200 alone. Failures are *RequestError (offline, no answer, refused with
// the code, incomplete answer, Result ERROR).
//
// # Live video
//
// Invite sends an INVITE with an SDP offer (s=Play, our media address in
// o= and c=, PS on payload 96 with H264 98 and MPEG4 97 listed, recvonly,
// y= SSRC; RTP over UDP, or over TCP with a=setup passive or active and
// a=connection:new) and a Subject "channel:SSRC,platform:0". It ends within
// InviteTimeout with a *Call, whose Answer is the device's SDP read
// strictly, or with a typed *InviteError (offline, no answer, refused with
// the code, bad SDP) whose message names device, channel and cause. A 2xx
// is always ACKed; one with an unusable SDP is hung up at once, and one
// that arrives after the timeout is ACKed and hung up too. A device's BYE
// closes Call.Done; Call.Bye hangs up; Serve hangs up what is left when it
// stops.
package sip

import (
	"context"
	"crypto/hmac"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
)

// Device states as the API reports them.
const (
	StateNever   = "never"
	StateOnline  = "online"
	StateOffline = "offline"
)

// DateFormat is the form of the Date header in the 200 to a REGISTER
// (GB/T 28181: local time with milliseconds, no zone).
const DateFormat = "2006-01-02T15:04:05.000"

// Lookup tells whether an admin registered the device id and its password
// ("" means the server's default password). An error (the database) is
// answered 500, and the device is not listed as refused.
type Lookup func(id string) (password string, ok bool, err error)

// State is the runtime state of one device.
type State struct {
	State     string    `json:"state"`
	Since     time.Time `json:"since"`
	Address   string    `json:"address"`
	Transport string    `json:"transport"`
	LastError string    `json:"lastError"`
	// Subscription is what became of the catalog SUBSCRIBE sent when the
	// device came online: "" (not tried yet), "active", "refused" (a
	// 3xx–6xx answer) or "unanswered"; SubscriptionNote says it in a
	// sentence, with the fallback ("queried every 5m0s").
	Subscription     string `json:"subscription"`
	SubscriptionNote string `json:"subscriptionNote"`
}

// Catalog subscription states (State.Subscription).
const (
	SubscriptionActive     = "active"
	SubscriptionRefused    = "refused"
	SubscriptionUnanswered = "unanswered"
)

// Refused is a REGISTER from a device no admin registered.
type Refused struct {
	ID       string    `json:"id"`
	Address  string    `json:"address"`
	Time     time.Time `json:"time"`
	LastSeen time.Time `json:"lastSeen"`
	Count    int       `json:"count"`
}

// Server is the SIP server devices register to.
type Server struct {
	// Realm is the digest realm (gb28181.realm). Required.
	Realm string
	// ID is this platform's 20-digit SIP ID (gb28181.id).
	ID string
	// Password is the default device password (gb28181.password).
	Password string
	// Lookup finds registered devices. Required.
	Lookup Lookup
	// KeepaliveInterval is the device keepalive interval; three missed
	// keepalives make a device offline. It defaults to 60 seconds.
	KeepaliveInterval time.Duration
	// NonceLifetime is how long a digest nonce is accepted.
	// It defaults to 5 minutes.
	NonceLifetime time.Duration
	// MaxRefused bounds the refused list. It defaults to 256.
	MaxRefused int
	// MaxExpires caps the registration lifetime a device asks for.
	// It defaults to 24 hours.
	MaxExpires time.Duration
	// RequestTimeout bounds the wait for the SIP answer to a MESSAGE or
	// SUBSCRIBE, and for a DeviceInfo response. It defaults to 5 seconds.
	RequestTimeout time.Duration
	// CatalogTimeout bounds the wait for all pages of a catalog answer.
	// It defaults to 15 seconds.
	CatalogTimeout time.Duration
	// InviteTimeout bounds an INVITE from sending to its final answer, so
	// that a caller can fall back to another transport within 5 s. It
	// defaults to 4 seconds.
	InviteTimeout time.Duration
	// CatalogRefresh is how often the catalog of a device that refused
	// (or did not answer) the catalog subscription is queried again. A
	// negative value turns automatic catalog queries and subscriptions
	// off. It defaults to 5 minutes.
	CatalogRefresh time.Duration
	// SubscribeExpires is the catalog subscription's lifetime; it is
	// renewed (and the catalog queried again) after three quarters of it.
	// It defaults to 1 hour.
	SubscribeExpires time.Duration
	// Log defaults to slog.Default().
	Log *slog.Logger
	// Now defaults to time.Now.
	Now func() time.Time

	// OnState, when set, is called on every online/offline transition of a
	// device, outside the server's locks, from a SIP goroutine; it must not
	// block long.
	OnState func(deviceID string, st State)
	// OnCatalog, when set, is called with a device's complete catalog (all
	// pages of an answer, items without Event) and with each catalog change
	// notify (items with Event set; see CatalogChange). Same rules as OnState.
	OnCatalog func(deviceID string, items []manscdp.Item)
	// OnAlarm, when set, is called with each alarm a device sends, after it
	// was answered. Same rules as OnState.
	OnAlarm func(deviceID string, a *manscdp.Notify)

	secret []byte

	mu      sync.Mutex
	devices map[string]*device
	refused map[string]*Refused
	pending map[pendKey]*pending
	calls   map[string]*Call
	late    map[string]time.Time // Call-IDs of late INVITE answers hung up

	// set by Serve
	ua       *sipgo.UserAgent
	client   *sipgo.Client
	udpLaddr sip.Addr // the UDP listener, the local address of requests over UDP
	udpPort  int
	tcpPort  int
	ctx      context.Context // Serve's
	bg       sync.WaitGroup  // background sends (alarm answers, CANCEL, BYE)
	catalogQ chan string
	sn       atomic.Uint32
}

type device struct {
	State
	expires       time.Time // registration end
	lastKeepalive time.Time
	charset       manscdp.Charset // of the device's bodies; ours are written in it
	local         string          // our IP as the device reaches it …
	localFor      string          // … computed for this Address
	catalogDue    time.Time       // next automatic catalog query (zero: none)
	catalogBusy   bool            // queued or running
}

const (
	maxIDLen      = 64
	maxAddressLen = 64
)

func (s *Server) defaults() error {
	if s.Realm == "" {
		return errors.New("gb28181 sip: realm is required")
	}
	if s.Lookup == nil {
		return errors.New("gb28181 sip: lookup is required")
	}
	if s.KeepaliveInterval <= 0 {
		s.KeepaliveInterval = 60 * time.Second
	}
	if s.NonceLifetime <= 0 {
		s.NonceLifetime = 5 * time.Minute
	}
	if s.MaxRefused <= 0 {
		s.MaxRefused = 256
	}
	if s.MaxExpires <= 0 {
		s.MaxExpires = 24 * time.Hour
	}
	if s.RequestTimeout <= 0 {
		s.RequestTimeout = 5 * time.Second
	}
	if s.CatalogTimeout <= 0 {
		s.CatalogTimeout = 15 * time.Second
	}
	if s.InviteTimeout <= 0 {
		s.InviteTimeout = 4 * time.Second
	}
	if s.CatalogRefresh == 0 {
		s.CatalogRefresh = 5 * time.Minute
	}
	if s.SubscribeExpires <= 0 {
		s.SubscribeExpires = time.Hour
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	s.secret = make([]byte, 32)
	if _, err := rand.Read(s.secret); err != nil {
		return fmt.Errorf("gb28181 sip: nonce secret: %w", err)
	}
	s.mu.Lock()
	s.devices = map[string]*device{}
	s.refused = map[string]*Refused{}
	s.pending = map[pendKey]*pending{}
	s.calls = map[string]*Call{}
	s.late = map[string]time.Time{}
	s.mu.Unlock()
	return nil
}

// ListenAndServe listens on addr over UDP and TCP and serves until ctx ends.
func (s *Server) ListenAndServe(ctx context.Context, addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("gb28181 sip: listen udp %s: %w", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		pc.Close()
		return fmt.Errorf("gb28181 sip: listen tcp %s: %w", addr, err)
	}
	return s.Serve(ctx, pc, ln)
}

// Serve serves SIP on pc (UDP) and ln (TCP) until ctx ends; it closes both.
// On the way out it hangs up the calls still up (BYE, bounded).
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	if err := s.defaults(); err != nil {
		pc.Close()
		ln.Close()
		return err
	}
	ua, srv, client, err := NewStack(s.Log,
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(s.Log),
			sip.WithTransactionLayerUnhandledResponseHandler(s.unhandledResponse)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(s.Log)))
	if err != nil {
		pc.Close()
		ln.Close()
		return fmt.Errorf("gb28181 sip: %w", err)
	}
	s.client = client
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	host, port, _ := sip.ParseAddr(pc.LocalAddr().String())
	_, tcpPort, _ := sip.ParseAddr(ln.Addr().String())
	s.mu.Lock()
	s.ua = ua
	s.ctx = ctx
	s.udpLaddr = sip.Addr{IP: net.ParseIP(host), Port: port}
	s.udpPort, s.tcpPort = port, tcpPort
	s.catalogQ = make(chan string, 1024)
	s.mu.Unlock()
	srv.OnRegister(s.onRegister)
	srv.OnMessage(s.onMessage)
	srv.OnNotify(s.onNotify)
	srv.OnBye(s.onBye)

	var wg sync.WaitGroup
	errs := make(chan error, 2)
	wg.Add(3 + catalogWorkers)
	go func() { defer wg.Done(); errs <- srv.ServeUDP(pc) }()
	go func() { defer wg.Done(); errs <- srv.ServeTCP(ln) }()
	go func() { defer wg.Done(); s.watch(ctx) }()
	for range catalogWorkers {
		go func() { defer wg.Done(); s.catalogWorker(ctx) }()
	}

	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
	}
	s.hangUpAll()
	cancel()
	s.bg.Wait()
	pc.Close()
	ln.Close()
	ua.Close()
	wg.Wait()
	if parent.Err() != nil {
		return nil
	}
	return fmt.Errorf("gb28181 sip: serve: %w", first)
}

// watch marks devices offline whose keepalives or registration lapsed.
func (s *Server) watch(ctx context.Context) {
	tick := s.KeepaliveInterval / 4
	if tick > time.Second {
		tick = time.Second
	}
	t := time.NewTicker(tick)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			s.sweep()
		}
	}
}

func (s *Server) sweep() {
	now := s.Now()
	var changed []stateChange
	s.mu.Lock()
	for id, d := range s.devices {
		if d.State.State != StateOnline {
			continue
		}
		switch {
		case now.After(d.expires):
			changed = append(changed, s.setOffline(id, d, now, "registration expired"))
		case now.Sub(d.lastKeepalive) > 3*s.KeepaliveInterval:
			changed = append(changed, s.setOffline(id, d, now, "3 keepalives missed"))
		case !d.catalogBusy && !d.catalogDue.IsZero() && !now.Before(d.catalogDue):
			select {
			case s.catalogQ <- id:
				d.catalogBusy = true
			default: // the workers are behind: the next sweep tries again
			}
		}
	}
	s.mu.Unlock()
	s.notify(changed)
}

// stateChange is an online/offline transition to report to OnState once
// the lock is released.
type stateChange struct {
	id string
	st State
}

func (s *Server) notify(changes []stateChange) {
	if s.OnState == nil {
		return
	}
	for _, c := range changes {
		s.OnState(c.id, c.st)
	}
}

func (s *Server) setOffline(id string, d *device, now time.Time, cause string) stateChange {
	d.State.State = StateOffline
	d.Since = now
	d.LastError = cause
	d.catalogDue = time.Time{}
	s.Log.Info("gb28181 device offline", "device", id, "cause", cause)
	return stateChange{id, d.State}
}

// DeviceState returns the runtime state of a device ("never" if it has not
// registered since Vigil started).
func (s *Server) DeviceState(id string) State {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d, ok := s.devices[id]; ok {
		return d.State
	}
	return State{State: StateNever}
}

// Forget drops the runtime state of a device (after an admin deleted it).
func (s *Server) Forget(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.devices, id)
}

// Admitted drops id from the refused list: an admin has added the device.
func (s *Server) Admitted(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.refused, id)
}

// RefusedList returns the refused registrations, most recently seen first.
func (s *Server) RefusedList() []Refused {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Refused, 0, len(s.refused))
	for _, r := range s.refused {
		out = append(out, *r)
	}
	slices.SortFunc(out, func(a, b Refused) int { return b.LastSeen.Compare(a.LastSeen) })
	return out
}

func (s *Server) refuse(id, addr string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id = clip(id, maxIDLen)
	if r, ok := s.refused[id]; ok {
		r.LastSeen = now
		r.Address = clip(addr, maxAddressLen)
		r.Count++
		return
	}
	if s.refused == nil {
		return // not serving
	}
	if len(s.refused) >= s.MaxRefused {
		var oldest string
		for k, r := range s.refused {
			if oldest == "" || r.LastSeen.Before(s.refused[oldest].LastSeen) {
				oldest = k
			}
		}
		delete(s.refused, oldest)
	}
	s.refused[id] = &Refused{ID: id, Address: clip(addr, maxAddressLen), Time: now, LastSeen: now, Count: 1}
}

func clip(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// nonce is stateless: issue time and an HMAC over it and the source
// address, so a REGISTER flood costs no memory.
func (s *Server) nonce(now time.Time, addr string) string {
	ts := strconv.FormatInt(now.UnixNano(), 16)
	return ts + "." + s.nonceMAC(ts, addr)
}

func (s *Server) nonceMAC(ts, addr string) string {
	m := hmac.New(sha256.New, s.secret)
	m.Write([]byte(ts + "|" + hostOf(addr)))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// checkNonce reports whether nonce was issued by us to addr (valid) and
// whether it is still fresh.
func (s *Server) checkNonce(nonce, addr string, now time.Time) (valid, fresh bool) {
	ts, mac, ok := strings.Cut(nonce, ".")
	if !ok || len(ts) > 16 {
		return false, false
	}
	if !hmac.Equal([]byte(mac), []byte(s.nonceMAC(ts, addr))) {
		return false, false
	}
	n, err := strconv.ParseInt(ts, 16, 64)
	if err != nil {
		return false, false
	}
	age := now.Sub(time.Unix(0, n))
	return true, age >= 0 && age <= s.NonceLifetime
}

func hostOf(addr string) string {
	if h, _, err := net.SplitHostPort(addr); err == nil {
		return h
	}
	return addr
}

func (s *Server) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		s.Log.Debug("gb28181 respond", "code", code, "error", err)
	}
}

func (s *Server) challenge(req *sip.Request, tx sip.ServerTransaction, now time.Time, stale bool) {
	ch := digest.Challenge{
		Realm:     s.Realm,
		Nonce:     s.nonce(now, req.Source()),
		Algorithm: "MD5",
		Stale:     stale,
	}
	s.respond(req, tx, 401, "Unauthorized", sip.NewHeader("WWW-Authenticate", ch.String()))
}

// deviceID is the user part of the From header (GB/T 28181: the device's
// 20-digit ID).
func deviceID(req *sip.Request) string {
	if f := req.From(); f != nil {
		return f.Address.User
	}
	return ""
}

func (s *Server) onRegister(req *sip.Request, tx sip.ServerTransaction) {
	now := s.Now()
	id := deviceID(req)
	addr := req.Source()
	if id == "" {
		s.respond(req, tx, 400, "Missing From user")
		return
	}
	password, ok, err := s.Lookup(id)
	if err != nil {
		s.Log.Error("gb28181 register: device lookup", "device", clip(id, maxIDLen), "error", err)
		s.respond(req, tx, 500, "Server Internal Error")
		return
	}
	if !ok {
		s.refuse(id, addr, now)
		s.Log.Info("gb28181 register refused: unknown device", "device", clip(id, maxIDLen), "address", addr)
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	if password == "" {
		password = s.Password
	}
	h := req.GetHeader("Authorization")
	if h == nil {
		s.challenge(req, tx, now, false)
		return
	}
	cred, err := digest.ParseCredentials(h.Value())
	if err != nil {
		s.failed(id, now, "bad Authorization header")
		s.respond(req, tx, 400, "Bad Authorization")
		return
	}
	valid, fresh := s.checkNonce(cred.Nonce, addr, now)
	if !valid || !fresh {
		s.challenge(req, tx, now, valid)
		return
	}
	if cred.Username != id || cred.Realm != s.Realm || !strings.EqualFold(orMD5(cred.Algorithm), "MD5") {
		s.failed(id, now, "digest username, realm or algorithm does not match")
		s.respond(req, tx, 403, "Forbidden")
		return
	}
	if !hmac.Equal([]byte(strings.ToLower(cred.Response)), []byte(expectedResponse(cred, password, string(req.Method)))) {
		s.failed(id, now, "wrong password")
		s.Log.Info("gb28181 register refused: wrong password", "device", id, "address", addr)
		s.respond(req, tx, 403, "Forbidden")
		return
	}

	expires := s.MaxExpires
	if e := req.GetHeader("Expires"); e != nil {
		n, err := strconv.Atoi(strings.TrimSpace(e.Value()))
		if err != nil || n < 0 {
			s.respond(req, tx, 400, "Bad Expires")
			return
		}
		if n < int(expires/time.Second) { // compared in seconds: a huge n does not overflow
			expires = time.Duration(n) * time.Second
		}
	}
	if expires == 0 {
		var changed []stateChange
		s.mu.Lock()
		d := s.deviceLocked(id)
		if d.State.State == StateOnline {
			changed = append(changed, s.setOffline(id, d, now, "unregistered"))
		} else {
			d.State.State = StateOffline
			d.Since = now
			d.LastError = "unregistered"
		}
		s.mu.Unlock()
		s.Log.Info("gb28181 device unregistered", "device", id)
		s.respond(req, tx, 200, "OK", sip.NewHeader("Date", now.Format(DateFormat)), sip.NewHeader("Expires", "0"))
		s.notify(changed)
		return
	}
	var changed []stateChange
	s.mu.Lock()
	d := s.deviceLocked(id)
	d.Address = clip(addr, maxAddressLen)
	d.Transport = strings.ToLower(req.Transport())
	d.LastError = ""
	d.expires = now.Add(expires)
	d.lastKeepalive = now
	if d.State.State != StateOnline {
		d.State.State = StateOnline
		d.Since = now
		// a device that comes back may have new firmware: try the
		// subscription again, and query the catalog at once
		d.Subscription, d.SubscriptionNote = "", ""
		if s.CatalogRefresh > 0 {
			d.catalogDue = now
		}
		changed = append(changed, stateChange{id, d.State})
		s.Log.Info("gb28181 device online", "device", id, "address", addr)
	}
	s.mu.Unlock()
	s.respond(req, tx, 200, "OK",
		sip.NewHeader("Date", now.Format(DateFormat)),
		sip.NewHeader("Expires", strconv.Itoa(int(expires/time.Second))))
	s.notify(changed)
}

func (s *Server) deviceLocked(id string) *device {
	d, ok := s.devices[id]
	if !ok {
		d = &device{State: State{State: StateNever}}
		s.devices[id] = d
	}
	return d
}

func (s *Server) failed(id string, now time.Time, cause string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.deviceLocked(id)
	d.LastError = cause
	if d.State.State == StateNever {
		d.Since = now
	}
}

func orMD5(alg string) string {
	if alg == "" {
		return "MD5"
	}
	return alg
}

func md5hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// expectedResponse is the RFC 2617 digest response for MD5, with or
// without qop=auth.
func expectedResponse(c *digest.Credentials, password, method string) string {
	ha1 := md5hex(c.Username + ":" + c.Realm + ":" + password)
	ha2 := md5hex(method + ":" + c.URI)
	if c.QOP == "auth" {
		return md5hex(fmt.Sprintf("%s:%s:%08x:%s:%s:%s", ha1, c.Nonce, c.Nc, c.Cnonce, c.QOP, ha2))
	}
	return md5hex(ha1 + ":" + c.Nonce + ":" + ha2)
}

// NewStack makes the sipgo user agent ("Vigil", with opts), its server and
// its client, logging to log: the SIP stack the registrar and the upward
// cascade each run. On an error nothing is left open.
func NewStack(log *slog.Logger, opts ...sipgo.UserAgentOption) (*sipgo.UserAgent, *sipgo.Server, *sipgo.Client, error) {
	ua, err := sipgo.NewUA(append([]sipgo.UserAgentOption{sipgo.WithUserAgent("Vigil")}, opts...)...)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(log))
	if err != nil {
		ua.Close()
		return nil, nil, nil, fmt.Errorf("server: %w", err)
	}
	client, err := sipgo.NewClient(ua, sipgo.WithClientLogger(log))
	if err != nil {
		ua.Close()
		return nil, nil, nil, fmt.Errorf("client: %w", err)
	}
	return ua, srv, client, nil
}
