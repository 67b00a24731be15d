// Package gbsim simulates a GB/T 28181 device — an IP camera or an NVR with N
// channels — for tests, benchmarks and `vigil demo` (and `vigil camsim
// --gb28181`, Main).
//
// A Device registers to a platform over SIP (UDP or TCP) with MD5 digest
// (qop=auth when offered), refreshes its registration before it expires and
// unregisters on Close; sends keepalive MESSAGEs; takes its clock from the
// Date header of the 200 to its REGISTER (ClockOffset); answers Catalog
// (paged, SumNum), DeviceInfo and DeviceStatus queries; accepts or refuses a
// catalog SUBSCRIBE and NOTIFYs channel changes (SetChannel, RemoveChannel)
// to a subscriber; records PTZ DeviceControl commands (PTZ); sends Alarm
// notifications (SendAlarm).
//
// An INVITE for a channel is answered with an SDP (y= echoed) and, after the
// ACK, the channel's video — camsim's looping H.264 or H.265 clip, optionally
// with AAC or G.711 audio — is sent as MPEG-PS over RTP at real-time pace
// (90 kHz timestamps, a PSM before every keyframe, RTP payloads of at most
// MaxRTPPayload bytes): over UDP, over TCP as the connecting side (the
// platform offered a=setup:passive) or as the listening side (a=setup:active,
// the port in the answer), RTP over TCP framed per RFC 4571. An IFameCmd
// makes the next video unit a keyframe. BYE works both ways (Hangup; a broken
// TCP media connection also ends in a BYE from the device).
//
// Faults (Config.Faults, Device.SetFaults) make the device misbehave the ways
// real devices do, so that a platform's error reporting and transport
// fallback can be tested.
//
// It is built on github.com/emiago/sipgo (transport, transactions, digest,
// dialogs), gb28181/manscdp (bodies), gb28181/ps (MPEG-PS, RFC 4571) and
// camsim's clips.
package gbsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/gb28181/manscdp"
)

// Media transports, named from the platform's side as in Vigil's gateway:
// "tcp-passive" — the platform listens and the device connects; "tcp-active" —
// the platform connects to the port the device put in its answer.
const (
	TransportUDP        = "udp"
	TransportTCPPassive = "tcp-passive"
	TransportTCPActive  = "tcp-active"
)

// Channel is one video channel of the device.
type Channel struct {
	// ID is the channel's 20-digit code. Required.
	ID string
	// Name is shown in the catalog. It defaults to "Channel N".
	Name string
	// PTZ marks a dome camera (catalog PTZType 1) that accepts PTZ commands.
	PTZ bool
	// Off lists the channel with Status OFF.
	Off bool
}

// Faults make the device misbehave. The zero value is a well-behaved device.
type Faults struct {
	// NoRTP answers INVITEs but never sends RTP (nor connects over TCP).
	NoRTP bool
	// WrongSSRC sends RTP with an SSRC other than the one in the offer's y=
	// (the answer still echoes the offered y=).
	WrongSSRC bool
	// NoPSM sends MPEG-PS without program stream maps.
	NoPSM bool
	// RefuseInvite, when not 0, answers every INVITE with this SIP status (e.g. 486).
	RefuseInvite int
	// NoAnswer answers INVITEs with 100 Trying and nothing more (until the
	// platform CANCELs or gives up), as a device that hangs would.
	NoAnswer bool
	// BadSDP answers INVITEs with 200 and an SDP without a usable media line.
	BadSDP bool
	// RefuseTransports lists media transports (TransportUDP, …) whose INVITEs
	// are answered 488 Not Acceptable Here.
	RefuseTransports []string
	// SilentTransports lists media transports that are answered 200 but carry
	// nothing: no RTP, no TCP connection.
	SilentTransports []string
	// NoKeepalive sends no keepalive MESSAGEs (the platform should mark the
	// device offline after three intervals).
	NoKeepalive bool
}

// Config configures a Device.
type Config struct {
	// ID is the device's 20-digit code, its SIP user and digest user name. Required.
	ID string
	// Password is the digest password.
	Password string
	// Realm is the host part of the device's SIP URIs. It defaults to the first
	// 10 digits of ID. The digest realm is the one the platform's challenge names.
	Realm string
	// Server is the platform's SIP address, host:port. Required.
	Server string
	// ServerID is the platform's 20-digit code, the user of the request URI.
	// It defaults to none (sip:host:port).
	ServerID string
	// Transport is the SIP transport, "udp" or "tcp". It defaults to "udp".
	Transport string
	// LocalIP is the address the device listens on and writes into Contact and
	// SDP. It defaults to the local address that routes to Server.
	LocalIP string
	// Channels are the device's video channels. At least one is required.
	Channels []Channel
	// Keepalive is the keepalive interval. It defaults to 60 seconds.
	Keepalive time.Duration
	// Expires is the registration lifetime asked for. It defaults to 3600 seconds;
	// the device re-registers when 80 % of the lifetime granted has passed.
	Expires time.Duration
	// Codec is the video codec, camsim.CodecH264 or camsim.CodecH265.
	// It defaults to camsim.CodecH264.
	Codec string
	// Bitrate picks camsim's main-stream clip: camsim.BitrateNormal (about
	// 1.1 Mbit/s) or camsim.BitrateHigh (about 2 Mbit/s, H.264 only).
	// It defaults to camsim.BitrateNormal.
	Bitrate string
	// Audio adds audio to the PS stream: AudioCodec, or AudioAAC when that is empty.
	Audio bool
	// AudioCodec is the audio with Audio: AudioAAC (camsim's AAC clip),
	// AudioPCMA or AudioPCMU (a G.711 tone). It defaults to AudioAAC.
	AudioCodec string
	// Clips, when set, are shared instead of loading camsim's clips for this
	// device (useful with many devices). Codec, Bitrate and the audio are then ignored.
	Clips *Clips
	// MidGOP starts a session's video where the channel's looping clip is
	// now, as a camera's encoder runs whoever watches: the first keyframe
	// then comes up to 2 s later, unless the platform asks for one
	// (IFameCmd). By default a session starts with a keyframe.
	MidGOP bool
	// CatalogSubscribe accepts catalog SUBSCRIBEs (200) and sends a NOTIFY on
	// every channel change; when false they are refused with 489 Bad Event.
	CatalogSubscribe bool
	// CatalogPageItems is how many catalog items one response MESSAGE carries.
	// It defaults to manscdp.DefaultPageItems.
	CatalogPageItems int
	// Name, Manufacturer, Model and Firmware answer DeviceInfo.
	// They default to "gbsim <ID>", "Vigil", "gbsim" and "1.0".
	Name, Manufacturer, Model, Firmware string
	// Faults make the device misbehave (see Faults); Device.SetFaults
	// changes them while it runs.
	Faults Faults
	// Log defaults to slog.Default().
	Log *slog.Logger
}

// PTZReceived is one DeviceControl PTZCmd as the device received it.
type PTZReceived struct {
	// Channel is the DeviceID of the control (the channel addressed).
	Channel string
	// Raw is the <PTZCmd> text as received.
	Raw string
	// Cmd is the parsed command; Err is set when Raw did not parse.
	Cmd manscdp.PTZCmd
	// Pan, Tilt and Zoom are the speeds in −1…1 (manscdp.PTZCmd.Speeds).
	Pan, Tilt, Zoom float64
	Err             error
}

// Device is a running simulated device.
type Device struct {
	cfg        Config
	log        *slog.Logger
	ua         *sipgo.UserAgent
	srv        *sipgo.Server
	cli        *sipgo.Client
	dialogs    *sipgo.DialogUA
	transport  string // UDP or TCP
	localIP    string
	sipAddr    string // local SIP address (UDP listener), "" over TCP
	pc         net.PacketConn
	recipient  sip.Uri
	fromTag    string
	regCallID  string
	registered chan struct{}
	regOnce    sync.Once
	ptz        chan PTZReceived
	sn         atomic.Int64
	clipsOnce  sync.Once
	clips      *Clips
	clipsErr   error

	started  time.Time // the clips' loops start (Config.MidGOP)
	ctx      context.Context
	cancel   context.CancelFunc
	wg       sync.WaitGroup // the device's own goroutines (registration, sessions, answers)
	handlers sync.WaitGroup // request handlers running
	serving  sync.WaitGroup // sipgo's UDP server
	closed   sync.Once

	mu           sync.Mutex
	closing      bool // Close is waiting for the goroutines: spawn no more
	regCSeq      uint32
	offset       time.Duration
	haveOffset   bool
	dateHeader   string
	channels     []Channel
	sessions     map[string]*session
	sub          *subscription
	keepalives   int
	regCount     int
	isRegistered bool
}

// Start validates cfg, opens the SIP socket and starts registering in the
// background; Registered is closed after the first successful REGISTER.
// It returns an error for a bad Config or a socket that cannot be opened.
// The device runs until Close, or until ctx ends (it then closes itself).
func Start(ctx context.Context, cfg Config) (*Device, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	d := &Device{
		cfg:        cfg,
		log:        cfg.Log.With("gbsim", cfg.ID),
		registered: make(chan struct{}),
		ptz:        make(chan PTZReceived, 64),
		channels:   append([]Channel(nil), cfg.Channels...),
		sessions:   map[string]*session{},
		transport:  strings.ToUpper(cfg.Transport),
		fromTag:    sip.GenerateTagN(16),
		regCallID:  sip.GenerateTagN(24) + "@" + cfg.ID,
		clips:      cfg.Clips,
		started:    time.Now(),
	}
	d.regCSeq = 1
	d.sn.Store(int64(time.Now().UnixNano() % 100000))
	d.ctx, d.cancel = context.WithCancel(context.WithoutCancel(ctx))
	if err := d.open(); err != nil {
		d.cancel()
		return nil, err
	}
	d.wg.Add(1)
	go func() { defer d.wg.Done(); d.run() }()
	if ctx.Done() != nil {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			select {
			case <-ctx.Done():
				go d.Close()
			case <-d.ctx.Done():
			}
		}()
	}
	return d, nil
}

func (c *Config) defaults() error {
	if !isCode(c.ID) {
		return fmt.Errorf("gbsim: device id %q is not 20 digits", c.ID)
	}
	if _, _, err := net.SplitHostPort(c.Server); err != nil {
		return fmt.Errorf("gbsim: server %q is not host:port: %w", c.Server, err)
	}
	if c.ServerID != "" && !isCode(c.ServerID) {
		return fmt.Errorf("gbsim: server id %q is not 20 digits", c.ServerID)
	}
	switch strings.ToLower(c.Transport) {
	case "":
		c.Transport = "udp"
	case "udp", "tcp":
		c.Transport = strings.ToLower(c.Transport)
	default:
		return fmt.Errorf("gbsim: SIP transport %q: want udp or tcp", c.Transport)
	}
	if len(c.Channels) == 0 {
		return errors.New("gbsim: at least one channel is required")
	}
	seen := map[string]bool{}
	for i := range c.Channels {
		ch := &c.Channels[i]
		if !isCode(ch.ID) {
			return fmt.Errorf("gbsim: channel id %q is not 20 digits", ch.ID)
		}
		if seen[ch.ID] {
			return fmt.Errorf("gbsim: channel id %s appears twice", ch.ID)
		}
		seen[ch.ID] = true
		if ch.Name == "" {
			ch.Name = "Channel " + strconv.Itoa(i+1)
		}
	}
	if c.Realm == "" {
		c.Realm = c.ID[:10]
	}
	if c.Keepalive <= 0 {
		c.Keepalive = 60 * time.Second
	}
	if c.Expires <= 0 {
		c.Expires = 3600 * time.Second
	}
	if c.Codec == "" {
		c.Codec = camsim.CodecH264
	}
	if c.Codec != camsim.CodecH264 && c.Codec != camsim.CodecH265 {
		return fmt.Errorf("gbsim: codec %q: want h264 or h265", c.Codec)
	}
	switch c.Bitrate {
	case "":
		c.Bitrate = camsim.BitrateNormal
	case camsim.BitrateNormal:
	case camsim.BitrateHigh:
		if c.Codec != camsim.CodecH264 {
			return fmt.Errorf("gbsim: bitrate %q is H.264 only", c.Bitrate)
		}
	default:
		return fmt.Errorf("gbsim: bitrate %q: want normal or high", c.Bitrate)
	}
	switch {
	case !c.Audio:
		c.AudioCodec = ""
	case c.AudioCodec == "":
		c.AudioCodec = AudioAAC
	case c.AudioCodec != AudioAAC && c.AudioCodec != AudioPCMA && c.AudioCodec != AudioPCMU:
		return fmt.Errorf("gbsim: audio codec %q: want aac, pcma or pcmu", c.AudioCodec)
	}
	if c.CatalogPageItems <= 0 {
		c.CatalogPageItems = manscdp.DefaultPageItems
	}
	if c.Name == "" {
		c.Name = "gbsim " + c.ID
	}
	if c.Manufacturer == "" {
		c.Manufacturer = "Vigil"
	}
	if c.Model == "" {
		c.Model = "gbsim"
	}
	if c.Firmware == "" {
		c.Firmware = "1.0"
	}
	if err := c.Faults.check(); err != nil {
		return err
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
	return nil
}

func (f Faults) check() error {
	if f.RefuseInvite != 0 && (f.RefuseInvite < 300 || f.RefuseInvite > 699) {
		return fmt.Errorf("gbsim: RefuseInvite %d is not a SIP failure status (300–699)", f.RefuseInvite)
	}
	for _, t := range append(append([]string(nil), f.RefuseTransports...), f.SilentTransports...) {
		if t != TransportUDP && t != TransportTCPPassive && t != TransportTCPActive {
			return fmt.Errorf("gbsim: fault transport %q: want udp, tcp-passive or tcp-active", t)
		}
	}
	return nil
}

func isCode(s string) bool {
	if len(s) != 20 {
		return false
	}
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return true
}

// open creates the SIP user agent, server handlers and client, and the UDP
// socket the device sends from and listens on (over TCP the connection to the
// platform carries both ways).
func (d *Device) open() error {
	if d.cfg.LocalIP != "" {
		d.localIP = d.cfg.LocalIP
	} else {
		c, err := net.Dial("udp", d.cfg.Server)
		if err != nil {
			return fmt.Errorf("gbsim: route to %s: %w", d.cfg.Server, err)
		}
		d.localIP = c.LocalAddr().(*net.UDPAddr).IP.String()
		c.Close()
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent(d.cfg.ID), sipgo.WithUserAgentHostname(d.cfg.Realm),
		sipgo.WithUserAgentTransactionLayerOptions(sip.WithTransactionLayerLogger(d.log)),
		sipgo.WithUserAgentTransportLayerOptions(sip.WithTransportLayerLogger(d.log)))
	if err != nil {
		return fmt.Errorf("gbsim: user agent: %w", err)
	}
	srv, err := sipgo.NewServer(ua, sipgo.WithServerLogger(d.log))
	if err != nil {
		ua.Close()
		return fmt.Errorf("gbsim: sip server: %w", err)
	}
	var pc net.PacketConn
	opts := []sipgo.ClientOption{sipgo.WithClientHostname(d.localIP), sipgo.WithClientLogger(d.log)}
	if d.transport == "UDP" {
		pc, err = net.ListenPacket("udp", net.JoinHostPort(d.localIP, "0"))
		if err != nil {
			ua.Close()
			return fmt.Errorf("gbsim: listen udp: %w", err)
		}
		d.sipAddr = pc.LocalAddr().String()
		// every request leaves from the socket the platform answers and calls
		opts = append(opts, sipgo.WithClientConnectionAddr(d.sipAddr))
	}
	cli, err := sipgo.NewClient(ua, opts...)
	if err != nil {
		if pc != nil {
			pc.Close()
		}
		ua.Close()
		return fmt.Errorf("gbsim: sip client: %w", err)
	}
	d.ua, d.srv, d.cli, d.pc = ua, srv, cli, pc
	// A BYE from the device goes where the INVITE came from, not to its
	// Contact: the platform may be behind NAT, or reached over the TCP
	// connection the device opened.
	d.dialogs = &sipgo.DialogUA{Client: cli, ContactHDR: d.contact(), RewriteContact: true}
	ok := func(req *sip.Request, tx sip.ServerTransaction) { d.respond(req, tx, 200, "OK") }
	srv.OnInvite(d.handle(d.onInvite))
	srv.OnAck(d.handle(d.onAck))
	srv.OnBye(d.handle(d.onBye))
	srv.OnMessage(d.handle(d.onMessage))
	srv.OnSubscribe(d.handle(d.onSubscribe))
	srv.OnNotify(d.handle(ok))
	srv.OnOptions(d.handle(ok))
	if pc != nil {
		d.serving.Add(1)
		go func() { defer d.serving.Done(); _ = srv.ServeUDP(pc) }()
		if err := waitListening(ua, d.sipAddr); err != nil {
			pc.Close()
			ua.Close()
			d.serving.Wait()
			return err
		}
	}
	d.recipient = sip.Uri{Scheme: "sip", User: d.cfg.ServerID}
	host, port, _ := sip.ParseAddr(d.cfg.Server)
	d.recipient.Host, d.recipient.Port = host, port
	return nil
}

func (d *Device) contact() sip.ContactHeader {
	host, port := d.localIP, 5060
	if d.sipAddr != "" {
		h, p, _ := sip.ParseAddr(d.sipAddr)
		host, port = h, p
	}
	c := sip.ContactHeader{Address: sip.Uri{Scheme: "sip", User: d.cfg.ID, Host: host, Port: port}}
	if d.transport == "TCP" {
		c.Address.UriParams = sip.NewParams()
		c.Address.UriParams.Add("transport", "tcp")
	}
	return c
}

// Faults returns the faults in force.
func (d *Device) Faults() Faults {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg.Faults
}

// SetFaults changes the faults: INVITEs from now on see the new ones (a
// session keeps those of its INVITE), and so do the next keepalives.
func (d *Device) SetFaults(f Faults) error {
	if err := f.check(); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.cfg.Faults = f
	return nil
}

// Registered is closed after the first successful registration.
func (d *Device) Registered() <-chan struct{} { return d.registered }

// PTZ delivers each DeviceControl PTZCmd as received. The channel holds 64;
// commands arriving while it is full are dropped.
func (d *Device) PTZ() <-chan PTZReceived { return d.ptz }

// ClockOffset is the platform's Date minus the device's clock at the last
// successful REGISTER, and whether a Date header was seen. The device's own
// timestamps (AlarmTime) are its clock plus this offset.
func (d *Device) ClockOffset() (time.Duration, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.offset, d.haveOffset
}

// DateHeader is the Date header of the last 200 to a REGISTER, as received.
func (d *Device) DateHeader() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dateHeader
}

// Keepalives is the number of keepalives the platform answered 200.
func (d *Device) Keepalives() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.keepalives
}

// Registrations is the number of successful REGISTERs (first and refreshes).
func (d *Device) Registrations() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.regCount
}

// SIPAddr is the device's local SIP address over UDP ("" over TCP).
func (d *Device) SIPAddr() string { return d.sipAddr }

// Channels returns the device's current channels.
func (d *Device) Channels() []Channel {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]Channel(nil), d.channels...)
}

// now is the device's clock, set from the platform's Date header.
func (d *Device) now() time.Time {
	off, _ := d.ClockOffset()
	return time.Now().Add(off)
}

func (d *Device) nextSN() int { return int(d.sn.Add(1) % 1000000000) }

// Close hangs up every session (BYE), unregisters (REGISTER with Expires 0,
// for at most 2 s) and stops everything, waiting for its goroutines.
func (d *Device) Close() {
	d.closed.Do(func() {
		d.mu.Lock()
		sessions := make([]*session, 0, len(d.sessions))
		for _, s := range d.sessions {
			sessions = append(sessions, s)
		}
		reg := d.isRegistered
		d.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		for _, s := range sessions {
			s.hangup(ctx)
		}
		if reg {
			if _, err := d.register(ctx, 0); err != nil {
				d.log.Debug("gbsim unregister", "error", err)
			}
		}
		cancel()
		// Stop: no new work, the device's goroutines and request handlers
		// end (they all watch d.ctx), then the SIP stack closes. In that
		// order, because sipgo opens a new socket for a request or response
		// sent after its listener closed, and nothing would close that one.
		d.cancel()
		d.mu.Lock()
		d.closing = true
		d.mu.Unlock()
		for _, s := range sessions {
			s.stop()
		}
		d.handlers.Wait()
		d.wg.Wait()
		if d.pc != nil {
			d.pc.Close()
		}
		d.srv.Close()
		d.cli.Close()
		d.ua.Close()
		d.serving.Wait()
	})
}

// handle wraps a request handler so that Close waits for it; once Close
// has begun, requests are left unanswered.
func (d *Device) handle(h sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		d.mu.Lock()
		if d.closing {
			d.mu.Unlock()
			return
		}
		d.handlers.Add(1)
		d.mu.Unlock()
		defer d.handlers.Done()
		h(req, tx)
	}
}

func (d *Device) respond(req *sip.Request, tx sip.ServerTransaction, code int, reason string, hdrs ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range hdrs {
		res.AppendHeader(h)
	}
	if err := tx.Respond(res); err != nil {
		d.log.Debug("gbsim respond", "code", code, "error", err)
	}
}

// waitListening waits until sipgo's transport layer has taken the UDP socket
// at addr as a connection, so that requests leave from it. sipgo signals
// nothing when ServeUDP has set up, and a request sent before that would
// try to bind addr a second time; this takes microseconds.
func waitListening(ua *sipgo.UserAgent, addr string) error {
	deadline := time.Now().Add(5 * time.Second)
	for {
		if c, _ := ua.TransportLayer().GetConnection("udp", addr); c != nil {
			c.Ref(-1) // GetConnection took a reference
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gbsim: sip transport did not take the socket %s", addr)
		}
		time.Sleep(time.Millisecond)
	}
}
