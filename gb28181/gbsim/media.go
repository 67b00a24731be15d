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

// Audio codecs a device can add to its PS stream (Config.AudioCodec).
const (
	AudioAAC  = "aac"  // camsim's AAC-LC clip, mono 48 kHz, ADTS (stream type 0x0F)
	AudioPCMA = "pcma" // a G.711 A-law tone, 8 kHz (stream type 0x90), what most devices send
	AudioPCMU = "pcmu" // a G.711 µ-law tone, 8 kHz (stream type 0x91)
)

// Clips are the looping video (and optional audio) a device sends, read once
// from camsim's embedded fixtures and shareable between devices.
type Clips struct {
	// Video is the codec's main-stream clip; Audio is nil without audio.
	Video, Audio *camsim.Frames

	videoType ps.StreamType
	audioType ps.StreamType
	video     []clipUnit
	audio     []clipUnit
}

type clipUnit struct {
	pts  int64
	dur  int64 // until the next unit (the last one: until the loop restarts)
	key  bool
	data []byte // Annex-B picture, ADTS frame or G.711 samples
}

// LoadClips reads camsim's main-stream clip of codec (camsim.CodecH264 or
// camsim.CodecH265) and bitrate (camsim.BitrateNormal, about 1.1 Mbit/s, or
// camsim.BitrateHigh, about 2 Mbit/s, H.264 only) and audio: "" for none,
// AudioAAC, AudioPCMA or AudioPCMU.
func LoadClips(codec, bitrate, audio string) (*Clips, error) {
	v, err := camsim.VideoFrames(codec, bitrate, false)
	if err != nil {
		return nil, err
	}
	c := &Clips{Video: v, videoType: ps.TypeH264}
	if codec == camsim.CodecH265 {
		c.videoType = ps.TypeH265
	}
	c.video = units(v)
	switch audio {
	case "":
		return c, nil
	case AudioAAC:
		c.Audio, err = camsim.AudioFrames()
		c.audioType = ps.TypeAAC
	case AudioPCMA, AudioPCMU:
		c.Audio, err = camsim.G711Frames(audio == AudioPCMA)
		c.audioType = ps.TypeG711A
		if audio == AudioPCMU {
			c.audioType = ps.TypeG711U
		}
	default:
		return nil, fmt.Errorf("gbsim: audio codec %q: want aac, pcma or pcmu", audio)
	}
	if err != nil {
		return nil, err
	}
	c.audio = units(c.Audio)
	return c, nil
}

func units(f *camsim.Frames) []clipUnit {
	out := make([]clipUnit, len(f.Frames))
	for i, fr := range f.Frames {
		next := f.Duration
		if i+1 < len(f.Frames) {
			next = f.Frames[i+1].PTS
		}
		u := clipUnit{pts: fr.PTS, dur: next - fr.PTS, key: fr.Key, data: fr.Audio}
		if fr.Audio == nil {
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
			d.clips, d.clipsErr = LoadClips(d.cfg.Codec, d.cfg.Bitrate, d.cfg.AudioCodec)
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

// packetizer turns the looping clips into RTP packets of MPEG-PS, one unit
// (a video picture or an audio frame) at a time, in presentation order.
type packetizer struct {
	clips      *Clips
	mux        ps.Muxer
	noPSM      bool
	pkt        rtp.Packet
	base       int64 // first PTS and RTP timestamp
	vi, ai     int   // next video and audio unit
	vOut, aOut int64 // their output times, 90 kHz from the start
	psBuf      []byte
	pieces     [][]byte
	pkts       [][]byte
	pktBuf     []byte
	unit       ps.Unit
}

func newPacketizer(clips *Clips, ssrc uint32, noPSM bool) *packetizer {
	p := &packetizer{clips: clips, noPSM: noPSM, base: int64(rand.Uint32() >> 1)}
	p.mux.VideoType = clips.videoType
	p.mux.AudioType = clips.audioType
	p.pkt.Header = rtp.Header{Version: 2, PayloadType: 96, SSRC: ssrc, SequenceNumber: uint16(rand.Uint32())}
	return p
}

// seek starts the video where a clip looping since elapsed ago would be
// (mid-GOP, as a camera's encoder that runs whoever watches), and the audio
// likewise.
func (p *packetizer) seek(elapsed time.Duration) {
	at := int64(elapsed / (time.Second / 90000))
	find := func(us []clipUnit) int {
		if len(us) == 0 {
			return 0
		}
		loop := us[len(us)-1].pts + us[len(us)-1].dur
		t := at % loop
		for i, u := range us {
			if u.pts+u.dur > t {
				return i
			}
		}
		return 0
	}
	p.vi, p.ai = find(p.clips.video), find(p.clips.audio)
}

// due is the output time of the next unit, 90 kHz from the start.
func (p *packetizer) due() int64 {
	if p.clips.audio != nil && p.aOut < p.vOut {
		return p.aOut
	}
	return p.vOut
}

// next returns the RTP packets of the next unit, valid until the next call,
// and whether it is a keyframe. With keyframe set, a video unit jumps to the
// clip's next keyframe.
func (p *packetizer) next(keyframe func() bool) ([][]byte, bool, error) {
	c := p.clips
	if c.audio != nil && p.aOut < p.vOut {
		u := c.audio[p.ai]
		p.ai = (p.ai + 1) % len(c.audio)
		p.unit = ps.Unit{Type: c.audioType, PTS: p.base + p.aOut, DTS: p.base + p.aOut, Payload: u.data}
		p.aOut += u.dur
	} else {
		if keyframe() && !c.video[p.vi].key {
			p.vi = nextKey(c.video, p.vi)
		}
		u := c.video[p.vi]
		p.vi = (p.vi + 1) % len(c.video)
		p.unit = ps.Unit{Type: c.videoType, PTS: p.base + p.vOut, DTS: p.base + p.vOut, Keyframe: u.key, Payload: u.data}
		p.vOut += u.dur
	}
	var err error
	p.psBuf, err = p.mux.AppendUnit(p.psBuf[:0], &p.unit)
	if err != nil {
		return nil, false, err
	}
	if p.noPSM {
		p.psBuf = stripPSM(p.psBuf)
	}
	p.pieces = ps.Payloads(p.pieces[:0], p.psBuf, MaxRTPPayload)
	p.pkts, p.pktBuf = p.pkts[:0], p.pktBuf[:0]
	p.pkt.Timestamp = uint32(p.unit.PTS)
	for i, piece := range p.pieces {
		p.pkt.Marker = i == len(p.pieces)-1
		p.pkt.Payload = piece
		n := len(p.pktBuf)
		p.pktBuf = appendPacket(p.pktBuf, &p.pkt)
		p.pkt.SequenceNumber++
		p.pkts = append(p.pkts, p.pktBuf[n:])
	}
	return p.pkts, p.unit.Keyframe, nil
}

// stream loops the clips at real-time pace as MPEG-PS over RTP until the
// session ends (nil) or a write fails.
func (s *session) stream(write func([][]byte) error) error {
	clips, err := s.d.loadClips()
	if err != nil {
		return err
	}
	p := newPacketizer(clips, s.ssrc, s.faults.NoPSM)
	if s.d.cfg.MidGOP {
		p.seek(time.Since(s.d.started))
	}
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		due := start.Add(time.Duration(p.due()) * time.Second / 90000)
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
		pkts, key, err := p.next(func() bool { return s.keyframe.Swap(false) })
		if err != nil {
			return err
		}
		if err := write(pkts); err != nil {
			return err
		}
		s.mu.Lock()
		s.packets += int64(len(pkts))
		for _, b := range pkts {
			s.bytes += int64(len(b))
		}
		if key {
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
