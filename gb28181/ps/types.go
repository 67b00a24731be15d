package ps

import (
	"errors"
	"fmt"
)

// StreamType is the stream_type of a program stream map entry (ISO/IEC 13818-1
// table 2-34, extended by GB/T 28181 for G.711).
type StreamType uint8

// Stream types Vigil reads and writes.
const (
	TypeH264  StreamType = 0x1B
	TypeH265  StreamType = 0x24
	TypeAAC   StreamType = 0x0F
	TypeG711A StreamType = 0x90
	TypeG711U StreamType = 0x91
)

// String names the codec.
func (t StreamType) String() string {
	switch t {
	case TypeH264:
		return "H.264"
	case TypeH265:
		return "H.265"
	case TypeAAC:
		return "AAC"
	case TypeG711A:
		return "G.711A"
	case TypeG711U:
		return "G.711U"
	case 0x02:
		return "MPEG-2 video (stream type 0x02)"
	case 0x03, 0x04:
		return fmt.Sprintf("MPEG audio (stream type 0x%02X)", uint8(t))
	case 0x10:
		return "MPEG-4 video (stream type 0x10)"
	case 0x80:
		return "SVAC video (stream type 0x80)"
	}
	return fmt.Sprintf("stream type 0x%02X", uint8(t))
}

// IsVideo reports whether t is a video stream type.
func (t StreamType) IsVideo() bool { return t == TypeH264 || t == TypeH265 }

func (t StreamType) supported() bool {
	switch t {
	case TypeH264, TypeH265, TypeAAC, TypeG711A, TypeG711U:
		return true
	}
	return false
}

// Unit is one access unit: a video picture (Annex-B NAL units with start codes)
// or the audio payload of one PES packet (ADTS frames for AAC, A-law or µ-law
// bytes for G.711).
type Unit struct {
	// StreamID is the PES stream_id (0xE0–0xEF video, 0xC0–0xDF audio).
	StreamID uint8
	// Type is the codec, from the program stream map or inferred.
	Type StreamType
	// PTS and DTS are 33-bit 90 kHz timestamps, as carried: they wrap after
	// about 26.5 hours, and the caller unwraps them. DTS equals PTS when the
	// stream carries none. When a PES packet had no PTS, the demuxer
	// extrapolates from the previous unit.
	PTS, DTS int64
	// Keyframe is set for video units holding an IDR (H.264) or IRAP (H.265) picture.
	Keyframe bool
	// Discontinuity is set on the first unit of a stream after a loss,
	// a resynchronisation or a dropped oversized unit: the decoder should
	// wait for a keyframe.
	Discontinuity bool
	// Payload is the unit's bytes. In units given to Demuxer.OnUnit it is
	// only valid during the call; copy it to keep it.
	Payload []byte
}

// ErrNoPSM is wrapped by a *NoPSMError: the stream had no program stream map
// and the codec was inferred from the stream id and the payload.
var ErrNoPSM = errors.New("MPEG-PS has no program stream map (PSM)")

// NoPSMError says which codec was inferred for a stream without a PSM. It is
// reported once per stream.
type NoPSMError struct {
	StreamID uint8
	Inferred StreamType
}

func (e *NoPSMError) Error() string {
	return fmt.Sprintf("MPEG-PS has no program stream map (PSM): stream 0x%02X taken as %v from its payload", e.StreamID, e.Inferred)
}

// Unwrap returns ErrNoPSM.
func (e *NoPSMError) Unwrap() error { return ErrNoPSM }

// UnknownStreamTypeError is reported once per stream whose PSM stream type
// Vigil cannot carry (for example MPEG-2 video 0x02 or SVAC 0x80). The
// stream's packets are dropped.
type UnknownStreamTypeError struct {
	StreamID uint8
	Type     StreamType
}

func (e *UnknownStreamTypeError) Error() string {
	return fmt.Sprintf("MPEG-PS stream 0x%02X has unsupported codec %v (supported: H.264 0x1B, H.265 0x24, AAC 0x0F, G.711A 0x90, G.711U 0x91)", e.StreamID, e.Type)
}

// UnitTooLargeError is reported when an access unit grows beyond
// Demuxer.MaxUnitSize; the unit is dropped.
type UnitTooLargeError struct {
	StreamID uint8
	Max      int
}

func (e *UnitTooLargeError) Error() string {
	return fmt.Sprintf("MPEG-PS stream 0x%02X: access unit larger than %d bytes dropped", e.StreamID, e.Max)
}

// ResyncError is reported when bytes that are not a valid MPEG-PS structure
// were skipped to find the next pack header.
type ResyncError struct {
	Skipped int
}

func (e *ResyncError) Error() string {
	return fmt.Sprintf("MPEG-PS: %d bytes of invalid data skipped to the next pack header", e.Skipped)
}

// Stats counts what the demuxer has seen.
type Stats struct {
	Packs, SystemHeaders, PSMs, PES uint64
	PSMBadCRC                       uint64 // PSMs accepted despite a wrong CRC_32
	Units                           uint64
	Resyncs, SkippedBytes           uint64
	DroppedUnits                    uint64 // oversized, unknown codec, or cut by a loss
}
