package media

import (
	"fmt"
	"time"
)

// MediaErrorKind is the cause of a *MediaError.
type MediaErrorKind int

// Causes of a *MediaError.
const (
	// MediaNoRTP: the device answered the INVITE but no RTP packet with
	// the expected SSRC arrived on the negotiated transport in time.
	MediaNoRTP MediaErrorKind = iota + 1
	// MediaWrongSSRC: packets came from the device's address, but with
	// another SSRC than the one in the INVITE's "y=" line.
	MediaWrongSSRC
	// MediaNoPSM: the program stream has no program stream map; the codec
	// was inferred (Err is the *ps.NoPSMError). A warning: video flows.
	MediaNoPSM
	// MediaUnknownCodec: a stream's codec cannot be carried (Err is the
	// *ps.UnknownStreamTypeError); its packets are dropped.
	MediaUnknownCodec
	// MediaClosed: the stream's TCP connection ended.
	MediaClosed
	// MediaStopped: a started stream received nothing for IdleTimeout.
	MediaStopped
)

// String names the cause in a word or two, for logs and metrics.
func (k MediaErrorKind) String() string {
	switch k {
	case MediaNoRTP:
		return "no RTP"
	case MediaWrongSSRC:
		return "wrong SSRC"
	case MediaNoPSM:
		return "no PSM"
	case MediaUnknownCodec:
		return "unknown codec"
	case MediaClosed:
		return "connection closed"
	case MediaStopped:
		return "stream stopped"
	}
	return fmt.Sprintf("media error %d", int(k))
}

// MediaError is a failure of a device's media stream, with a sentence that
// names the cause, the transport and the addresses involved.
type MediaError struct {
	Kind MediaErrorKind
	// Transport is "udp", "tcp-passive" or "tcp-active".
	Transport string
	// Addr is our media address the device was to send to (udp and
	// tcp-passive), or the device's address we connected to (tcp-active).
	Addr string
	// Waited is how long the receiver waited (MediaNoRTP, MediaWrongSSRC,
	// MediaStopped).
	Waited time.Duration
	// Expected is the SSRC given to the device; Got the one it used
	// (MediaWrongSSRC), and From the address those packets came from.
	Expected, Got uint32
	From          string
	// Err is the underlying error: the demuxer's, the connection's, or the
	// context's for MediaNoRTP and MediaWrongSSRC.
	Err error
}

func (e *MediaError) Error() string {
	w := e.Waited.Round(100 * time.Millisecond)
	switch e.Kind {
	case MediaNoRTP:
		if e.Transport == TransportTCPActive {
			return fmt.Sprintf("the device answered but sent no RTP over %s on our connection to %s in %v", e.Transport, e.Addr, w)
		}
		return fmt.Sprintf("the device answered but sent no RTP over %s to %s in %v", e.Transport, e.Addr, w)
	case MediaWrongSSRC:
		return fmt.Sprintf("the device sent RTP over %s from %s with SSRC %010d, but it was given SSRC %010d (check the device's SSRC setting)", e.Transport, e.From, e.Got, e.Expected)
	case MediaNoPSM, MediaUnknownCodec:
		return fmt.Sprintf("media over %s: %v", e.Transport, e.Err)
	case MediaClosed:
		if e.Err != nil {
			return fmt.Sprintf("the device's media connection over %s (%s) closed: %v", e.Transport, e.Addr, e.Err)
		}
		return fmt.Sprintf("the device's media connection over %s (%s) closed", e.Transport, e.Addr)
	case MediaStopped:
		return fmt.Sprintf("the device stopped sending RTP over %s: nothing for %v", e.Transport, w)
	}
	return fmt.Sprintf("media over %s: %v: %v", e.Transport, e.Kind, e.Err)
}

// Unwrap returns the underlying error.
func (e *MediaError) Unwrap() error { return e.Err }
