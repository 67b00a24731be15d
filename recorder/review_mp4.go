package recorder

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"math/bits"
)

// This file holds the small ISO BMFF walker that playback needs: it reads
// the track table of an init section (ftyp+moov) and rewrites the moof of a
// fragment (sequence number, base media decode times, data offsets) so that
// fragments taken from several segment files form one continuous stream.

var errBadMP4 = errors.New("malformed mp4")

// mp4Box is one box header found in a buffer.
type mp4Box struct {
	typ   string
	start int // offset of the box header
	body  int // offset of the payload
	end   int // offset just past the box
}

// mp4Boxes lists the boxes laid end to end in b[from:to].
func mp4Boxes(b []byte, from, to int) ([]mp4Box, error) {
	var out []mp4Box
	for p := from; p < to; {
		if to-p < 8 {
			return nil, fmt.Errorf("%w: truncated box header at %d", errBadMP4, p)
		}
		size := uint64(binary.BigEndian.Uint32(b[p:]))
		typ := string(b[p+4 : p+8])
		hdr := 8
		switch size {
		case 0: // to the end of the enclosing space
			size = uint64(to - p)
		case 1:
			if to-p < 16 {
				return nil, fmt.Errorf("%w: truncated large box header at %d", errBadMP4, p)
			}
			size = binary.BigEndian.Uint64(b[p+8:])
			hdr = 16
		}
		if size < uint64(hdr) || size > uint64(to-p) {
			return nil, fmt.Errorf("%w: box %q at %d has size %d, %d bytes left", errBadMP4, typ, p, size, to-p)
		}
		out = append(out, mp4Box{typ: typ, start: p, body: p + hdr, end: p + int(size)})
		p += int(size)
	}
	return out, nil
}

func mp4Child(b []byte, parent mp4Box, typ string) (mp4Box, bool, error) {
	children, err := mp4Boxes(b, parent.body, parent.end)
	if err != nil {
		return mp4Box{}, false, err
	}
	for _, c := range children {
		if c.typ == typ {
			return c, true, nil
		}
	}
	return mp4Box{}, false, nil
}

// mp4Track is what playback needs to know of one track of an init section.
type mp4Track struct {
	ID        uint32
	Timescale uint32
	Handler   string // "vide", "soun", ...
	// Sample entry (stsd) bytes: codec and parameters; a change here is a
	// change of resolution or codec.
	SampleEntry []byte
	// Defaults from the track extends box (trex).
	DefaultDuration uint32
	DefaultFlags    uint32
}

// mp4Init is the parsed track table of an init section.
type mp4Init struct {
	Tracks []mp4Track
}

func (in *mp4Init) track(id uint32) *mp4Track {
	for i := range in.Tracks {
		if in.Tracks[i].ID == id {
			return &in.Tracks[i]
		}
	}
	return nil
}

// sameAs tells whether fragments described by other can follow fragments of in
// under in's init section.
func (in *mp4Init) sameAs(other *mp4Init) bool {
	if len(in.Tracks) != len(other.Tracks) {
		return false
	}
	for i, a := range in.Tracks {
		b := other.Tracks[i]
		if a.ID != b.ID || a.Timescale != b.Timescale || a.Handler != b.Handler ||
			a.DefaultDuration != b.DefaultDuration || a.DefaultFlags != b.DefaultFlags ||
			!bytes.Equal(a.SampleEntry, b.SampleEntry) {
			return false
		}
	}
	return true
}

// parseInit reads the tracks of an init section (ftyp+moov, possibly followed by
// nothing else).
func parseInit(b []byte) (*mp4Init, error) {
	top, err := mp4Boxes(b, 0, len(b))
	if err != nil {
		return nil, err
	}
	var moov mp4Box
	found := false
	for _, bx := range top {
		if bx.typ == "moov" {
			moov, found = bx, true
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: init section has no moov", errBadMP4)
	}
	children, err := mp4Boxes(b, moov.body, moov.end)
	if err != nil {
		return nil, err
	}
	in := &mp4Init{}
	type trexDefaults struct{ dur, flags uint32 }
	trex := map[uint32]trexDefaults{}
	for _, c := range children {
		switch c.typ {
		case "trak":
			t, err := parseTrak(b, c)
			if err != nil {
				return nil, err
			}
			if in.track(t.ID) != nil {
				return nil, fmt.Errorf("%w: track %d appears twice", errBadMP4, t.ID)
			}
			in.Tracks = append(in.Tracks, t)
		case "mvex":
			ex, err := mp4Boxes(b, c.body, c.end)
			if err != nil {
				return nil, err
			}
			for _, e := range ex {
				if e.typ != "trex" {
					continue
				}
				// fullbox(4) track_ID(4) desc_index(4) duration(4) size(4) flags(4)
				if e.end-e.body < 24 {
					return nil, fmt.Errorf("%w: short trex", errBadMP4)
				}
				p := e.body + 4
				trex[binary.BigEndian.Uint32(b[p:])] = trexDefaults{
					dur:   binary.BigEndian.Uint32(b[p+8:]),
					flags: binary.BigEndian.Uint32(b[p+16:]),
				}
			}
		}
	}
	if len(in.Tracks) == 0 {
		return nil, fmt.Errorf("%w: init section has no track", errBadMP4)
	}
	for i := range in.Tracks {
		d := trex[in.Tracks[i].ID]
		in.Tracks[i].DefaultDuration, in.Tracks[i].DefaultFlags = d.dur, d.flags
	}
	return in, nil
}

func parseTrak(b []byte, trak mp4Box) (mp4Track, error) {
	var t mp4Track
	tkhd, ok, err := mp4Child(b, trak, "tkhd")
	if err != nil {
		return t, err
	}
	if !ok {
		return t, fmt.Errorf("%w: trak without tkhd", errBadMP4)
	}
	idAt := tkhd.body + 4 + 8 // fullbox, creation and modification times (v0)
	if tkhd.end-tkhd.body >= 1 && b[tkhd.body] == 1 {
		idAt = tkhd.body + 4 + 16
	}
	if idAt+4 > tkhd.end {
		return t, fmt.Errorf("%w: short tkhd", errBadMP4)
	}
	t.ID = binary.BigEndian.Uint32(b[idAt:])

	mdia, ok, err := mp4Child(b, trak, "mdia")
	if err != nil {
		return t, err
	}
	if !ok {
		return t, fmt.Errorf("%w: trak without mdia", errBadMP4)
	}
	mdhd, ok, err := mp4Child(b, mdia, "mdhd")
	if err != nil {
		return t, err
	}
	if !ok {
		return t, fmt.Errorf("%w: mdia without mdhd", errBadMP4)
	}
	tsAt := mdhd.body + 4 + 8
	if mdhd.end-mdhd.body >= 1 && b[mdhd.body] == 1 {
		tsAt = mdhd.body + 4 + 16
	}
	if tsAt+4 > mdhd.end {
		return t, fmt.Errorf("%w: short mdhd", errBadMP4)
	}
	t.Timescale = binary.BigEndian.Uint32(b[tsAt:])
	if t.Timescale == 0 {
		return t, fmt.Errorf("%w: track %d has timescale 0", errBadMP4, t.ID)
	}
	if hdlr, ok, err := mp4Child(b, mdia, "hdlr"); err != nil {
		return t, err
	} else if ok && hdlr.end-hdlr.body >= 12 {
		t.Handler = string(b[hdlr.body+8 : hdlr.body+12])
	}
	if minf, ok, err := mp4Child(b, mdia, "minf"); err != nil {
		return t, err
	} else if ok {
		if stbl, ok, err := mp4Child(b, minf, "stbl"); err != nil {
			return t, err
		} else if ok {
			if stsd, ok, err := mp4Child(b, stbl, "stsd"); err != nil {
				return t, err
			} else if ok {
				t.SampleEntry = b[stsd.start:stsd.end]
			}
		}
	}
	return t, nil
}

// Flags of tfhd and trun (ISO/IEC 14496-12).
const (
	tfhdBaseDataOffset     = 0x000001
	tfhdSampleDescIndex    = 0x000002
	tfhdDefaultDuration    = 0x000008
	tfhdDefaultSize        = 0x000010
	tfhdDefaultFlags       = 0x000020
	tfhdDefaultBaseIsMoof  = 0x020000
	trunDataOffset         = 0x000001
	trunFirstSampleFlags   = 0x000004
	trunSampleDuration     = 0x000100
	trunSampleSize         = 0x000200
	trunSampleFlags        = 0x000400
	trunSampleCTO          = 0x000800
	sampleIsNonSync        = 0x10000
	maxSamplesPerFragment  = 1 << 20
	maxFragmentTrackRecord = 64
)

// mp4Traf is one track fragment of a moof, with the positions of the fields
// playback rewrites.
type mp4Traf struct {
	TrackID  uint32
	BaseTime uint64 // tfdt base media decode time
	Duration uint64 // sum of the sample durations
	Samples  int
	FirstKey bool // the first sample is a sync sample

	box        mp4Box
	tfdt       mp4Box
	tfdtV1     bool
	baseOffAt  int   // offset of tfhd's base_data_offset, or -1
	dataOffAts []int // offsets of the truns' data_offset fields
	relToMoof  bool  // data offsets count from the moof start
}

// mp4Moof is a parsed moof box at the start of a fragment buffer.
type mp4Moof struct {
	Size  int // bytes of the moof box
	seqAt int // offset of the mfhd sequence number
	Trafs []mp4Traf
}

// parseMoof parses the moof box that begins frag (a whole moof+mdat).
func parseMoof(frag []byte, in *mp4Init) (*mp4Moof, error) {
	if len(frag) < 8 {
		return nil, fmt.Errorf("%w: fragment of %d bytes", errBadMP4, len(frag))
	}
	size := int(binary.BigEndian.Uint32(frag))
	if string(frag[4:8]) != "moof" || size < 8 || size > len(frag) {
		return nil, fmt.Errorf("%w: fragment does not begin with a moof box", errBadMP4)
	}
	moof := mp4Box{typ: "moof", start: 0, body: 8, end: size}
	m := &mp4Moof{Size: size, seqAt: -1}
	children, err := mp4Boxes(frag, moof.body, moof.end)
	if err != nil {
		return nil, err
	}
	for _, c := range children {
		switch c.typ {
		case "mfhd":
			if c.end-c.body < 8 {
				return nil, fmt.Errorf("%w: short mfhd", errBadMP4)
			}
			m.seqAt = c.body + 4
		case "traf":
			if len(m.Trafs) >= maxFragmentTrackRecord {
				return nil, fmt.Errorf("%w: too many track fragments", errBadMP4)
			}
			t, err := parseTraf(frag, c, in, len(m.Trafs) == 0)
			if err != nil {
				return nil, err
			}
			m.Trafs = append(m.Trafs, t)
		}
	}
	if m.seqAt < 0 {
		return nil, fmt.Errorf("%w: moof without mfhd", errBadMP4)
	}
	if len(m.Trafs) == 0 {
		return nil, fmt.Errorf("%w: moof without traf", errBadMP4)
	}
	return m, nil
}

func parseTraf(b []byte, traf mp4Box, in *mp4Init, first bool) (mp4Traf, error) {
	t := mp4Traf{box: traf, baseOffAt: -1}
	children, err := mp4Boxes(b, traf.body, traf.end)
	if err != nil {
		return t, err
	}
	var tfhdFlags uint32
	var defDur, defFlags uint32
	haveTfhd, haveTfdt := false, false
	for _, c := range children {
		switch c.typ {
		case "tfhd":
			if c.end-c.body < 8 {
				return t, fmt.Errorf("%w: short tfhd", errBadMP4)
			}
			haveTfhd = true
			tfhdFlags = binary.BigEndian.Uint32(b[c.body:]) & 0xffffff
			t.TrackID = binary.BigEndian.Uint32(b[c.body+4:])
			tr := in.track(t.TrackID)
			if tr == nil {
				return t, fmt.Errorf("%w: fragment of track %d, which the init section lacks", errBadMP4, t.TrackID)
			}
			defDur, defFlags = tr.DefaultDuration, tr.DefaultFlags
			p := c.body + 8
			need := func(n int) error {
				if p+n > c.end {
					return fmt.Errorf("%w: short tfhd", errBadMP4)
				}
				return nil
			}
			if tfhdFlags&tfhdBaseDataOffset != 0 {
				if err := need(8); err != nil {
					return t, err
				}
				t.baseOffAt = p
				p += 8
			}
			if tfhdFlags&tfhdSampleDescIndex != 0 {
				p += 4
			}
			if tfhdFlags&tfhdDefaultDuration != 0 {
				if err := need(4); err != nil {
					return t, err
				}
				defDur = binary.BigEndian.Uint32(b[p:])
				p += 4
			}
			if tfhdFlags&tfhdDefaultSize != 0 {
				p += 4
			}
			if tfhdFlags&tfhdDefaultFlags != 0 {
				if err := need(4); err != nil {
					return t, err
				}
				defFlags = binary.BigEndian.Uint32(b[p:])
			}
		case "tfdt":
			if c.end-c.body < 8 {
				return t, fmt.Errorf("%w: short tfdt", errBadMP4)
			}
			haveTfdt = true
			t.tfdt = c
			if b[c.body] == 1 {
				if c.end-c.body < 12 {
					return t, fmt.Errorf("%w: short tfdt", errBadMP4)
				}
				t.tfdtV1 = true
				t.BaseTime = binary.BigEndian.Uint64(b[c.body+4:])
			} else {
				t.BaseTime = uint64(binary.BigEndian.Uint32(b[c.body+4:]))
			}
		case "trun":
			if !haveTfhd {
				return t, fmt.Errorf("%w: trun before tfhd", errBadMP4)
			}
			if c.end-c.body < 8 {
				return t, fmt.Errorf("%w: short trun", errBadMP4)
			}
			flags := binary.BigEndian.Uint32(b[c.body:]) & 0xffffff
			count := binary.BigEndian.Uint32(b[c.body+4:])
			if count > maxSamplesPerFragment || t.Samples+int(count) > maxSamplesPerFragment {
				return t, fmt.Errorf("%w: %d samples in one trun", errBadMP4, count)
			}
			p := c.body + 8
			if flags&trunDataOffset != 0 {
				if p+4 > c.end {
					return t, fmt.Errorf("%w: short trun", errBadMP4)
				}
				t.dataOffAts = append(t.dataOffAts, p)
				p += 4
			}
			firstFlags, haveFirst := uint32(0), false
			if flags&trunFirstSampleFlags != 0 {
				if p+4 > c.end {
					return t, fmt.Errorf("%w: short trun", errBadMP4)
				}
				firstFlags, haveFirst = binary.BigEndian.Uint32(b[p:]), true
				p += 4
			}
			entry := 0
			for _, f := range []uint32{trunSampleDuration, trunSampleSize, trunSampleFlags, trunSampleCTO} {
				if flags&f != 0 {
					entry += 4
				}
			}
			if uint64(entry)*uint64(count) > uint64(c.end-p) {
				return t, fmt.Errorf("%w: trun of %d samples overruns its box", errBadMP4, count)
			}
			for i := 0; i < int(count); i++ {
				q := p
				dur := defDur
				if flags&trunSampleDuration != 0 {
					dur = binary.BigEndian.Uint32(b[q:])
					q += 4
				}
				if flags&trunSampleSize != 0 {
					q += 4
				}
				sflags := defFlags
				if flags&trunSampleFlags != 0 {
					sflags = binary.BigEndian.Uint32(b[q:])
				}
				if i == 0 && haveFirst {
					sflags = firstFlags
				}
				if t.Samples == 0 && i == 0 {
					t.FirstKey = sflags&sampleIsNonSync == 0
				}
				t.Duration += uint64(dur)
				p += entry
			}
			t.Samples += int(count)
		}
	}
	if !haveTfhd {
		return t, fmt.Errorf("%w: traf without tfhd", errBadMP4)
	}
	if !haveTfdt {
		return t, fmt.Errorf("%w: traf of track %d without tfdt", errBadMP4, t.TrackID)
	}
	// Data offsets count from the moof when the tfhd says so, and for the first
	// track fragment when it gives no base at all.
	t.relToMoof = t.baseOffAt < 0 && (tfhdFlags&tfhdDefaultBaseIsMoof != 0 || first)
	return t, nil
}

// rewriteMoof returns frag with the moof rewritten: sequence number seq, each
// track fragment's base media decode time set to times[i], and data offsets
// moved for a fragment that is written at output position outPos (it was at
// inPos in its file). A version-0 tfdt whose new value needs 64 bits is
// widened, which grows the moof. frag itself may be modified.
func rewriteMoof(frag []byte, m *mp4Moof, seq uint32, times []uint64, inPos, outPos int64) ([]byte, error) {
	if len(times) != len(m.Trafs) {
		return nil, fmt.Errorf("rewrite moof: %d times for %d track fragments", len(times), len(m.Trafs))
	}
	var widen []int // trafs whose tfdt must become version 1
	for i, t := range m.Trafs {
		if !t.tfdtV1 && times[i] > math.MaxUint32 {
			widen = append(widen, i)
		}
	}
	if len(widen) > 0 {
		var err error
		if frag, err = widenTfdts(frag, m, widen); err != nil {
			return nil, err
		}
	}
	binary.BigEndian.PutUint32(frag[m.seqAt:], seq)
	growth := len(widen) * 4
	for i, t := range m.Trafs {
		if t.tfdtV1 {
			binary.BigEndian.PutUint64(frag[t.tfdt.body+4:], times[i])
		} else {
			binary.BigEndian.PutUint32(frag[t.tfdt.body+4:], uint32(times[i]))
		}
		if t.baseOffAt >= 0 {
			old := binary.BigEndian.Uint64(frag[t.baseOffAt:])
			nv := int64(old) - inPos + outPos + int64(growth)
			if nv < 0 {
				return nil, fmt.Errorf("%w: base data offset %d before its fragment", errBadMP4, old)
			}
			binary.BigEndian.PutUint64(frag[t.baseOffAt:], uint64(nv))
		}
		if growth > 0 && t.relToMoof {
			for _, at := range t.dataOffAts {
				v := int32(binary.BigEndian.Uint32(frag[at:]))
				binary.BigEndian.PutUint32(frag[at:], uint32(v+int32(growth)))
			}
		}
	}
	return frag, nil
}

// widenTfdts turns the version-0 tfdt boxes of the listed trafs into version 1,
// updating box sizes and every recorded field position in m.
func widenTfdts(frag []byte, m *mp4Moof, widen []int) ([]byte, error) {
	if binary.BigEndian.Uint32(frag) == 1 {
		return nil, fmt.Errorf("%w: cannot widen a tfdt in a large-size moof", errBadMP4)
	}
	var ins []int // insertion points, ascending: where each 32-bit time starts
	for _, i := range widen {
		t := m.Trafs[i]
		if t.box.body-t.box.start != 8 || t.tfdt.body-t.tfdt.start != 8 {
			return nil, fmt.Errorf("%w: cannot widen a tfdt in a large-size box", errBadMP4)
		}
		ins = append(ins, t.tfdt.body+4)
	}
	out := make([]byte, 0, len(frag)+4*len(ins))
	last := 0
	for _, p := range ins {
		out = append(out, frag[last:p]...)
		out = append(out, 0, 0, 0, 0)
		last = p
	}
	out = append(out, frag[last:]...)
	mv := func(pos int) int { // positions after an insertion point move
		n := pos
		for _, p := range ins {
			if p < pos {
				n += 4
			}
		}
		return n
	}
	binary.BigEndian.PutUint32(out, uint32(m.Size+4*len(ins)))
	m.seqAt = mv(m.seqAt)
	for _, i := range widen {
		t := &m.Trafs[i]
		binary.BigEndian.PutUint32(out[mv(t.box.start):], uint32(t.box.end-t.box.start+4))
		binary.BigEndian.PutUint32(out[mv(t.tfdt.start):], uint32(t.tfdt.end-t.tfdt.start+4))
		out[mv(t.tfdt.body)] = 1
		t.tfdtV1 = true
	}
	for j := range m.Trafs {
		t := &m.Trafs[j]
		t.box = mp4Box{typ: t.box.typ, start: mv(t.box.start), body: mv(t.box.body), end: mv(t.box.end)}
		t.tfdt = mp4Box{typ: t.tfdt.typ, start: mv(t.tfdt.start), body: mv(t.tfdt.body), end: mv(t.tfdt.end)}
		if t.baseOffAt >= 0 {
			t.baseOffAt = mv(t.baseOffAt)
		}
		for k := range t.dataOffAts {
			t.dataOffAts[k] = mv(t.dataOffAts[k])
		}
	}
	m.Size += 4 * len(ins)
	return out, nil
}

// mulDiv returns a*b/c rounded to nearest, for a signed a, failing on overflow.
func mulDiv(a int64, b, c uint64) (int64, error) {
	neg := a < 0
	ua := uint64(a)
	if neg {
		ua = uint64(-a)
	}
	hi, lo := bits.Mul64(ua, b)
	lo, carry := bits.Add64(lo, c/2, 0)
	hi += carry
	if hi >= c {
		return 0, fmt.Errorf("time %d×%d/%d overflows", a, b, c)
	}
	q, _ := bits.Div64(hi, lo, c)
	if q > math.MaxInt64 {
		return 0, fmt.Errorf("time %d×%d/%d overflows", a, b, c)
	}
	if neg {
		return -int64(q), nil
	}
	return int64(q), nil
}
