package sdp

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Marshal writes the session description with CRLF line ends, in the
// order of RFC 4566 followed by GB/T 28181's y= and f=: v, o, s, u, c, t,
// the session's a= lines, each m= section (m, c, direction, rtpmaps,
// setup, connection, downloadspeed, filesize, streamnumber, other a=
// lines), then y= and f=. c= addresses are written as IP4 or IP6 after
// their kind; o= and s= are left out when empty, y= when SSRC is "", f=
// unless HasFormat or Format is set. t= is always written.
func (s *Session) Marshal() []byte {
	var b strings.Builder
	line := func(k byte, parts ...string) {
		b.WriteByte(k)
		b.WriteByte('=')
		for _, p := range parts {
			b.WriteString(p)
		}
		b.WriteString("\r\n")
	}
	line('v', "0")
	if o := s.Origin; o.Username != "" {
		line('o', strings.Join([]string{o.Username, or(o.SessionID, "0"), or(o.Version, "0"), "IN", or(o.AddressType, addrType(o.Address)), or(o.Address, "0.0.0.0")}, " "))
	}
	if s.Name != "" {
		line('s', s.Name)
	}
	if s.URI != "" {
		line('u', s.URI)
	}
	if s.Address != "" {
		line('c', "IN ", addrType(s.Address), " ", s.Address)
	}
	line('t', strconv.FormatUint(s.Start, 10), " ", strconv.FormatUint(s.Stop, 10))
	for _, a := range s.Attributes {
		line('a', a.String())
	}
	for i := range s.Media {
		s.Media[i].write(line)
	}
	if s.SSRC != "" {
		line('y', s.SSRC)
	}
	if s.HasFormat || s.Format != "" {
		line('f', s.Format)
	}
	return []byte(b.String())
}

func (m *Media) write(line func(byte, ...string)) {
	pts := make([]string, 0, len(m.Payloads)+3)
	pts = append(pts, m.Kind, strconv.Itoa(m.Port), or(m.Proto, ProtoUDP))
	for _, pt := range m.Payloads {
		pts = append(pts, strconv.Itoa(pt))
	}
	line('m', strings.Join(pts, " "))
	if m.Address != "" {
		line('c', "IN ", addrType(m.Address), " ", m.Address)
	}
	if m.Direction != "" {
		line('a', m.Direction)
	}
	for _, r := range m.RTPMaps {
		enc := fmt.Sprintf("%d %s/%d", r.Payload, r.Encoding, r.ClockRate)
		if r.Channels > 0 {
			enc += "/" + strconv.Itoa(r.Channels)
		}
		line('a', "rtpmap:", enc)
	}
	if m.Setup != "" {
		line('a', "setup:", m.Setup)
	}
	if m.Connection != "" {
		line('a', "connection:", m.Connection)
	}
	if m.DownloadSpeed != nil {
		line('a', "downloadspeed:", strconv.Itoa(*m.DownloadSpeed))
	}
	if m.FileSize != nil {
		line('a', "filesize:", strconv.FormatInt(*m.FileSize, 10))
	}
	if m.StreamNumber != nil {
		line('a', "streamnumber:", strconv.Itoa(*m.StreamNumber))
	}
	for _, a := range m.Attributes {
		line('a', a.String())
	}
}

// String is the attribute as written after "a=".
func (a Attribute) String() string {
	if a.HasValue {
		return a.Name + ":" + a.Value
	}
	return a.Name
}

// addrType is IP6 for an IPv6 address, else IP4.
func addrType(addr string) string {
	if ip := net.ParseIP(addr); ip != nil && ip.To4() == nil {
		return "IP6"
	}
	return "IP4"
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
