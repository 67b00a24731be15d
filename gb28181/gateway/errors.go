package gateway

import (
	"errors"
	"fmt"
	"strings"

	"github.com/vigil-vms/vigil/gb28181/media"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/gb28181/sip"
)

// Cause is why an INVITE attempt gave no video.
type Cause string

// Causes of a failed attempt.
const (
	CauseOffline      Cause = "offline"       // the device is not registered
	CauseNoAnswer     Cause = "no answer"     // no final answer to the INVITE in time
	CauseRefused      Cause = "refused"       // a 3xx–6xx answer (Code)
	CauseBadSDP       Cause = "bad SDP"       // the answer's SDP is unusable
	CauseConnect      Cause = "connect"       // tcp-active: our connection to the device failed
	CauseNoRTP        Cause = "no RTP"        // answered, but no RTP on the negotiated transport
	CauseWrongSSRC    Cause = "wrong SSRC"    // RTP from the device with another SSRC
	CauseNoPSM        Cause = "no PSM"        // PS without a PSM whose video could not be read
	CauseUnknownCodec Cause = "unknown codec" // the video's stream type cannot be carried
	CauseNoVideo      Cause = "no video"      // RTP came, but no video could be demuxed
	CauseClosed       Cause = "closed"        // the stream's connection closed before video
	CauseFailed       Cause = "failed"        // anything else
)

// AttemptError is one failed INVITE attempt over one transport.
type AttemptError struct {
	Transport string
	Cause     Cause
	Code      int // SIP status, for CauseRefused
	Err       error
}

func (e *AttemptError) Error() string {
	msg := e.Err.Error()
	var ie *sip.InviteError
	if errors.As(e.Err, &ie) {
		// the PlayError names the camera already
		msg = strings.TrimPrefix(msg, fmt.Sprintf("gb28181 device %s, channel %s: ", ie.Device, ie.Channel))
	}
	return e.Transport + ": " + msg
}
func (e *AttemptError) Unwrap() error { return e.Err }

// PlayError is a Play that got no video over any transport tried.
type PlayError struct {
	Camera   string
	Attempts []*AttemptError
}

func (e *PlayError) Error() string {
	parts := make([]string, len(e.Attempts))
	for i, a := range e.Attempts {
		parts[i] = a.Error()
	}
	return fmt.Sprintf("no video from %s over %s: %s", e.Camera, transportsOf(e.Attempts), strings.Join(parts, "; then "))
}

// Unwrap gives the attempts' errors.
func (e *PlayError) Unwrap() []error {
	out := make([]error, len(e.Attempts))
	for i, a := range e.Attempts {
		out[i] = a
	}
	return out
}

func transportsOf(as []*AttemptError) string {
	ts := make([]string, len(as))
	for i, a := range as {
		ts[i] = a.Transport
	}
	return strings.Join(ts, ", ")
}

// classify gives an attempt's error its cause.
func classify(transport string, err error) *AttemptError {
	ae := &AttemptError{Transport: transport, Cause: CauseFailed, Err: err}
	var ie *sip.InviteError
	var me *media.MediaError
	var nopsm *ps.NoPSMError
	var unk *ps.UnknownStreamTypeError
	switch {
	case errors.As(err, &ie):
		switch ie.Kind {
		case sip.InviteOffline:
			ae.Cause = CauseOffline
		case sip.InviteNoAnswer:
			ae.Cause = CauseNoAnswer
		case sip.InviteRefused:
			ae.Cause, ae.Code = CauseRefused, ie.Code
		case sip.InviteBadSDP:
			ae.Cause = CauseBadSDP
		}
	case errors.As(err, &me):
		switch me.Kind {
		case media.MediaNoRTP:
			ae.Cause = CauseNoRTP
		case media.MediaWrongSSRC:
			ae.Cause = CauseWrongSSRC
		case media.MediaNoPSM:
			ae.Cause = CauseNoPSM
		case media.MediaUnknownCodec:
			ae.Cause = CauseUnknownCodec
		case media.MediaClosed, media.MediaStopped:
			ae.Cause = CauseClosed
		}
	case errors.As(err, &unk):
		ae.Cause = CauseUnknownCodec
	case errors.As(err, &nopsm):
		ae.Cause = CauseNoPSM
	case errors.Is(err, errNoVideo):
		ae.Cause = CauseNoVideo
	case errors.Is(err, errConnect):
		ae.Cause = CauseConnect
	}
	return ae
}

var (
	errNoVideo = errors.New("no video")
	errConnect = errors.New("connect")
)
