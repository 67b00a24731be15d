package sip

import (
	"fmt"
	"time"
)

// RequestErrorKind tells why a request to a device failed.
type RequestErrorKind int

// Request failures.
const (
	// RequestOffline: the device is not registered.
	RequestOffline RequestErrorKind = iota + 1
	// RequestNoAnswer: no SIP answer to the MESSAGE or SUBSCRIBE in time.
	RequestNoAnswer
	// RequestRefused: a SIP answer of 300–699 (Code set).
	RequestRefused
	// RequestIncomplete: the device accepted the query but its MANSCDP
	// answer (all catalog pages, the DeviceInfo response) did not arrive in
	// time.
	RequestIncomplete
	// RequestFailed: the device answered with Result ERROR.
	RequestFailed
)

// RequestError is the error of Catalog, DeviceInfo, PTZ and KeyFrame.
type RequestError struct {
	Kind    RequestErrorKind
	Code    int    // SIP status for RequestRefused
	Msg     string // detail: the SIP reason, what arrived
	Device  string
	Request string // "Catalog query", "PTZ control", …
}

func (e *RequestError) Error() string {
	switch e.Kind {
	case RequestOffline:
		return fmt.Sprintf("gb28181 device %s is not registered (offline): cannot send the %s", e.Device, e.Request)
	case RequestNoAnswer:
		return fmt.Sprintf("gb28181 device %s did not answer the %s (%s): check that it is on line and reachable", e.Device, e.Request, e.Msg)
	case RequestRefused:
		return fmt.Sprintf("gb28181 device %s refused the %s with %d %s", e.Device, e.Request, e.Code, e.Msg)
	case RequestIncomplete:
		return fmt.Sprintf("gb28181 device %s accepted the %s but %s", e.Device, e.Request, e.Msg)
	case RequestFailed:
		return fmt.Sprintf("gb28181 device %s answered the %s with Result ERROR", e.Device, e.Request)
	}
	return fmt.Sprintf("gb28181 device %s: %s: %s", e.Device, e.Request, e.Msg)
}

// InviteErrorKind tells why an INVITE failed.
type InviteErrorKind int

// INVITE failures.
const (
	// InviteNoAnswer: no final answer within the INVITE timeout (or the
	// INVITE could not be sent).
	InviteNoAnswer InviteErrorKind = iota + 1
	// InviteRefused: a final answer of 300–699; Code is set.
	InviteRefused
	// InviteBadSDP: a 2xx whose SDP is unusable; the call was hung up.
	InviteBadSDP
	// InviteOffline: the device is not registered.
	InviteOffline
)

func (k InviteErrorKind) String() string {
	switch k {
	case InviteNoAnswer:
		return "no answer"
	case InviteRefused:
		return "refused"
	case InviteBadSDP:
		return "bad SDP"
	case InviteOffline:
		return "offline"
	}
	return fmt.Sprintf("InviteErrorKind(%d)", int(k))
}

// InviteError is the error of Invite.
type InviteError struct {
	Kind      InviteErrorKind
	Code      int    // SIP status, for InviteRefused
	Msg       string // detail: the SIP reason, what is wrong with the SDP
	Device    string
	Channel   string
	Transport string        // udp, tcp-passive or tcp-active
	Timeout   time.Duration // for InviteNoAnswer
}

func (e *InviteError) Error() string {
	what := fmt.Sprintf("gb28181 device %s, channel %s", e.Device, e.Channel)
	switch e.Kind {
	case InviteOffline:
		return what + ": the device is not registered (offline), so it cannot be invited; check its power, network and SIP settings"
	case InviteNoAnswer:
		if e.Msg != "" {
			return fmt.Sprintf("%s: no answer to the INVITE (%s) within %v: %s; check that the device is reachable", what, e.Transport, e.Timeout, e.Msg)
		}
		return fmt.Sprintf("%s: no answer to the INVITE (%s) within %v; check that the device is reachable and the channel exists", what, e.Transport, e.Timeout)
	case InviteRefused:
		return fmt.Sprintf("%s: the device refused the INVITE (%s) with %d %s", what, e.Transport, e.Code, e.Msg)
	case InviteBadSDP:
		return fmt.Sprintf("%s: the device answered the INVITE (%s) with an unusable SDP: %s", what, e.Transport, e.Msg)
	}
	return fmt.Sprintf("%s: INVITE failed: %s", what, e.Msg)
}
