// Package upstream is Vigil as a lower platform of GB/T 28181 upper-level
// platforms (级联): it registers to each configured upper platform with
// digest, refreshes the registration before it expires, sends keepalive
// MESSAGEs, answers the upper platform's Catalog query with the cameras of
// the departments shared with it (under stable 20-digit channel IDs,
// grouped by department) and sends live video as MPEG-PS over RTP when the
// upper platform invites a channel (s=Play; UDP, or TCP either way, from
// the GOP cache). A platform that SUBSCRIBEs to the catalog gets a NOTIFY
// for each change (ADD, DEL, ON, OFF, UPDATE) within CatalogPoll; its
// DeviceControl PTZ commands move the camera (Service.PTZ).
//
// RecordInfo is answered from Service.Recordings; ForwardAlarm sends a
// device's alarm to the platforms that see its camera. An INVITE s=Playback
// (t= range) or s=Download (a=downloadspeed:) of a shared channel is served
// from the recordings (Service.Replay) to the offer's address and transport
// like a live view; INFO with a MANSRTSP body (PLAY, PAUSE, Range, Scale,
// TEARDOWN) steers it (200; 400 with the cause); at the end of the range
// Vigil sends a MediaStatus Notify (NotifyType 121) and hangs up. Not
// served yet: audio other than G.711 in live view (AAC is left out of the
// PS).
//
// It runs its own SIP user agent (emiago/sipgo) on its own UDP socket and
// TCP listener, apart from the devices' registrar (package gb28181/sip):
// the upper platform answers and sends its requests to the address the
// REGISTER came from (Via with rport, and Contact).
//
// # Registration
//
// A platform is registered after a 200 to the REGISTER (after a 401
// challenge, answered with MD5 digest). The registration is refreshed after
// three quarters of its lifetime; keepalives go every Keepalive. Three
// keepalives in a row without a 2xx answer, a keepalive refused with a
// final error (the upper platform forgot Vigil, e.g. after its restart), or
// a refresh that fails make the platform failing; Vigil then registers
// again with capped exponential backoff (RetryMin to RetryMax, with jitter)
// until it succeeds. OnEvent reports the first failure and the recovery.
//
// # Governance
//
// A platform sees only the cameras of its Departments: others are absent
// from its catalog and their INVITE is answered 404, as for a channel that
// does not exist. Every live view is written to the audit log with the
// upper platform's ID as the user, every playback (action playback) and
// download (action export) too, with the range asked for.
package upstream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/vigil-vms/vigil/gb28181/replay"
	gbsip "github.com/vigil-vms/vigil/gb28181/sip"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/ctxwait"
	"github.com/vigil-vms/vigil/registry"
)

// Platform states as the API reports them.
const (
	StateRegistered = "registered"
	StateFailing    = "failing"
)

// Config is one upper-level platform (gb28181.upstream[]).
type Config struct {
	ID        string // the upper platform's 20-digit SIP ID
	Realm     string // its SIP domain (10 digits)
	Address   string // its SIP host:port
	Transport string // udp (default) or tcp
	LocalID   string // the ID Vigil registers with; "": Service.ID
	Password  string
	// Expires is the registration lifetime asked for. It defaults to 1 hour.
	Expires time.Duration
	// Keepalive is the interval of keepalive MESSAGEs. It defaults to 60 seconds.
	Keepalive time.Duration
	// Departments are the departments whose cameras the platform sees.
	Departments []string
}

// Status is the runtime state of one upper platform.
type Status struct {
	ID          string    `json:"id"`
	Address     string    `json:"address"`
	Transport   string    `json:"transport"`
	LocalID     string    `json:"localId"`
	Departments []string  `json:"departments"`
	State       string    `json:"state"` // registered | failing
	Since       time.Time `json:"since"`
	LastError   string    `json:"lastError"`
	Viewers     int       `json:"viewers"`
}

// Event is a platform's registration failing (first failure after being
// registered, or the first attempts failing) or recovering.
type Event struct {
	Platform string
	Failing  bool
	Message  string
	Time     time.Time
}

// Service registers to the upper platforms and serves their requests.
// Set the fields, then call Serve once.
type Service struct {
	// ID is this platform's SIP ID (gb28181.id), the default LocalID.
	ID string
	// Realm is this platform's realm (gb28181.realm): the prefix of the
	// channel and group IDs it makes, and the source of the CivilCode.
	Realm string
	// Platforms are the upper platforms.
	Platforms []Config
	// Channels keeps the stable channel IDs. Required.
	Channels *Channels
	// Cameras lists every camera. Required.
	Cameras func(ctx context.Context) ([]ingest.Camera, error)
	// DepartmentName names a department in the catalog; nil: its ID.
	DepartmentName func(ctx context.Context, id string) string
	// Online reports whether a camera's video is available (a pushed
	// camera nothing needs counts as available). Nil: all are.
	Online func(cameraID string) bool
	// Stream returns a camera's main stream, nil when it has none. Required
	// for live view.
	Stream func(cameraID string) *ingest.Stream
	// PTZ moves a camera (speeds in −1…1, all 0 stops; gateway.Gateway.PTZ)
	// for an upper platform's DeviceControl. Nil: PTZ from above is refused.
	PTZ func(ctx context.Context, cam ingest.Camera, pan, tilt, zoom float64) error
	// Recordings lists a camera's recordings overlapping [start, end),
	// oldest first, made while it was in one of departments (RecordInfo).
	// Nil: none are reported.
	Recordings func(ctx context.Context, camera string, departments []string, start, end time.Time) ([]Recording, error)
	// Replay serves the recorded video of INVITE s=Playback and s=Download
	// (steered by MANSRTSP INFO). Nil: they are answered 488.
	Replay *replay.Player
	// Audit writes an audit row. Nil: nothing is written.
	Audit func(ctx context.Context, e registry.AuditEntry) error
	// MediaIP is the address written in answer SDPs; "": the local
	// address that reaches the upper platform.
	MediaIP string
	// OnEvent, when set, is called on failing and recovery (see Event), from
	// the platform's goroutine; it must not block long.
	OnEvent func(Event)
	// RequestTimeout bounds the wait for the answer to one request. It
	// defaults to 5 seconds (at most the keepalive interval).
	RequestTimeout time.Duration
	// RetryMin and RetryMax bound the backoff between registration
	// attempts. They default to 1 and 60 seconds.
	RetryMin, RetryMax time.Duration
	// CatalogPoll is how often the catalog of a subscribed platform is
	// compared with what it was last told. It defaults to 5 seconds.
	CatalogPoll time.Duration
	// Log defaults to slog.Default().
	Log *slog.Logger

	ua       *sipgo.UserAgent
	client   *sipgo.Client
	dialogs  *sipgo.DialogServerCache
	udpLaddr sip.Addr
	udpPort  int
	tcpPort  int
	ctx      context.Context

	mu    sync.Mutex
	plats map[string]*platform
	lives map[string]*live // by Call-ID
	subs  map[string]*subscription
	wg    sync.WaitGroup
	sn    atomic.Uint32
}

// platform is the runtime state of one upper platform.
type platform struct {
	cfg    Config
	callID string
	cseq   atomic.Uint32
	local  string // our IP as the platform reaches it

	// under Service.mu
	st         Status
	registered bool // at least once since the last failure
	announced  bool // failing was reported
}

func (s *Service) defaults() error {
	if s.Channels == nil || s.Cameras == nil {
		return errors.New("gb28181 upstream: channels and cameras are required")
	}
	if s.RequestTimeout <= 0 {
		s.RequestTimeout = 5 * time.Second
	}
	if s.RetryMin <= 0 {
		s.RetryMin = time.Second
	}
	if s.RetryMax <= 0 {
		s.RetryMax = time.Minute
	}
	if s.CatalogPoll <= 0 {
		s.CatalogPoll = 5 * time.Second
	}
	if s.Log == nil {
		s.Log = slog.Default()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.plats = map[string]*platform{}
	s.lives = map[string]*live{}
	s.subs = map[string]*subscription{}
	for _, c := range s.Platforms {
		if c.Transport == "" {
			c.Transport = "udp"
		}
		if c.LocalID == "" {
			c.LocalID = s.ID
		}
		if c.Expires <= 0 {
			c.Expires = time.Hour
		}
		if c.Keepalive <= 0 {
			c.Keepalive = time.Minute
		}
		p := &platform{cfg: c, callID: sip.GenerateTagN(24) + "@vigil"}
		p.st = Status{ID: c.ID, Address: c.Address, Transport: c.Transport, LocalID: c.LocalID,
			Departments: slices.Clone(c.Departments), State: StateFailing, Since: time.Now(), LastError: "not registered yet"}
		if p.st.Departments == nil {
			p.st.Departments = []string{}
		}
		s.plats[c.ID] = p
	}
	return nil
}

// Statuses returns the state of every upper platform, in configuration order.
func (s *Service) Statuses() []Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Status, 0, len(s.Platforms))
	for _, c := range s.Platforms {
		if p := s.plats[c.ID]; p != nil {
			st := p.st
			st.Departments = slices.Clone(st.Departments)
			out = append(out, st)
		} else {
			out = append(out, Status{ID: c.ID, Address: c.Address, State: StateFailing, LastError: "not started"})
		}
	}
	return out
}

// Serve registers to every platform and serves SIP on pc (UDP) and ln
// (TCP) until ctx ends; then it unregisters (bounded), ends the live views
// and closes both.
func (s *Service) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	if err := s.defaults(); err != nil {
		pc.Close()
		ln.Close()
		return err
	}
	ua, srv, client, err := gbsip.NewStack(s.Log)
	if err != nil {
		pc.Close()
		ln.Close()
		return fmt.Errorf("gb28181 upstream: %w", err)
	}
	s.client = client
	parent := ctx
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	host, port, _ := sip.ParseAddr(pc.LocalAddr().String())
	_, tcpPort, _ := sip.ParseAddr(ln.Addr().String())
	s.ua = ua
	s.mu.Lock()
	s.ctx = ctx
	s.mu.Unlock()
	s.udpLaddr = sip.Addr{IP: net.ParseIP(host), Port: port}
	s.udpPort, s.tcpPort = port, tcpPort
	s.dialogs = sipgo.NewDialogServerCache(s.client, sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: s.ID, Host: host, Port: port}})
	srv.OnMessage(s.onMessage)
	srv.OnInvite(s.onInvite)
	srv.OnAck(s.onAck)
	srv.OnBye(s.onBye)
	srv.OnInfo(s.onInfo)
	srv.OnSubscribe(s.onSubscribe)

	var srvWG sync.WaitGroup
	errs := make(chan error, 2)
	srvWG.Add(2)
	rc := &readyConn{PacketConn: pc, ready: make(chan struct{})}
	go func() { defer srvWG.Done(); errs <- srv.ServeUDP(rc) }()
	go func() { defer srvWG.Done(); errs <- srv.ServeTCP(ln) }()
	// Requests over UDP leave from the listening socket, which sipgo
	// knows once it reads from it.
	select {
	case <-rc.ready:
	case <-ctx.Done():
	}
	s.mu.Lock()
	plats := make([]*platform, 0, len(s.plats))
	for _, c := range s.Platforms {
		plats = append(plats, s.plats[c.ID])
	}
	s.mu.Unlock()
	var regWG sync.WaitGroup
	for _, p := range plats {
		regWG.Add(1)
		go func() { defer regWG.Done(); s.run(ctx, p) }()
	}

	var first error
	select {
	case <-ctx.Done():
	case first = <-errs:
	}
	cancel()
	regWG.Wait() // unregistered
	s.endLives()
	s.wg.Wait()
	pc.Close()
	ln.Close()
	ua.Close()
	srvWG.Wait()
	if parent.Err() != nil {
		return nil
	}
	return fmt.Errorf("gb28181 upstream: serve: %w", first)
}

// readyConn says when sipgo starts reading the socket (it has then added
// it to its connections).
type readyConn struct {
	net.PacketConn
	once  sync.Once
	ready chan struct{}
}

func (c *readyConn) ReadFrom(b []byte) (int, net.Addr, error) {
	c.once.Do(func() { close(c.ready) })
	return c.PacketConn.ReadFrom(b)
}

// run keeps one platform registered until ctx ends, then unregisters.
func (s *Service) run(ctx context.Context, p *platform) {
	backoff := s.RetryMin
	for {
		err := s.register(ctx, p, p.cfg.Expires)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			s.setFailing(p, err)
			if !ctxwait.Sleep(ctx, jitter(backoff)) {
				break
			}
			backoff = min(2*backoff, s.RetryMax)
			continue
		}
		s.setRegistered(p)
		backoff = s.RetryMin
		err = s.keep(ctx, p)
		if ctx.Err() != nil {
			break
		}
		s.setFailing(p, err)
	}
	// unregister, bounded, on a context of its own (ctx has ended)
	uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	was := p.st.State == StateRegistered
	s.mu.Unlock()
	if was {
		if err := s.register(uctx, p, 0); err != nil {
			s.Log.Info("gb28181 upstream: unregister", "platform", p.cfg.ID, "error", err)
		}
	}
}

// keep refreshes the registration and sends keepalives until one of them
// fails (returned) or ctx ends.
func (s *Service) keep(ctx context.Context, p *platform) error {
	refresh := time.NewTimer(p.cfg.Expires * 3 / 4)
	defer refresh.Stop()
	tick := time.NewTicker(p.cfg.Keepalive)
	defer tick.Stop()
	missed := 0
	var last error
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-refresh.C:
			if err := s.register(ctx, p, p.cfg.Expires); err != nil {
				return fmt.Errorf("refreshing the registration: %w", err)
			}
			refresh.Reset(p.cfg.Expires * 3 / 4)
		case <-tick.C:
			err := s.keepalive(ctx, p)
			var re *RequestError
			switch {
			case err == nil:
				missed, last = 0, nil
			case errors.As(err, &re) && re.Code >= 300:
				return fmt.Errorf("keepalive refused: %w", err)
			default:
				missed, last = missed+1, err
				if missed >= 3 {
					return fmt.Errorf("3 keepalives unanswered: %w", last)
				}
			}
		}
	}
}

func (s *Service) setFailing(p *platform, err error) {
	now := time.Now()
	s.mu.Lock()
	changed := p.st.State != StateFailing || !p.announced
	p.st.LastError = err.Error()
	if p.st.State != StateFailing {
		p.st.State, p.st.Since = StateFailing, now
	}
	report := !p.announced
	p.announced = true
	p.registered = false
	s.mu.Unlock()
	if changed {
		s.Log.Warn("gb28181 upstream failing", "platform", p.cfg.ID, "address", p.cfg.Address, "error", err)
	}
	if report && s.OnEvent != nil {
		s.OnEvent(Event{Platform: p.cfg.ID, Failing: true, Time: now,
			Message: fmt.Sprintf("upper platform %s (%s): %v", p.cfg.ID, p.cfg.Address, err)})
	}
}

func (s *Service) setRegistered(p *platform) {
	now := time.Now()
	s.mu.Lock()
	p.st.State, p.st.Since, p.st.LastError = StateRegistered, now, ""
	p.registered = true
	report := p.announced
	p.announced = false
	s.mu.Unlock()
	s.Log.Info("gb28181 upstream registered", "platform", p.cfg.ID, "address", p.cfg.Address)
	if report && s.OnEvent != nil {
		s.OnEvent(Event{Platform: p.cfg.ID, Time: now,
			Message: fmt.Sprintf("upper platform %s (%s): registered again", p.cfg.ID, p.cfg.Address)})
	}
}

func (s *Service) platform(id string) *platform {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.plats[id]
}

func (s *Service) nextSN() int { return int(s.sn.Add(1) & 0x7fffffff) }

// jitter spreads d over [d/2, d).
func jitter(d time.Duration) time.Duration {
	return d/2 + rand.N(d/2+1)
}

func itoa(n int) string { return strconv.Itoa(n) }
