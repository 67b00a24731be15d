package gbsim

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// offer is what the device needs from a platform's INVITE SDP. GB/T 28181
// SDP carries y= (SSRC) and f= (media format) lines outside RFC 4566, which
// general SDP libraries reject; these few lines are read here.
type offer struct {
	Session   string // s=: Play, Playback, Download
	IP        string // c=
	Port      int    // m=video port
	Proto     string // RTP/AVP or TCP/RTP/AVP
	Setup     string // a=setup: active or passive ("" over UDP)
	SSRC      string // y=
	Transport string // TransportUDP, TransportTCPPassive or TransportTCPActive
}

func parseOffer(b []byte) (offer, error) {
	var o offer
	video := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimRight(line, "\r")
		if len(line) < 2 || line[1] != '=' {
			continue
		}
		v := strings.TrimSpace(line[2:])
		switch line[0] {
		case 's':
			o.Session = v
		case 'c':
			f := strings.Fields(v)
			if len(f) != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6") {
				return o, fmt.Errorf("sdp: bad connection line %q", line)
			}
			o.IP = f[2]
		case 'm':
			f := strings.Fields(v)
			if len(f) < 3 {
				return o, fmt.Errorf("sdp: bad media line %q", line)
			}
			video = f[0] == "video"
			if !video || o.Proto != "" {
				continue
			}
			p, err := strconv.Atoi(f[1])
			if err != nil || p < 0 || p > 65535 {
				return o, fmt.Errorf("sdp: bad port in media line %q", line)
			}
			o.Port, o.Proto = p, strings.ToUpper(f[2])
		case 'a':
			if video && strings.HasPrefix(v, "setup:") {
				o.Setup = strings.ToLower(strings.TrimSpace(strings.TrimPrefix(v, "setup:")))
			}
		case 'y':
			o.SSRC = v
		}
	}
	if o.Proto == "" {
		return o, fmt.Errorf("sdp: no video media line")
	}
	if o.IP == "" || net.ParseIP(o.IP) == nil {
		return o, fmt.Errorf("sdp: connection address %q is not an IP address", o.IP)
	}
	switch o.Proto {
	case "RTP/AVP":
		o.Transport = TransportUDP
	case "TCP/RTP/AVP":
		switch o.Setup {
		case "passive", "":
			o.Transport = TransportTCPPassive
		case "active":
			o.Transport = TransportTCPActive
		default:
			return o, fmt.Errorf("sdp: a=setup:%s: want active or passive", o.Setup)
		}
	default:
		return o, fmt.Errorf("sdp: media protocol %q: want RTP/AVP or TCP/RTP/AVP", o.Proto)
	}
	if o.Port == 0 && o.Transport != TransportTCPActive {
		return o, fmt.Errorf("sdp: media port 0")
	}
	if o.SSRC != "" {
		if _, err := strconv.ParseUint(o.SSRC, 10, 64); err != nil || len(o.SSRC) > 10 {
			return o, fmt.Errorf("sdp: y=%s is not a decimal SSRC of up to 10 digits", o.SSRC)
		}
	}
	return o, nil
}

// answerSDP is the device's answer: its media address and port, the same
// transport, the opposite setup role, and the offered y=.
func answerSDP(deviceID, ip string, port int, o offer) []byte {
	var b strings.Builder
	session := o.Session
	if session == "" {
		session = "Play"
	}
	ipv := "IP4"
	if strings.Contains(ip, ":") {
		ipv = "IP6"
	}
	fmt.Fprintf(&b, "v=0\r\no=%s 0 0 IN %s %s\r\ns=%s\r\nc=IN %s %s\r\nt=0 0\r\n", deviceID, ipv, ip, session, ipv, ip)
	fmt.Fprintf(&b, "m=video %d %s 96\r\na=sendonly\r\na=rtpmap:96 PS/90000\r\n", port, o.Proto)
	switch o.Transport {
	case TransportTCPPassive:
		b.WriteString("a=setup:active\r\na=connection:new\r\n")
	case TransportTCPActive:
		b.WriteString("a=setup:passive\r\na=connection:new\r\n")
	}
	if o.SSRC != "" {
		fmt.Fprintf(&b, "y=%s\r\n", o.SSRC)
	}
	b.WriteString("f=\r\n")
	return []byte(b.String())
}

// badAnswerSDP is Faults.BadSDP's answer: no connection and no media line.
func badAnswerSDP(deviceID string) []byte {
	return []byte("v=0\r\no=" + deviceID + " 0 0 IN IP4 0.0.0.0\r\ns=Play\r\nt=0 0\r\n")
}
