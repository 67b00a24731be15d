package ps

import (
	"encoding/binary"
	"errors"
	"fmt"
)

const (
	videoID = 0xE0
	audioID = 0xC0
	// maxPESPayload is what one PES packet with a PTS and DTS can carry.
	maxPESPayload = 0xFFFF - 3 - 10
	// muxRate is written in pack headers, in units of 50 bytes/s (20 Mbit/s).
	muxRate = 50000
)

// Muxer writes access units as MPEG-PS the way GB/T 28181 cameras do: a pack
// header before every unit, a system header and a program stream map before
// every keyframe, video in stream 0xE0 (split into several PES packets when a
// picture is over 64 KiB), audio in stream 0xC0. It is not safe for concurrent use.
type Muxer struct {
	// VideoType is TypeH264, TypeH265 or 0 for no video.
	VideoType StreamType
	// AudioType is TypeAAC, TypeG711A, TypeG711U or 0 for no audio.
	AudioType StreamType

	version uint8
	sentPSM bool
}

// ErrUnitType is wrapped when a unit does not match the muxer's streams.
var ErrUnitType = errors.New("unit codec is not one of the muxer's streams")

// AppendUnit appends the PS bytes of one access unit to dst. Video payloads
// are Annex-B; PTS and DTS are 90 kHz. The first unit written gets a system
// header and PSM even if it is not a keyframe.
func (m *Muxer) AppendUnit(dst []byte, u *Unit) ([]byte, error) {
	var id uint8
	switch {
	case u.Type == 0:
		return dst, fmt.Errorf("ps mux: unit has no codec: %w", ErrUnitType)
	case u.Type == m.VideoType:
		id = videoID
	case u.Type == m.AudioType:
		id = audioID
		if len(u.Payload) > maxPESPayload {
			return dst, fmt.Errorf("ps mux: audio unit of %d bytes is over the %d a PES packet holds", len(u.Payload), maxPESPayload)
		}
	default:
		return dst, fmt.Errorf("ps mux: unit is %v but the muxer carries video %v and audio %v: %w", u.Type, m.VideoType, m.AudioType, ErrUnitType)
	}
	dst = appendPackHeader(dst, u.DTS)
	if !m.sentPSM || (id == videoID && u.Keyframe) {
		dst = m.appendSystemHeader(dst)
		dst = m.appendPSM(dst)
		m.sentPSM = true
	}
	p := u.Payload
	first := true
	for first || len(p) > 0 {
		n := min(len(p), maxPESPayload)
		dst = appendPES(dst, id, p[:n], u.PTS, u.DTS, first)
		p = p[n:]
		first = false
	}
	return dst, nil
}

func appendPackHeader(dst []byte, scr int64) []byte {
	scr &= 1<<33 - 1
	return append(dst, 0, 0, 1, 0xBA,
		0x44|byte(scr>>27)&0x38|byte(scr>>28)&0x03,
		byte(scr>>20),
		byte(scr>>12)&0xF8|0x04|byte(scr>>13)&0x03,
		byte(scr>>5),
		byte(scr<<3)|0x04, // SCR extension 0
		0x01,
		byte(muxRate>>14), byte(muxRate>>6&0xFF), byte(muxRate<<2&0xFF)|0x03,
		0xF8) // no stuffing
}

func (m *Muxer) appendSystemHeader(dst []byte) []byte {
	var audioBound, videoBound byte
	n := 0
	if m.VideoType != 0 {
		videoBound, n = 1, n+1
	}
	if m.AudioType != 0 {
		audioBound, n = 1, n+1
	}
	dst = append(dst, 0, 0, 1, 0xBB)
	dst = binary.BigEndian.AppendUint16(dst, uint16(6+3*n))
	dst = append(dst, 0x80|byte(muxRate>>15), byte(muxRate>>7&0xFF), byte(muxRate<<1&0xFF)|1,
		audioBound<<2|0x02, // audio_bound, fixed_flag 1, CSPS_flag 0
		0xE0|videoBound, 0x7F)
	if m.VideoType != 0 {
		dst = append(dst, videoID, 0xE0|byte(1024>>8)&0x1F, byte(1024&0xFF)) // 1 MiB buffer bound
	}
	if m.AudioType != 0 {
		dst = append(dst, audioID, 0xC0|byte(512>>8)&0x1F, byte(512&0xFF)) // 64 KiB
	}
	return dst
}

func (m *Muxer) appendPSM(dst []byte) []byte {
	start := len(dst)
	n := 0
	if m.VideoType != 0 {
		n++
	}
	if m.AudioType != 0 {
		n++
	}
	dst = append(dst, 0, 0, 1, 0xBC)
	dst = binary.BigEndian.AppendUint16(dst, uint16(10+4*n))
	dst = append(dst, 0x80|0x20|m.version&0x1F, 0xFF, 0, 0)
	dst = binary.BigEndian.AppendUint16(dst, uint16(4*n))
	if m.VideoType != 0 {
		dst = append(dst, byte(m.VideoType), videoID, 0, 0)
	}
	if m.AudioType != 0 {
		dst = append(dst, byte(m.AudioType), audioID, 0, 0)
	}
	return binary.BigEndian.AppendUint32(dst, crc32MPEG(dst[start:]))
}

func appendPES(dst []byte, id uint8, payload []byte, pts, dts int64, first bool) []byte {
	hdl := 0
	flags := byte(0)
	if first {
		hdl, flags = 5, 0x80
		if dts != pts {
			hdl, flags = 10, 0xC0
		}
	}
	dst = append(dst, 0, 0, 1, id)
	dst = binary.BigEndian.AppendUint16(dst, uint16(3+hdl+len(payload)))
	align := byte(0)
	if first {
		align = 0x04 // data_alignment_indicator
	}
	dst = append(dst, 0x80|align, flags, byte(hdl))
	if flags == 0x80 {
		dst = appendTS(dst, 2, pts)
	} else if flags == 0xC0 {
		dst = appendTS(dst, 3, pts)
		dst = appendTS(dst, 1, dts)
	}
	return append(dst, payload...)
}

func appendTS(dst []byte, prefix byte, ts int64) []byte {
	ts &= 1<<33 - 1
	return append(dst, prefix<<4|byte(ts>>29)&0x0E|1, byte(ts>>22), byte(ts>>14)|1, byte(ts>>7), byte(ts<<1)|1)
}

// Payloads appends to dst the successive pieces of at most max bytes that b
// splits into, for RTP payloads. The pieces share b's memory.
func Payloads(dst [][]byte, b []byte, max int) [][]byte {
	if max <= 0 {
		max = len(b)
	}
	for len(b) > 0 {
		n := min(len(b), max)
		dst = append(dst, b[:n])
		b = b[n:]
	}
	return dst
}
