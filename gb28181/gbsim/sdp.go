package gbsim

import (
	"errors"
	"fmt"

	"github.com/vigil-vms/vigil/gb28181/sdp"
)

// offer is what the device needs from a platform's INVITE SDP, read with
// package sdp.
type offer struct {
	Session   string // s=: Play, Playback, Download
	IP        string // c=
	Port      int    // m=video port
	Proto     string // RTP/AVP or TCP/RTP/AVP
	Setup     string // a=setup: active or passive ("" over UDP)
	SSRC      string // y=
	Transport string // TransportUDP, TransportTCPPassive or TransportTCPActive
}

// parseOffer reads the offer and checks what the device needs: a video
// stream over RTP/AVP or TCP/RTP/AVP (a=setup active or passive, passive
// when absent), a c= address, a port unless the platform connects.
func parseOffer(b []byte) (offer, error) {
	var o offer
	s, err := sdp.Parse(b)
	if err != nil {
		return o, fmt.Errorf("sdp: %w", err)
	}
	m := s.FirstMedia("video")
	if m == nil {
		return o, errors.New("sdp: no video media line")
	}
	o = offer{Session: s.Name, IP: s.AddressOf(m), Port: m.Port, Proto: m.Proto, SSRC: s.SSRC}
	if m.TCP() {
		o.Setup = m.Setup
	}
	if o.IP == "" {
		return o, errors.New(`sdp: connection address "" is not an IP address (no c= line)`)
	}
	switch {
	case !m.TCP():
		o.Transport = TransportUDP
	case m.Setup == "passive" || m.Setup == "":
		o.Transport = TransportTCPPassive
	case m.Setup == "active":
		o.Transport = TransportTCPActive
	default:
		return o, fmt.Errorf("sdp: a=setup:%s: want active or passive", m.Setup)
	}
	if o.Port == 0 && o.Transport != TransportTCPActive {
		return o, errors.New("sdp: media port 0")
	}
	return o, nil
}

// answerSDP is the device's answer: its media address and port, the same
// transport, the opposite setup role, and the offered y=.
func answerSDP(deviceID, ip string, port int, o offer) []byte {
	name := o.Session
	if name == "" {
		name = sdp.Play
	}
	m := sdp.Media{Kind: "video", Port: port, Proto: o.Proto, Payloads: []int{96}, Direction: "sendonly",
		RTPMaps: []sdp.RTPMap{{Payload: 96, Encoding: "PS", ClockRate: 90000}}}
	switch o.Transport {
	case TransportTCPPassive:
		m.Setup, m.Connection = "active", "new"
	case TransportTCPActive:
		m.Setup, m.Connection = "passive", "new"
	}
	s := sdp.Session{Origin: sdp.Origin{Username: deviceID, Address: ip}, Name: name, Address: ip,
		Media: []sdp.Media{m}, SSRC: o.SSRC, HasFormat: true}
	return s.Marshal()
}

// badAnswerSDP is Faults.BadSDP's answer: no connection and no media line.
func badAnswerSDP(deviceID string) []byte {
	s := sdp.Session{Origin: sdp.Origin{Username: deviceID, Address: "0.0.0.0"}, Name: sdp.Play}
	return s.Marshal()
}
