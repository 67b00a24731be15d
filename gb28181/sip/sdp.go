package sip

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	"github.com/vigil-vms/vigil/gb28181/sdp"
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
const maxSDP = sdp.MaxSize

// offerSDP is the INVITE's SDP offer for a live stream (GB/T 28181-2016
// 9.2.2 and Annex G): s=Play, our media address, PS on payload 96 (H264 98
// and MPEG4 97 listed as common platforms do), recvonly, the SSRC in y=.
func offerSDP(ourID string, r InviteRequest) []byte {
	m := sdp.Media{Kind: "video", Port: r.MediaPort, Proto: sdp.ProtoUDP, Payloads: []int{96, 98, 97},
		Direction: "recvonly", RTPMaps: []sdp.RTPMap{{Payload: 96, Encoding: "PS", ClockRate: 90000},
			{Payload: 98, Encoding: "H264", ClockRate: 90000}, {Payload: 97, Encoding: "MPEG4", ClockRate: 90000}}}
	if r.Transport != TransportUDP {
		m.Proto, m.Connection = sdp.ProtoTCP, "new"
		m.Setup = "passive"
		if r.Transport == TransportTCPActive {
			m.Setup = "active"
		}
	}
	s := sdp.Session{Origin: sdp.Origin{Username: ourID, Address: r.MediaIP}, Name: sdp.Play,
		Address: r.MediaIP, Media: []sdp.Media{m}, SSRC: r.SSRC}
	return s.Marshal()
}

// parseAnswer reads the answer SDP to an offer over transport (udp,
// tcp-passive, tcp-active) with package sdp, and checks what Vigil relies
// on: a video m= line with a port and the offered kind of transport, a
// c= address, PS among the payloads when rtpmaps are given, a setup role
// that fits the offer.
func parseAnswer(body []byte, transport string) (Answer, error) {
	var a Answer
	s, err := sdp.Parse(body)
	if err != nil {
		return a, fmt.Errorf("the answer: %w", err)
	}
	m := s.FirstMedia("video")
	if m == nil {
		return a, errors.New("the answer SDP has no m=video line")
	}
	if m.Port == 0 {
		return a, errors.New("the answer SDP declines the video stream (m=video port 0)")
	}
	ip := s.AddressOf(m)
	if ip == "" {
		return a, errors.New("the answer SDP has no c= connection address")
	}
	a.IP, a.Port = ip, m.Port
	switch {
	case transport == TransportUDP && m.TCP():
		return a, fmt.Errorf("the device answered %s to an offer of RTP over UDP", m.Proto)
	case transport != TransportUDP && !m.TCP():
		return a, fmt.Errorf("the device answered %s (UDP) to an offer of RTP over TCP", m.Proto)
	}
	a.Transport = TransportUDP
	if m.TCP() {
		a.Setup = m.Setup
		switch {
		case transport == TransportTCPPassive && (m.Setup == "" || m.Setup == "active"):
			a.Transport = TransportTCPPassive
		case transport == TransportTCPActive && (m.Setup == "" || m.Setup == "passive"):
			a.Transport = TransportTCPActive
			if net.ParseIP(ip).IsUnspecified() {
				return a, fmt.Errorf("the device answered TCP passive with the unusable address %s to connect to", ip)
			}
		default:
			want := "active"
			if transport == TransportTCPActive {
				want = "passive"
			}
			return a, fmt.Errorf("the device answered a=setup:%s to an offer of %s (want a=setup:%s)", m.Setup, transport, want)
		}
	}
	if len(m.RTPMaps) > 0 && !m.HasPS() {
		var enc []string
		for _, r := range m.RTPMaps {
			enc = append(enc, fmt.Sprintf("%s/%d", r.Encoding, r.ClockRate))
		}
		return a, fmt.Errorf("the answer SDP offers %s but no PS/90000 (Vigil receives MPEG-PS)", clipText(strings.Join(enc, ", "), 60))
	}
	a.SSRC = s.SSRC
	return a, nil
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
