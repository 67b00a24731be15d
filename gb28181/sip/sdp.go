package sip

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Media transports, as seen from Vigil.
const (
	TransportUDP        = "udp"
	TransportTCPPassive = "tcp-passive" // Vigil listens, the device connects
	TransportTCPActive  = "tcp-active"  // Vigil connects to the device's port
)

// Answer is the device's answer SDP to an INVITE, as far as Vigil needs it.
type Answer struct {
	IP   string // c= address the device sends from (udp) or listens on (tcp-active)
	Port int    // m=video port
	// Transport is udp, tcp-passive or tcp-active (Vigil's side), from the
	// m= protocol and a=setup.
	Transport string
	SSRC      string // y= value, "" when the device sent none
	Setup     string // a=setup as the device wrote it ("" for udp or when absent)
}

// maxSDP bounds the answer SDP parsed.
const maxSDP = 16 << 10

// offerSDP is the INVITE's SDP offer for a live stream (GB/T 28181-2016
// 9.2.2 and Annex G): s=Play, our media address, PS on payload 96 (H264 98
// and MPEG4 97 listed as common platforms do), recvonly, the SSRC in y=.
func offerSDP(ourID string, r InviteRequest) []byte {
	ipv := "IP4"
	if ip := net.ParseIP(r.MediaIP); ip != nil && ip.To4() == nil {
		ipv = "IP6"
	}
	proto := "RTP/AVP"
	if r.Transport != TransportUDP {
		proto = "TCP/RTP/AVP"
	}
	var b strings.Builder
	line := func(format string, a ...any) {
		fmt.Fprintf(&b, format, a...)
		b.WriteString("\r\n")
	}
	line("v=0")
	line("o=%s 0 0 IN %s %s", ourID, ipv, r.MediaIP)
	line("s=Play")
	line("c=IN %s %s", ipv, r.MediaIP)
	line("t=0 0")
	line("m=video %d %s 96 98 97", r.MediaPort, proto)
	line("a=recvonly")
	line("a=rtpmap:96 PS/90000")
	line("a=rtpmap:98 H264/90000")
	line("a=rtpmap:97 MPEG4/90000")
	switch r.Transport {
	case TransportTCPPassive:
		line("a=setup:passive")
		line("a=connection:new")
	case TransportTCPActive:
		line("a=setup:active")
		line("a=connection:new")
	}
	line("y=%s", r.SSRC)
	return []byte(b.String())
}

// parseAnswer reads the answer SDP to an offer over transport (udp,
// tcp-passive, tcp-active). It is strict about what Vigil relies on: a
// video m= line with a port and the offered kind of transport, a usable c=
// address, PS among the payloads when rtpmaps are given, a setup role that
// fits the offer, a numeric y=. Other lines are ignored.
func parseAnswer(body []byte, transport string) (Answer, error) {
	var a Answer
	if len(body) == 0 {
		return a, errors.New("the answer has no SDP body")
	}
	if len(body) > maxSDP {
		return a, fmt.Errorf("the answer SDP has %d bytes, more than %d", len(body), maxSDP)
	}
	if !utf8.Valid(body) {
		return a, errors.New("the answer SDP is not text (invalid UTF-8)")
	}
	var (
		sessionC, videoC   string
		inVideo, seenVideo bool
		videoProto         string
		videoPort          = -1
		rtpmaps            []string
		setup              string
		ssrc               string
		hasSSRC            bool
		n                  int
	)
	for raw := range bytes.SplitSeq(body, []byte("\n")) {
		ln := strings.TrimSuffix(string(raw), "\r")
		n++
		if ln == "" {
			continue
		}
		if len(ln) < 2 || ln[1] != '=' || ln[0] < 'a' || ln[0] > 'z' {
			return a, fmt.Errorf("SDP line %d %q is not <letter>=<value>", n, clipText(ln, 40))
		}
		for _, r := range ln {
			if r < 0x20 && r != '\t' {
				return a, fmt.Errorf("SDP line %d has a control character", n)
			}
		}
		if n == 1 && ln != "v=0" {
			return a, fmt.Errorf("the answer SDP starts with %q, want v=0", clipText(ln, 40))
		}
		v := ln[2:]
		switch ln[0] {
		case 'm':
			inVideo = false
			f := strings.Fields(v)
			if len(f) < 4 {
				return a, fmt.Errorf("SDP m= line %q has fewer than 4 fields", clipText(v, 60))
			}
			if f[0] != "video" || seenVideo {
				continue
			}
			seenVideo, inVideo = true, true
			p, err := strconv.Atoi(strings.SplitN(f[1], "/", 2)[0])
			if err != nil || p < 0 || p > 65535 {
				return a, fmt.Errorf("SDP m=video port %q is not a port number", clipText(f[1], 20))
			}
			videoPort, videoProto = p, f[2]
		case 'c':
			if inVideo {
				videoC = v
			} else if !seenVideo {
				sessionC = v
			}
		case 'a':
			if !inVideo {
				continue
			}
			name, val, _ := strings.Cut(v, ":")
			switch name {
			case "rtpmap":
				if _, enc, ok := strings.Cut(val, " "); ok {
					rtpmaps = append(rtpmaps, strings.TrimSpace(enc))
				}
			case "setup":
				setup = strings.TrimSpace(val)
			}
		case 'y':
			ssrc, hasSSRC = strings.TrimSpace(v), true
		}
	}
	if !seenVideo {
		return a, errors.New("the answer SDP has no m=video line")
	}
	if videoPort == 0 {
		return a, errors.New("the answer SDP declines the video stream (m=video port 0)")
	}
	c := videoC
	if c == "" {
		c = sessionC
	}
	if c == "" {
		return a, errors.New("the answer SDP has no c= connection address")
	}
	ip, err := parseConnection(c)
	if err != nil {
		return a, err
	}
	a.IP, a.Port = ip, videoPort
	tcp := false
	switch strings.ToUpper(videoProto) {
	case "RTP/AVP":
	case "TCP/RTP/AVP", "RTP/AVP/TCP":
		tcp = true
	default:
		return a, fmt.Errorf("the answer SDP's video protocol %q is not RTP/AVP or TCP/RTP/AVP", clipText(videoProto, 20))
	}
	switch {
	case transport == TransportUDP && tcp:
		return a, fmt.Errorf("the device answered %s to an offer of RTP over UDP", videoProto)
	case transport != TransportUDP && !tcp:
		return a, fmt.Errorf("the device answered %s (UDP) to an offer of RTP over TCP", videoProto)
	}
	a.Transport = TransportUDP
	if tcp {
		a.Setup = setup
		role := strings.ToLower(setup)
		switch {
		case transport == TransportTCPPassive && (role == "" || role == "active"):
			a.Transport = TransportTCPPassive
		case transport == TransportTCPActive && (role == "" || role == "passive"):
			a.Transport = TransportTCPActive
			if ipn := net.ParseIP(ip); ipn.IsUnspecified() {
				return a, fmt.Errorf("the device answered TCP passive with the unusable address %s to connect to", ip)
			}
		default:
			want := "active"
			if transport == TransportTCPActive {
				want = "passive"
			}
			return a, fmt.Errorf("the device answered a=setup:%s to an offer of %s (want a=setup:%s)", clipText(setup, 20), transport, want)
		}
	}
	if len(rtpmaps) > 0 {
		ps := false
		for _, m := range rtpmaps {
			enc := strings.ToUpper(strings.SplitN(m, "/", 2)[0])
			ps = ps || enc == "PS" || enc == "MP2P"
		}
		if !ps {
			return a, fmt.Errorf("the answer SDP offers %s but no PS/90000 (Vigil receives MPEG-PS)", clipText(strings.Join(rtpmaps, ", "), 60))
		}
	}
	if hasSSRC {
		if _, err := strconv.ParseUint(ssrc, 10, 32); err != nil || len(ssrc) > 10 {
			return a, fmt.Errorf("the answer SDP's y= SSRC %q is not a number of at most 10 digits", clipText(ssrc, 20))
		}
		a.SSRC = ssrc
	}
	return a, nil
}

// parseConnection reads "IN IP4 addr" (or IP6) and returns the address.
func parseConnection(c string) (string, error) {
	f := strings.Fields(c)
	if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
		return "", fmt.Errorf("the answer SDP's c=%s is not \"IN IP4 <address>\"", clipText(c, 40))
	}
	ip := net.ParseIP(f[2])
	if ip == nil {
		return "", fmt.Errorf("the answer SDP's c= address %q is not an IP address", clipText(f[2], 40))
	}
	if (ip.To4() != nil) != (f[1] == "IP4") {
		return "", fmt.Errorf("the answer SDP's c= address %s does not match %s", ip, f[1])
	}
	return ip.String(), nil
}

// clipText shortens s to n bytes for an error message.
func clipText(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
