package gbsim

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"slices"
	"time"

	"github.com/pion/rtp"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/gb28181/ps"
)

// MaxRTPPayload is the largest RTP payload the device sends: a PS unit is cut
// into pieces of at most this size, so that a packet fits an Ethernet MTU.
const MaxRTPPayload = 1400

// maxLateness is how far behind schedule the pacer may fall before it skips
// ahead instead of sending a burst (a starved CPU, a suspended machine).
const maxLateness = time.Second

// Clips are the looping video (and optional audio) a device sends, read once
// from camsim's embedded fixtures and shareable between devices.
type Clips struct {
	// Video is the codec's main-stream clip; Audio is nil without audio.
	Video, Audio *camsim.Frames

	videoType ps.StreamType
	video     []clipUnit
	audio     []clipUnit
}

type clipUnit struct {
	pts  int64
	dur  int64 // until the next unit (the last one: until the loop restarts)
	key  bool
	data []byte // Annex-B picture or ADTS frame
}

// LoadClips reads camsim's main-stream clip of codec (camsim.CodecH264 or
// camsim.CodecH265) and, with audio, its AAC clip.
func LoadClips(codec string, audio bool) (*Clips, error) {
	v, err := camsim.VideoFrames(codec, camsim.BitrateNormal, false)
	if err != nil {
		return nil, err
	}
	c := &Clips{Video: v, videoType: ps.TypeH264}
	if codec == camsim.CodecH265 {
		c.videoType = ps.TypeH265
	}
	c.video = units(v)
	if audio {
		a, err := camsim.AudioFrames()
		if err != nil {
			return nil, err
		}
		c.Audio, c.audio = a, units(a)
	}
	return c, nil
}

func units(f *camsim.Frames) []clipUnit {
	out := make([]clipUnit, len(f.Frames))
	for i, fr := range f.Frames {
		next := f.Duration
		if i+1 < len(f.Frames) {
			next = f.Frames[i+1].PTS
		}
		u := clipUnit{pts: fr.PTS, dur: next - fr.PTS, key: fr.Key, data: fr.ADTS}
		if fr.ADTS == nil {
			for _, n := range fr.NALUs {
				u.data = append(u.data, 0, 0, 0, 1)
				u.data = append(u.data, n...)
			}
		}
		out[i] = u
	}
	return out
}

func (d *Device) loadClips() (*Clips, error) {
	d.clipsOnce.Do(func() {
		if d.clips == nil {
			d.clips, d.clipsErr = LoadClips(d.cfg.Codec, d.cfg.Audio)
		}
	})
	return d.clips, d.clipsErr
}

// framedWriter writes a unit's RTP packets to a TCP connection in one write,
// each with its RFC 4571 length prefix.
func framedWriter(c net.Conn) func([][]byte) error {
	var buf []byte
	return func(pkts [][]byte) error {
		buf = buf[:0]
		for _, p := range pkts {
			var err error
			if buf, err = ps.AppendFrame(buf, p); err != nil {
				return err
			}
		}
		if err := c.SetWriteDeadline(time.Now().Add(5 * time.Second)); err != nil {
			return err
		}
		_, err := c.Write(buf)
		return err
	}
}

// stream loops the clips at real-time pace as MPEG-PS over RTP until the
// session ends (nil) or a write fails.
func (s *session) stream(write func([][]byte) error) error {
	clips, err := s.d.loadClips()
	if err != nil {
		return err
	}
	mux := ps.Muxer{VideoType: clips.videoType}
	if clips.audio != nil {
		mux.AudioType = ps.TypeAAC
	}
	pkt := rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 96, SSRC: s.ssrc, SequenceNumber: uint16(rand.Uint32())}}
	base := int64(rand.Uint32() >> 1) // first PTS and RTP timestamp
	var (
		vi, ai     int   // next video and audio unit
		vOut, aOut int64 // their output times, 90 kHz from the start
		psBuf      []byte
		pieces     [][]byte
		pkts       [][]byte
		pktBuf     []byte
		unit       ps.Unit
	)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		audio := clips.audio != nil && aOut < vOut
		at := vOut
		if audio {
			at = aOut
		}
		due := start.Add(time.Duration(at) * time.Second / 90000)
		if late := time.Since(due); late > maxLateness {
			start = start.Add(late)
		} else if late < 0 {
			timer.Reset(-late)
			select {
			case <-s.ctx.Done():
				return nil
			case <-timer.C:
			}
		}
		if s.ctx.Err() != nil {
			return nil
		}
		var u clipUnit
		if audio {
			u = clips.audio[ai]
			ai = (ai + 1) % len(clips.audio)
			unit = ps.Unit{Type: ps.TypeAAC, PTS: base + aOut, DTS: base + aOut, Payload: u.data}
			aOut += u.dur
		} else {
			if s.keyframe.Swap(false) && !clips.video[vi].key {
				vi = nextKey(clips.video, vi)
			}
			u = clips.video[vi]
			vi = (vi + 1) % len(clips.video)
			unit = ps.Unit{Type: clips.videoType, PTS: base + vOut, DTS: base + vOut, Keyframe: u.key, Payload: u.data}
			vOut += u.dur
		}
		psBuf, err = mux.AppendUnit(psBuf[:0], &unit)
		if err != nil {
			return err
		}
		if s.d.cfg.Faults.NoPSM {
			psBuf = stripPSM(psBuf)
		}
		pieces = ps.Payloads(pieces[:0], psBuf, MaxRTPPayload)
		pkts, pktBuf = pkts[:0], pktBuf[:0]
		pkt.Timestamp = uint32(unit.PTS)
		for i, p := range pieces {
			pkt.Marker = i == len(pieces)-1
			pkt.Payload = p
			n := len(pktBuf)
			pktBuf = appendPacket(pktBuf, &pkt)
			pkt.SequenceNumber++
			pkts = append(pkts, pktBuf[n:])
		}
		if err := write(pkts); err != nil {
			return err
		}
		s.mu.Lock()
		s.packets += int64(len(pkts))
		for _, p := range pkts {
			s.bytes += int64(len(p))
		}
		if unit.Keyframe {
			s.keys++
		}
		s.mu.Unlock()
	}
}

// nextKey returns the index of the first keyframe after i, wrapping.
func nextKey(us []clipUnit, i int) int {
	for k := 1; k <= len(us); k++ {
		j := (i + k) % len(us)
		if us[j].key {
			return j
		}
	}
	return i
}

// appendPacket appends the marshalled packet to dst.
func appendPacket(dst []byte, p *rtp.Packet) []byte {
	n := len(dst)
	size := p.Header.MarshalSize() + len(p.Payload)
	dst = slices.Grow(dst, size)[:n+size]
	if _, err := p.MarshalTo(dst[n:]); err != nil {
		panic(fmt.Sprintf("gbsim: marshal rtp: %v", err)) // the buffer is sized for it
	}
	return dst
}

// stripPSM removes program stream maps from PS bytes written by ps.Muxer
// (Faults.NoPSM): the pack headers, system headers and PES packets stay.
func stripPSM(b []byte) []byte {
	out := b[:0]
	for i := 0; i+4 <= len(b); {
		var n int
		switch {
		case b[i] != 0 || b[i+1] != 0 || b[i+2] != 1:
			return append(out, b[i:]...) // not ours: keep the rest as it is
		case b[i+3] == 0xBA:
			if i+14 > len(b) {
				return append(out, b[i:]...)
			}
			n = 14 + int(b[i+13]&7)
		default:
			if i+6 > len(b) {
				return append(out, b[i:]...)
			}
			n = 6 + int(binary.BigEndian.Uint16(b[i+4:]))
		}
		n = min(n, len(b)-i)
		if b[i+3] != 0xBC {
			out = append(out, b[i:i+n]...)
		}
		i += n
	}
	return out
}
