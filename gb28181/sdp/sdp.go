// Package sdp reads and writes the session descriptions of GB/T 28181
// (2016, 9.2 and Annex G): the offers and answers of an INVITE for a live
// view (s=Play), a playback (s=Playback), a download (s=Download) or a
// voice call (s=Talk).
//
// It is the one reader of this format in Vigil. pion/sdp cannot be used:
// GB/T 28181 adds the y= (SSRC) and f= (media format) lines outside RFC
// 4566, and pion/sdp v3.0.20 rejects them ("sdp: syntax error at pos 112:
// \"=\"" for an otherwise valid offer ending in y=0100000001 or f=).
//
// Parse is strict about what it understands and says which line is wrong;
// lines of other letters (i=, b=, e=, ...) and attributes it does not know
// are kept or skipped, never guessed at. What a session must contain for a
// given role (a video stream, a TCP setup role that fits the offer, PS among
// the payloads) is for the caller to check with the fields it gets.
package sdp

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"
)

// MaxSize bounds the session descriptions Parse reads.
const MaxSize = 16 << 10

// Session names of GB/T 28181 (the s= line).
const (
	Play     = "Play"
	Playback = "Playback"
	Download = "Download"
	Talk     = "Talk"
)

// Media protocols of the m= line.
const (
	ProtoUDP = "RTP/AVP"     // RTP over UDP
	ProtoTCP = "TCP/RTP/AVP" // RTP over TCP (RFC 4571 framing)
)

// Session is a GB/T 28181 session description.
type Session struct {
	Origin Origin // o=; not written when Origin.Username is ""
	Name   string // s=: Play, Playback, Download or Talk; not written when ""
	// URI is the u= line: "<channel ID>:<type>" for a playback or
	// download; "" when absent.
	URI string
	// Address is the session-level c= address (an IP address, IP4 or IP6
	// written after its kind); "" when absent.
	Address string
	// Start and Stop are the t= line: 0 0 for a live view, the recorded
	// range in seconds for a playback or download (see package replay
	// for their time zone and NTP variants).
	Start, Stop uint64
	Attributes  []Attribute // session-level a= lines
	Media       []Media     // m= sections, in order
	// SSRC is the y= line: the decimal SSRC, at most 10 digits and below
	// 2^32; "" when absent.
	SSRC string
	// Format is the f= line (v/codec/resolution/frame rate/... a/...),
	// kept as written; HasFormat says the line is there (devices often
	// send an empty "f=").
	Format    string
	HasFormat bool
}

// Origin is the o= line.
type Origin struct {
	Username, SessionID, Version string
	AddressType                  string // IP4 or IP6
	Address                      string // kept as written (may be a host name)
}

// Media is one m= section.
type Media struct {
	Kind     string // video or audio
	Port     int    // 0 declines the stream, or (TCP active) means none
	Proto    string // ProtoUDP or ProtoTCP (RTP/AVP/TCP is read as ProtoTCP)
	Payloads []int  // RTP payload types of the m= line
	// Address is the media-level c= address; "" when absent (the
	// session's applies: see Session.AddressOf).
	Address   string
	RTPMaps   []RTPMap
	Direction string // recvonly, sendonly, sendrecv or inactive; "" when absent
	// Setup is a=setup (RFC 4145): active, passive, actpass or holdconn;
	// "" when absent. Connection is a=connection: new or existing.
	Setup, Connection string
	// DownloadSpeed (a=downloadspeed, a multiple of real time), FileSize
	// (a=filesize, bytes) and StreamNumber (a=streamnumber, 0 main
	// stream, 1 sub stream) are nil when absent.
	DownloadSpeed *int
	FileSize      *int64
	StreamNumber  *int
	Attributes    []Attribute // other a= lines, in order
}

// RTPMap is an a=rtpmap line: "96 PS/90000", "8 PCMA/8000/1".
type RTPMap struct {
	Payload   int
	Encoding  string
	ClockRate int
	Channels  int // 0 when not written
}

// Attribute is an a= line this package does not interpret.
type Attribute struct {
	Name, Value string
	HasValue    bool // "a=name:value" rather than "a=name"
}

// TCP tells whether the media is RTP over TCP.
func (m *Media) TCP() bool { return m.Proto == ProtoTCP }

// HasPS tells whether an rtpmap of the media is MPEG-PS (PS or MP2P).
func (m *Media) HasPS() bool {
	for _, r := range m.RTPMaps {
		if e := strings.ToUpper(r.Encoding); e == "PS" || e == "MP2P" {
			return true
		}
	}
	return false
}

// FirstMedia returns the first m= section of kind (video, audio), or nil.
func (s *Session) FirstMedia(kind string) *Media {
	for i := range s.Media {
		if s.Media[i].Kind == kind {
			return &s.Media[i]
		}
	}
	return nil
}

// AddressOf returns the c= address that applies to m: its own, else the
// session's; "" when there is none.
func (s *Session) AddressOf(m *Media) string {
	if m.Address != "" {
		return m.Address
	}
	return s.Address
}

// parser is the state of one Parse.
type parser struct {
	s    Session
	line int
	seen map[byte]bool // session-level lines seen once
}

// Parse reads a session description. Lines end in CRLF or LF; the first is
// v=0; every line is <letter>=<value> without control characters. It fails
// with an error naming the line when a line it knows is malformed: o=
// without six fields, a c= that is not "IN IP4|IP6 <IP address>" of the
// named kind, a t= that is not two numbers, an m= without four fields, a
// port or payload type out of range, a protocol other than RTP/AVP and
// TCP/RTP/AVP, a malformed a=rtpmap/setup/connection/downloadspeed/
// filesize/streamnumber, two different directions or setup roles in one
// m= section (a repeated identical one is accepted), a y= that is not an
// SSRC of at most 10 digits below 2^32, or a second v/o/s/u/t/y/f line or
// c= in one section.
func Parse(b []byte) (*Session, error) {
	if len(b) == 0 {
		return nil, errors.New("there is no SDP body")
	}
	if len(b) > MaxSize {
		return nil, fmt.Errorf("the SDP has %d bytes, more than %d", len(b), MaxSize)
	}
	if !utf8.Valid(b) {
		return nil, errors.New("the SDP is not text (invalid UTF-8)")
	}
	p := parser{seen: map[byte]bool{}}
	for raw := range strings.SplitSeq(string(b), "\n") {
		ln := strings.TrimSuffix(raw, "\r")
		p.line++
		if ln == "" {
			continue
		}
		if err := p.parseLine(ln); err != nil {
			return nil, err
		}
	}
	if !p.seen['v'] {
		return nil, errors.New("the SDP has no v=0 line")
	}
	return &p.s, nil
}

func (p *parser) errorf(format string, a ...any) error {
	return fmt.Errorf("SDP line %d: "+format, append([]any{p.line}, a...)...)
}

func (p *parser) parseLine(ln string) error {
	if len(ln) < 2 || ln[1] != '=' || ln[0] < 'a' || ln[0] > 'z' {
		return p.errorf("%q is not <letter>=<value>", clip(ln, 40))
	}
	for _, r := range ln {
		if r < 0x20 && r != '\t' || r == 0x7f {
			return p.errorf("has a control character")
		}
	}
	k, v := ln[0], ln[2:]
	if !p.seen['v'] && k != 'v' {
		return p.errorf("the SDP starts with %q, want v=0", clip(ln, 40))
	}
	var m *Media
	if n := len(p.s.Media); n > 0 {
		m = &p.s.Media[n-1]
	}
	switch k {
	case 'v', 'o', 's', 'u', 't', 'y', 'f':
		if p.seen[k] {
			return p.errorf("a second %c= line", k)
		}
		p.seen[k] = true
	}
	switch k {
	case 'v':
		if v != "0" {
			return p.errorf("the SDP starts with %q, want v=0", clip(ln, 40))
		}
	case 'o':
		f := strings.Fields(v)
		if len(f) != 6 || f[3] != "IN" || (f[4] != "IP4" && f[4] != "IP6") {
			return p.errorf("o=%s is not \"<user> <session> <version> IN IP4 <address>\"", clip(v, 60))
		}
		p.s.Origin = Origin{Username: f[0], SessionID: f[1], Version: f[2], AddressType: f[4], Address: f[5]}
	case 's':
		p.s.Name = strings.TrimSpace(v)
	case 'u':
		p.s.URI = strings.TrimSpace(v)
	case 'c':
		return p.parseConnection(v, m)
	case 't':
		return p.parseTime(v)
	case 'm':
		return p.parseMedia(v)
	case 'a':
		if m == nil {
			p.s.Attributes = append(p.s.Attributes, attribute(v))
			return nil
		}
		return p.parseAttribute(v, m)
	case 'y':
		v = strings.TrimSpace(v)
		if !validSSRC(v) {
			return p.errorf("y= SSRC %q is not an SSRC: want a decimal SSRC of at most 10 digits, below 2^32", clip(v, 20))
		}
		p.s.SSRC = v
	case 'f':
		p.s.Format, p.s.HasFormat = v, true
	}
	return nil
}

// validSSRC tells whether v is a y= value: 1 to 10 decimal digits, below
// 2^32.
func validSSRC(v string) bool {
	if len(v) > 10 || !digits(v) {
		return false
	}
	_, err := strconv.ParseUint(v, 10, 32)
	return err == nil
}

func (p *parser) parseConnection(v string, m *Media) error {
	dst := &p.s.Address
	if m != nil {
		dst = &m.Address
	}
	if *dst != "" {
		return p.errorf("a second c= line in one section")
	}
	f := strings.Fields(v)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return p.errorf("c=%s is a bad connection line: want \"IN IP4 <address>\"", clip(v, 40))
	}
	ip := net.ParseIP(f[2])
	if ip == nil {
		return p.errorf("the c= address %q is not an IP address: the line has no IP address", clip(f[2], 40))
	}
	if (ip.To4() != nil) != (f[1] == "IP4") {
		return p.errorf("the c= address %s does not match %s", ip, f[1])
	}
	*dst = ip.String()
	return nil
}

func (p *parser) parseTime(v string) error {
	if f := strings.Fields(v); len(f) == 2 {
		start, err1 := strconv.ParseUint(f[0], 10, 64)
		stop, err2 := strconv.ParseUint(f[1], 10, 64)
		if err1 == nil && err2 == nil {
			p.s.Start, p.s.Stop = start, stop
			return nil
		}
	}
	return p.errorf("t=%s is not \"<start> <stop>\" in seconds", clip(v, 40))
}

func (p *parser) parseMedia(v string) error {
	f := strings.Fields(v)
	if len(f) < 4 {
		return p.errorf("m=%s has fewer than 4 fields", clip(v, 60))
	}
	m := Media{Kind: f[0]}
	port, err := strconv.Atoi(f[1])
	if err != nil || !digits(f[1]) || port > 65535 {
		return p.errorf("m=%s has a bad port: %q is not a port number; no port to use", f[0], clip(f[1], 20))
	}
	m.Port = port
	switch strings.ToUpper(f[2]) {
	case ProtoUDP:
		m.Proto = ProtoUDP
	case ProtoTCP, "RTP/AVP/TCP":
		m.Proto = ProtoTCP
	default:
		return p.errorf("m=%s media protocol %q is not RTP/AVP or TCP/RTP/AVP", f[0], clip(f[2], 20))
	}
	for _, s := range f[3:] {
		pt, ok := payloadType(s)
		if !ok {
			return p.errorf("m=%s payload type %q is not a number from 0 to 127", f[0], clip(s, 20))
		}
		m.Payloads = append(m.Payloads, pt)
	}
	p.s.Media = append(p.s.Media, m)
	return nil
}

// digits tells whether s is one or more decimal digits.
func digits(s string) bool {
	return s != "" && strings.Trim(s, "0123456789") == ""
}

// payloadType reads an RTP payload type, 0 to 127, in plain digits.
func payloadType(s string) (int, bool) {
	if len(s) > 3 || !digits(s) {
		return 0, false
	}
	n, _ := strconv.Atoi(s)
	return n, n <= 127
}

func attribute(v string) Attribute {
	name, val, ok := strings.Cut(v, ":")
	return Attribute{Name: name, Value: val, HasValue: ok}
}

func (p *parser) parseAttribute(v string, m *Media) error {
	a := attribute(v)
	val := strings.TrimSpace(a.Value)
	switch a.Name {
	case "recvonly", "sendonly", "sendrecv", "inactive":
		if m.Direction != "" && m.Direction != a.Name {
			return p.errorf("a=%s after a=%s", a.Name, m.Direction)
		}
		m.Direction = a.Name
	case "rtpmap":
		r, ok := parseRTPMap(val)
		if !ok {
			return p.errorf("a=rtpmap:%s is not \"<payload> <encoding>/<clock rate>\"", clip(a.Value, 40))
		}
		m.RTPMaps = append(m.RTPMaps, r)
	case "setup":
		switch s := strings.ToLower(val); s {
		case "active", "passive", "actpass", "holdconn":
			if m.Setup != "" && m.Setup != s {
				return p.errorf("a=setup:%s after a=setup:%s", s, m.Setup)
			}
			m.Setup = s
		default:
			return p.errorf("a=setup:%s is not active, passive, actpass or holdconn", clip(a.Value, 20))
		}
	case "connection":
		switch c := strings.ToLower(val); c {
		case "new", "existing":
			m.Connection = c
		default:
			return p.errorf("a=connection:%s is not new or existing", clip(a.Value, 20))
		}
	case "downloadspeed", "streamnumber":
		n, err := strconv.Atoi(val)
		if err != nil || !digits(val) || n > 1<<20 || (a.Name == "downloadspeed" && n == 0) {
			return p.errorf("a=%s:%s is not a number", a.Name, clip(a.Value, 20))
		}
		if a.Name == "downloadspeed" {
			m.DownloadSpeed = &n
		} else {
			m.StreamNumber = &n
		}
	case "filesize":
		n, err := strconv.ParseInt(val, 10, 64)
		if err != nil || !digits(val) {
			return p.errorf("a=filesize:%s is not a number of bytes", clip(a.Value, 20))
		}
		m.FileSize = &n
	default:
		m.Attributes = append(m.Attributes, a)
	}
	return nil
}

// parseRTPMap reads "96 PS/90000" or "8 PCMA/8000/1".
func parseRTPMap(v string) (RTPMap, bool) {
	pt, rest, ok := strings.Cut(v, " ")
	if !ok {
		return RTPMap{}, false
	}
	n, ok := payloadType(pt)
	if !ok {
		return RTPMap{}, false
	}
	f := strings.Split(strings.TrimSpace(rest), "/")
	if len(f) < 2 || len(f) > 3 || f[0] == "" || strings.ContainsAny(f[0], " \t") {
		return RTPMap{}, false
	}
	r := RTPMap{Payload: n, Encoding: f[0]}
	for i, dst := range []*int{&r.ClockRate, &r.Channels} {
		if i+1 >= len(f) {
			break
		}
		c, err := strconv.Atoi(f[i+1])
		if err != nil || !digits(f[i+1]) || c == 0 || c > 1<<24 {
			return RTPMap{}, false
		}
		*dst = c
	}
	return r, true
}

// clip shortens s to n bytes for an error message.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
