package ps

import (
	"bytes"
	"encoding/binary"
)

// DefaultMaxUnitSize is the default of Demuxer.MaxUnitSize.
const DefaultMaxUnitSize = 8 << 20

const (
	maxPTSEntries = 64
	stHeader      = iota
	stPayload
	stUnbounded
	stSkip
)

var startCode = []byte{0, 0, 1}

// Demuxer turns an MPEG program stream, written in chunks of any size (RTP
// payloads as they arrive), into access units. It is not safe for concurrent use.
//
// Video units are cut at access-unit boundaries found in the H.264/H.265
// elementary stream, so a picture spread over several PES packets (or PES
// packets that hold the end of one picture and the start of the next, as
// ffmpeg writes them) comes out whole; a picture is emitted when the first
// NAL unit of the next one arrives, or on Flush. Audio units are emitted per
// PES packet.
type Demuxer struct {
	// OnUnit receives every access unit. The Unit and its Payload are only
	// valid during the call.
	OnUnit func(u *Unit)
	// OnError receives problems the demuxer survives: *NoPSMError,
	// *UnknownStreamTypeError, *UnitTooLargeError, *ResyncError. It may be nil.
	OnError func(err error)
	// MaxUnitSize bounds an access unit; larger units are dropped with a
	// *UnitTooLargeError. It defaults to 8 MiB.
	MaxUnitSize int

	hdr       []byte
	state     int
	remaining int
	cur       *stream
	synced    bool
	skipped   int
	psm       [256]StreamType
	havePSM   bool
	streams   [0xF0 - 0xC0]*stream
	stats     Stats
	unit      Unit
}

type ptsEntry struct {
	off      int
	pts, dts int64
	used     bool
}

type stream struct {
	id        uint8
	typ       StreamType
	reported  bool // unknown type or no-PSM inference reported
	buf       []byte
	scan      int
	hasVCL    bool
	vclOff    int // where the unit's first slice NAL starts
	key       bool
	skipToAU  bool
	disc      bool
	entries   []ptsEntry
	pts, dts  int64
	hasPTS    bool
	lastPTS   int64
	lastDTS   int64
	lastDelta int64
	havePrev  bool
}

// Stats returns counters of what was seen so far.
func (d *Demuxer) Stats() Stats { return d.stats }

func (d *Demuxer) maxUnit() int {
	if d.MaxUnitSize > 0 {
		return d.MaxUnitSize
	}
	return DefaultMaxUnitSize
}

func (d *Demuxer) report(err error) {
	if d.OnError != nil {
		d.OnError(err)
	}
}

// Write feeds the next bytes of the stream. It never fails: problems are
// given to OnError and the demuxer resynchronises at the next pack header.
func (d *Demuxer) Write(p []byte) {
	data := p
	if len(d.hdr) > 0 {
		d.hdr = append(d.hdr, p...)
		data = d.hdr
	}
	i := d.parse(data)
	rest := data[i:]
	if len(d.hdr) > 0 {
		if i > 0 {
			n := copy(d.hdr, rest)
			d.hdr = d.hdr[:n]
		}
	} else {
		d.hdr = append(d.hdr[:0], rest...)
	}
}

// Lost tells the demuxer that bytes are missing before the next Write (an
// RTP sequence gap). A unit being assembled is dropped unless the loss fell
// between two complete PES packets; the next units of each stream carry
// Discontinuity; parsing restarts at the next pack header.
func (d *Demuxer) Lost() {
	clean := d.state == stHeader && len(d.hdr) == 0
	for _, s := range d.streams {
		if s == nil {
			continue
		}
		if clean && s.typ.IsVideo() && s.hasVCL && !s.skipToAU {
			d.emitVideo(s, len(s.buf))
		} else if len(s.buf) > 0 || s.hasVCL {
			d.stats.DroppedUnits++
		}
		s.reset()
	}
	d.hdr = d.hdr[:0]
	d.state = stHeader
	d.cur = nil
	d.synced = false
}

// Flush emits the video units still being assembled: at the end of the
// stream, or on the RTP marker bit (the last packet of a picture) to hand a
// picture on without waiting for the first bytes of the next one.
func (d *Demuxer) Flush() {
	if d.state == stUnbounded { // the held-back tail of a PES_packet_length 0 packet
		d.feed(d.hdr)
		d.hdr = d.hdr[:0]
		d.endPES()
		d.state = stHeader
	}
	for _, s := range d.streams {
		if s != nil && s.typ.IsVideo() && s.hasVCL && !s.skipToAU {
			d.emitVideo(s, len(s.buf))
			s.hasVCL, s.key = false, false
			s.scan = 0
		}
	}
}

// MidPacket reports whether the demuxer is inside a PES packet whose
// length says more bytes follow, or holds part of a header: a Flush now
// would cut the unit being assembled. A receiver takes the RTP marker bit
// as the end of a picture only when MidPacket is false, because some
// devices set it on every packet.
func (d *Demuxer) MidPacket() bool {
	return d.state == stPayload || d.state == stSkip || (d.state == stHeader && len(d.hdr) > 0)
}

func (s *stream) reset() {
	s.buf = s.buf[:0]
	s.scan = 0
	s.hasVCL, s.key = false, false
	s.skipToAU = true
	s.disc = true
	s.entries = s.entries[:0]
}

// parse consumes data and returns how many bytes it used.
func (d *Demuxer) parse(data []byte) int {
	i := 0
	for i < len(data) {
		switch d.state {
		case stPayload, stSkip:
			n := min(d.remaining, len(data)-i)
			if d.state == stPayload {
				d.feed(data[i : i+n])
			}
			i += n
			d.remaining -= n
			if d.remaining == 0 {
				if d.state == stPayload {
					d.endPES()
				}
				d.state = stHeader
			}
			continue
		case stUnbounded:
			j := findSystemStart(data[i:])
			if j < 0 {
				n := max(0, len(data)-i-3)
				d.feed(data[i : i+n])
				return i + n
			}
			d.feed(data[i : i+j])
			d.endPES()
			i += j
			d.state = stHeader
			continue
		}
		n, ok := d.header(data[i:])
		if !ok {
			return i // need more bytes
		}
		i += n
	}
	return i
}

// findSystemStart finds 00 00 01 followed by a stream id ≥ 0xB9 (never a NAL
// header, whose first bit is zero).
func findSystemStart(b []byte) int {
	off := 0
	for {
		k := bytes.Index(b[off:], startCode)
		if k < 0 || off+k+3 >= len(b) {
			return -1
		}
		if b[off+k+3] >= 0xB9 {
			return off + k
		}
		off += k + 1
	}
}

// header parses one structure at the start of b. It returns the bytes used,
// or ok false when b is too short.
func (d *Demuxer) header(b []byte) (int, bool) {
	if len(b) < 4 {
		return 0, false
	}
	if b[0] != 0 || b[1] != 0 || b[2] != 1 || b[3] < 0xB9 || (!d.synced && b[3] != 0xBA) {
		return d.resync(b)
	}
	id := b[3]
	switch {
	case id == 0xB9: // program end
		return 4, true
	case id == 0xBA:
		if len(b) < 7 {
			return 0, false
		}
		n := 12 // MPEG-1
		switch {
		case b[4] == 0 && b[5] == 0 && b[6] == 1:
			n = 4 // a bare pack start code, as some Hikvision H.265 cameras send
		case len(b) < 12:
			return 0, false
		case b[4]>>6 == 1:
			if len(b) < 14 {
				return 0, false
			}
			n = 14 + int(b[13]&7)
		case b[4]>>4 != 2:
			return d.resync(b)
		}
		if len(b) < n {
			return 0, false
		}
		d.flushResync()
		d.synced = true
		d.stats.Packs++
		return n, true
	}
	if len(b) < 6 {
		return 0, false
	}
	length := int(binary.BigEndian.Uint16(b[4:]))
	switch {
	case id == 0xBC:
		if len(b) < 6+length {
			return 0, false
		}
		d.parsePSM(b[:6+length])
		return 6 + length, true
	case id >= 0xC0 && id <= 0xEF:
		return d.pesHeader(b, id, length)
	}
	if id == 0xBB {
		d.stats.SystemHeaders++
	}
	d.state, d.remaining = stSkip, length
	if length == 0 {
		d.state = stHeader
	}
	return 6, true
}

func (d *Demuxer) resync(b []byte) (int, bool) {
	d.synced = false
	k := bytes.Index(b[1:], []byte{0, 0, 1, 0xBA})
	if k < 0 {
		n := max(0, len(b)-3)
		d.skipped += n
		if n == 0 {
			return 0, false
		}
		return n, true
	}
	d.skipped += k + 1
	return k + 1, true
}

func (d *Demuxer) flushResync() {
	if d.skipped > 0 {
		d.stats.Resyncs++
		d.stats.SkippedBytes += uint64(d.skipped)
		for _, s := range d.streams {
			if s != nil {
				s.reset()
			}
		}
		d.report(&ResyncError{Skipped: d.skipped})
		d.skipped = 0
	}
}

func (d *Demuxer) parsePSM(b []byte) {
	d.stats.PSMs++
	if len(b) < 16 {
		return
	}
	if crc32MPEG(b[:len(b)-4]) != binary.BigEndian.Uint32(b[len(b)-4:]) {
		d.stats.PSMBadCRC++ // many cameras get it wrong: accept
	}
	end := len(b) - 4
	p := 10 + int(binary.BigEndian.Uint16(b[8:]))
	if p+2 > end {
		return
	}
	mapEnd := min(end, p+2+int(binary.BigEndian.Uint16(b[p:])))
	p += 2
	var table [256]StreamType
	for p+4 <= mapEnd {
		typ, esID := StreamType(b[p]), b[p+1]
		table[esID] = typ
		p += 4 + int(binary.BigEndian.Uint16(b[p+2:]))
	}
	d.psm = table
	d.havePSM = true
}

// pesHeader parses a PES header (MPEG-2, or MPEG-1 as ffmpeg's "mpeg" muxer writes).
func (d *Demuxer) pesHeader(b []byte, id uint8, length int) (int, bool) {
	var n int
	var pts, dts int64
	var hasPTS, hasDTS bool
	if len(b) < 7 {
		return 0, false
	}
	if b[6]>>6 == 2 { // MPEG-2
		if len(b) < 9 {
			return 0, false
		}
		n = 9 + int(b[8])
		flags := b[7] >> 6
		if length != 0 && length < n-6 || flags == 1 {
			return d.resync(b)
		}
		if len(b) < n {
			return 0, false
		}
		if flags&2 != 0 && n >= 14 {
			pts, hasPTS = readTS(b[9:]), true
			if flags&1 != 0 && n >= 19 {
				dts, hasDTS = readTS(b[14:]), true
			}
		}
	} else { // MPEG-1
		n = 6
		for n < len(b) && b[n] == 0xFF && n < 6+16 {
			n++
		}
		if n+1 > len(b) {
			return 0, false
		}
		if b[n]>>6 == 1 {
			n += 2
		}
		if n+1 > len(b) {
			return 0, false
		}
		switch b[n] >> 4 {
		case 2:
			if len(b) < n+5 {
				return 0, false
			}
			pts, hasPTS = readTS(b[n:]), true
			n += 5
		case 3:
			if len(b) < n+10 {
				return 0, false
			}
			pts, dts, hasPTS, hasDTS = readTS(b[n:]), readTS(b[n+5:]), true, true
			n += 10
		default:
			if b[n] != 0x0F {
				return d.resync(b)
			}
			n++
		}
		if length == 0 || length < n-6 {
			return d.resync(b)
		}
	}
	if !hasDTS {
		dts = pts
	}
	d.stats.PES++
	video := id >= 0xE0
	if length == 0 && !video {
		return d.resync(b)
	}
	s := d.stream(id)
	d.cur = s
	if s != nil {
		d.beginPES(s, pts, dts, hasPTS)
	}
	if length == 0 {
		d.state = stUnbounded
	} else {
		d.state, d.remaining = stPayload, length-(n-6)
		if d.remaining == 0 {
			d.endPES()
			d.state = stHeader
		}
	}
	return n, true
}

func readTS(b []byte) int64 {
	return int64(b[0]>>1&7)<<30 | int64(b[1])<<22 | int64(b[2]>>1)<<15 | int64(b[3])<<7 | int64(b[4]>>1)
}

// stream returns the stream for id, or nil when its packets are to be dropped.
func (d *Demuxer) stream(id uint8) *stream {
	s := d.streams[id-0xC0]
	if s == nil {
		s = &stream{id: id}
		d.streams[id-0xC0] = s
	}
	if d.havePSM && d.psm[id] != 0 && d.psm[id] != s.typ {
		s.reset()
		s.typ, s.reported, s.disc = d.psm[id], false, false
		s.skipToAU = false
		s.havePrev = false
	}
	if s.typ != 0 && !s.typ.supported() {
		if !s.reported {
			s.reported = true
			d.report(&UnknownStreamTypeError{StreamID: id, Type: s.typ})
		}
		d.stats.DroppedUnits++
		return nil
	}
	return s
}

func (d *Demuxer) beginPES(s *stream, pts, dts int64, hasPTS bool) {
	if s.id < 0xE0 { // audio: one unit per PES
		s.buf = s.buf[:0]
		s.pts, s.dts, s.hasPTS = pts, dts, hasPTS
		return
	}
	if !hasPTS {
		return
	}
	if len(s.entries) == maxPTSEntries {
		copy(s.entries, s.entries[1:])
		s.entries = s.entries[:len(s.entries)-1]
	}
	s.entries = append(s.entries, ptsEntry{off: len(s.buf), pts: pts, dts: dts})
	if len(s.buf) == 0 && !s.skipToAU && s.typ != 0 {
		s.beginAU(0)
	}
}

func (d *Demuxer) feed(b []byte) {
	s := d.cur
	if s == nil || len(b) == 0 {
		return
	}
	s.buf = append(s.buf, b...)
	if s.id >= 0xE0 {
		d.splitVideo(s)
	}
	// What is left is one unit being assembled (with at most a start code
	// of the next), or undecided bytes while the codec is sniffed.
	if len(s.buf) > d.maxUnit() {
		d.report(&UnitTooLargeError{StreamID: s.id, Max: d.maxUnit()})
		d.stats.DroppedUnits++
		s.reset()
		d.cur = nil // drop the rest of this PES
	}
}

func (d *Demuxer) endPES() {
	s := d.cur
	d.cur = nil
	if s == nil || s.id >= 0xE0 || len(s.buf) == 0 {
		return
	}
	if s.typ == 0 {
		s.typ = sniffAudio(s.buf)
		d.report(&NoPSMError{StreamID: s.id, Inferred: s.typ})
		if !s.typ.supported() {
			s.reported = true
			d.report(&UnknownStreamTypeError{StreamID: s.id, Type: s.typ})
			d.stats.DroppedUnits++
			return
		}
	}
	s.timing(s.pts, s.dts, s.hasPTS)
	d.emit(s, s.buf, false)
	s.buf = s.buf[:0]
}

// timing sets lastPTS/lastDTS for the next unit, extrapolating when the
// unit had no timestamp.
func (s *stream) timing(pts, dts int64, has bool) {
	switch {
	case has:
		if s.havePrev && pts > s.lastPTS {
			s.lastDelta = pts - s.lastPTS
		}
		s.lastPTS, s.lastDTS = pts, dts
	case s.havePrev:
		s.lastPTS += s.lastDelta
		s.lastDTS += s.lastDelta
	}
	s.havePrev = true
}

func (d *Demuxer) emit(s *stream, payload []byte, key bool) {
	d.stats.Units++
	u := &d.unit
	*u = Unit{StreamID: s.id, Type: s.typ, PTS: s.lastPTS, DTS: s.lastDTS, Keyframe: key, Discontinuity: s.disc, Payload: payload}
	s.disc = false
	if d.OnUnit != nil {
		d.OnUnit(u)
	}
	u.Payload = nil
}

// splitVideo finds access-unit boundaries in the stream's buffer and emits
// every complete unit.
func (d *Demuxer) splitVideo(s *stream) {
	if s.typ == 0 {
		t := sniffVideo(s.buf[max(0, s.scan-4):])
		if t == 0 {
			s.scan = len(s.buf)
			return
		}
		s.typ = t
		s.skipToAU = true
		s.scan = 0
		if !s.reported {
			s.reported = true
			d.report(&NoPSMError{StreamID: s.id, Inferred: t})
		}
	}
	for {
		k := bytes.Index(s.buf[s.scan:], startCode)
		if k < 0 {
			s.scan = max(s.scan, len(s.buf)-2)
			if s.skipToAU && s.scan > 0 {
				s.shift(s.scan)
			}
			return
		}
		sc := s.scan + k
		start, vcl, key, need := isAUStart(s.typ, s.buf[sc+3:])
		if need {
			s.scan = sc
			return
		}
		b := sc
		if b > 0 && s.buf[b-1] == 0 {
			b--
		}
		switch {
		case s.skipToAU && start:
			s.shift(b)
			sc -= b
			s.skipToAU = false
			s.beginAU(sc)
		case s.skipToAU:
			s.shift(sc)
			sc = 0
		case start && s.hasVCL:
			d.emitVideo(s, b)
			sc -= b
		}
		if !s.skipToAU {
			if vcl && !s.hasVCL {
				s.vclOff = sc
			}
			s.hasVCL = s.hasVCL || vcl
			s.key = s.key || key
		}
		s.scan = sc + 3
	}
}

// emitVideo emits buf[:n] as a unit and starts the next one at n.
func (d *Demuxer) emitVideo(s *stream, n int) {
	if !s.hasPTS { // no PTS where the unit starts: take that of its first slice
		for j := range s.entries {
			if e := &s.entries[j]; e.off <= s.vclOff && !e.used {
				e.used = true
				s.pts, s.dts, s.hasPTS = e.pts, e.dts, true
				break
			}
		}
	}
	s.timing(s.pts, s.dts, s.hasPTS)
	d.emit(s, s.buf[:n], s.key)
	s.hasVCL, s.key = false, false
	look := 0
	if n+3 <= len(s.buf) && s.buf[n] == 0 && s.buf[n+1] == 0 && s.buf[n+2] == 0 {
		look = 1 // 4-byte start code: the unit's 00 00 01 is one byte on
	}
	s.shift(n)
	s.beginAU(look)
}

// shift drops buf[:n], moving PTS entries with it.
func (s *stream) shift(n int) {
	if n == 0 {
		return
	}
	m := copy(s.buf, s.buf[n:])
	s.buf = s.buf[:m]
	s.scan = max(0, s.scan-n)
	// Keep the last entry at or before n (it may time the unit starting there)
	// and every later one.
	keep := 0
	for j := range s.entries {
		if s.entries[j].off <= n {
			keep = j
		}
	}
	if len(s.entries) > 0 && s.entries[0].off <= n {
		s.entries = s.entries[:copy(s.entries, s.entries[keep:])]
	}
	for j := range s.entries {
		s.entries[j].off -= n
	}
}

// beginAU takes the timing of the unit starting at pos: the PTS of the PES
// packet in which it starts, if that PTS is not taken yet.
func (s *stream) beginAU(pos int) {
	s.hasPTS = false
	for j := len(s.entries) - 1; j >= 0; j-- {
		e := &s.entries[j]
		if e.off <= pos {
			if !e.used {
				e.used = true
				s.pts, s.dts, s.hasPTS = e.pts, e.dts, true
			}
			break
		}
	}
}

// buffered is the memory the demuxer holds, for tests.
func (d *Demuxer) buffered() int {
	n := len(d.hdr)
	for _, s := range d.streams {
		if s != nil {
			n += len(s.buf)
		}
	}
	return n
}
