package ingest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"

	"github.com/bluenviron/gortsplib/v4/pkg/liberrors"
)

// Kinds of pull failures. A *PullError matches its kind with errors.Is:
//
//	if errors.Is(err, ingest.ErrUnauthorized) { ... }
var (
	ErrUnauthorized     = errors.New("wrong user name or password")
	ErrNotFound         = errors.New("stream not found")
	ErrTimeout          = errors.New("timeout")
	ErrRefused          = errors.New("connection refused")
	ErrUnreachable      = errors.New("camera unreachable")
	ErrClosedByCamera   = errors.New("connection closed by the camera")
	ErrUnsupportedCodec = errors.New("unsupported codec")
	ErrStalled          = errors.New("stream stalled")
	ErrNoKeyframe       = errors.New("no keyframe")
	ErrBadMedia         = errors.New("undecodable media")
	ErrBadReply         = errors.New("invalid reply")
	ErrInvalidURL       = errors.New("invalid camera URL")
	// ErrSource is the kind of a failure that a pushed camera's Source
	// reported (for GB/T 28181: no answer, refused, no RTP, …); the Source's
	// error is the cause, and its sentence is the message.
	ErrSource = errors.New("the device's stream failed")
)

// PullError is why pulling a camera stream failed: a kind (one of the Err*
// variables above), a sentence for people, and the cause.
type PullError struct {
	Kind error
	Msg  string // a sentence for the status page; never contains a password
	Err  error  // the cause, may be nil
}

// Error returns the sentence, with the cause when it adds something.
func (e *PullError) Error() string {
	if e.Err == nil {
		return e.Msg
	}
	if e.Err.Error() == e.Msg {
		return RedactURL(e.Msg)
	}
	return RedactURL(e.Msg + " (" + e.Err.Error() + ")")
}

// Unwrap returns the cause.
func (e *PullError) Unwrap() error { return e.Err }

// Is matches the kind.
func (e *PullError) Is(target error) bool { return target == e.Kind }

// sourceError turns an error of a Source's Play into a *PullError that keeps
// the Source's sentence (and the error, for errors.As).
func sourceError(err error) *PullError {
	var pe *PullError
	if errors.As(err, &pe) {
		return pe
	}
	return &PullError{Kind: ErrSource, Msg: err.Error(), Err: err}
}

// classify turns an error of the RTSP client into a *PullError that a person
// understands. step names the RTSP step that failed ("describe", "setup", "play").
func classify(err error, host string) *PullError {
	var pe *PullError
	if errors.As(err, &pe) {
		return pe
	}
	var bad liberrors.ErrClientBadStatusCode
	if errors.As(err, &bad) {
		switch bad.Code {
		case 401:
			return &PullError{Kind: ErrUnauthorized,
				Msg: "the camera refused the user name or password (RTSP 401 Unauthorized)"}
		case 403:
			return &PullError{Kind: ErrUnauthorized,
				Msg: "the camera denied access to this stream (RTSP 403 Forbidden)"}
		case 404:
			return &PullError{Kind: ErrNotFound,
				Msg: "the camera has no stream at this URL path (RTSP 404 Not Found)"}
		case 454:
			return &PullError{Kind: ErrBadReply, Msg: "the camera lost the RTSP session (RTSP 454 Session Not Found)"}
		case 461:
			return &PullError{Kind: ErrBadReply, Msg: "the camera does not support this transport; try another (RTSP 461 Unsupported Transport)"}
		case 503:
			return &PullError{Kind: ErrBadReply, Msg: "the camera is busy, probably too many clients (RTSP 503 Service Unavailable)"}
		}
		return &PullError{Kind: ErrBadReply,
			Msg: fmt.Sprintf("the camera answered RTSP %d %s", bad.Code, bad.Message)}
	}
	switch {
	case errors.As(err, new(liberrors.ErrClientRequestTimedOut)):
		return &PullError{Kind: ErrTimeout, Msg: "the camera accepted the connection but did not answer in time"}
	case errors.As(err, new(liberrors.ErrClientTCPTimeout)), errors.As(err, new(liberrors.ErrClientUDPTimeout)):
		return &PullError{Kind: ErrStalled, Msg: "the camera stopped sending packets", Err: err}
	case errors.As(err, new(liberrors.ErrClientSDPInvalid)), errors.As(err, new(liberrors.ErrClientContentTypeMissing)),
		errors.As(err, new(liberrors.ErrClientContentTypeUnsupported)):
		return &PullError{Kind: ErrBadReply, Msg: "the camera's stream description (SDP) is invalid", Err: err}
	case errors.As(err, new(liberrors.ErrClientTransportHeaderInvalid)),
		errors.As(err, new(liberrors.ErrClientServerPortsNotProvided)),
		errors.As(err, new(liberrors.ErrClientSessionHeaderInvalid)):
		return &PullError{Kind: ErrBadReply, Msg: "the camera's RTSP answer is invalid", Err: err}
	case errors.Is(err, syscall.ECONNREFUSED):
		return &PullError{Kind: ErrRefused,
			Msg: fmt.Sprintf("connection refused by %s: wrong address or port, or the camera's RTSP service is off", host)}
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return &PullError{Kind: ErrUnreachable, Msg: fmt.Sprintf("no route to %s: the camera or its network is down", host)}
	case errors.As(err, new(*net.DNSError)):
		return &PullError{Kind: ErrUnreachable, Msg: fmt.Sprintf("the camera's host name %s cannot be resolved", host), Err: err}
	case errors.Is(err, context.DeadlineExceeded), isTimeout(err):
		return &PullError{Kind: ErrTimeout, Msg: fmt.Sprintf("connecting to %s timed out: the camera is off or a firewall drops the traffic", host)}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return &PullError{Kind: ErrClosedByCamera, Msg: "the camera closed the connection", Err: err}
	}
	return &PullError{Kind: ErrBadReply, Msg: "the camera's answer could not be understood", Err: err}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
