package fmp4read

import (
	"encoding/binary"
	"fmt"
	"math"
)

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

// Traf is one track fragment of a moof, with the positions of the fields
// playback rewrites.
type Traf struct {
	TrackID  uint32
	BaseTime uint64 // tfdt base media decode time
	Duration uint64 // sum of the sample durations
	Samples  int
	FirstKey bool // the first sample is a sync sample
	// First is where the first sample's data lies and how it is timed.
	First FirstSample

	box        Box
	tfdt       Box
	tfdtV1     bool
	baseOffAt  int   // offset of tfhd's base_data_offset, or -1
	dataOffAts []int // offsets of the truns' data_offset fields
	relToMoof  bool  // data offsets count from the moof start
}

// Moof is a parsed moof box at the start of a fragment buffer.
type Moof struct {
	Size  int // bytes of the moof box
	seqAt int // offset of the mfhd sequence number
	Trafs []Traf
}

// parseMoof parses the moof box that begins frag (a whole moof+mdat).
func ParseMoof(frag []byte, in *Init) (*Moof, error) {
	if len(frag) < 8 {
		return nil, fmt.Errorf("%w: fragment of %d bytes", ErrMalformed, len(frag))
	}
	size := int(binary.BigEndian.Uint32(frag))
	if string(frag[4:8]) != "moof" || size < 8 || size > len(frag) {
		return nil, fmt.Errorf("%w: fragment does not begin with a moof box", ErrMalformed)
	}
	moof := Box{Type: "moof", Start: 0, Body: 8, End: size}
	m := &Moof{Size: size, seqAt: -1}
	children, err := Boxes(frag, moof.Body, moof.End)
	if err != nil {
		return nil, err
	}
	for _, c := range children {
		switch c.Type {
		case "mfhd":
			if c.End-c.Body < 8 {
				return nil, fmt.Errorf("%w: short mfhd", ErrMalformed)
			}
			m.seqAt = c.Body + 4
		case "traf":
			if len(m.Trafs) >= maxFragmentTrackRecord {
				return nil, fmt.Errorf("%w: too many track fragments", ErrMalformed)
			}
			t, err := parseTraf(frag, c, in, len(m.Trafs) == 0)
			if err != nil {
				return nil, err
			}
			m.Trafs = append(m.Trafs, t)
		}
	}
	if m.seqAt < 0 {
		return nil, fmt.Errorf("%w: moof without mfhd", ErrMalformed)
	}
	if len(m.Trafs) == 0 {
		return nil, fmt.Errorf("%w: moof without traf", ErrMalformed)
	}
	return m, nil
}

func parseTraf(b []byte, traf Box, in *Init, first bool) (Traf, error) {
	t := Traf{box: traf, baseOffAt: -1}
	children, err := Boxes(b, traf.Body, traf.End)
	if err != nil {
		return t, err
	}
	var tfhdFlags uint32
	var defDur, defFlags, defSize uint32
	haveTfhd, haveTfdt := false, false
	for _, c := range children {
		switch c.Type {
		case "tfhd":
			if c.End-c.Body < 8 {
				return t, fmt.Errorf("%w: short tfhd", ErrMalformed)
			}
			haveTfhd = true
			tfhdFlags = binary.BigEndian.Uint32(b[c.Body:]) & 0xffffff
			t.TrackID = binary.BigEndian.Uint32(b[c.Body+4:])
			tr := in.Track(t.TrackID)
			if tr == nil {
				return t, fmt.Errorf("%w: fragment of track %d, which the init section lacks", ErrMalformed, t.TrackID)
			}
			defDur, defFlags, defSize = tr.DefaultDuration, tr.DefaultFlags, tr.DefaultSize
			p := c.Body + 8
			need := func(n int) error {
				if p+n > c.End {
					return fmt.Errorf("%w: short tfhd", ErrMalformed)
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
				if err := need(4); err != nil {
					return t, err
				}
				defSize = binary.BigEndian.Uint32(b[p:])
				p += 4
			}
			if tfhdFlags&tfhdDefaultFlags != 0 {
				if err := need(4); err != nil {
					return t, err
				}
				defFlags = binary.BigEndian.Uint32(b[p:])
			}
		case "tfdt":
			if c.End-c.Body < 8 {
				return t, fmt.Errorf("%w: short tfdt", ErrMalformed)
			}
			haveTfdt = true
			t.tfdt = c
			if b[c.Body] == 1 {
				if c.End-c.Body < 12 {
					return t, fmt.Errorf("%w: short tfdt", ErrMalformed)
				}
				t.tfdtV1 = true
				t.BaseTime = binary.BigEndian.Uint64(b[c.Body+4:])
			} else {
				t.BaseTime = uint64(binary.BigEndian.Uint32(b[c.Body+4:]))
			}
		case "trun":
			if !haveTfhd {
				return t, fmt.Errorf("%w: trun before tfhd", ErrMalformed)
			}
			if c.End-c.Body < 8 {
				return t, fmt.Errorf("%w: short trun", ErrMalformed)
			}
			flags := binary.BigEndian.Uint32(b[c.Body:]) & 0xffffff
			count := binary.BigEndian.Uint32(b[c.Body+4:])
			if count > maxSamplesPerFragment || t.Samples+int(count) > maxSamplesPerFragment {
				return t, fmt.Errorf("%w: %d samples in one trun", ErrMalformed, count)
			}
			p := c.Body + 8
			dataOff, haveDataOff := int32(0), false
			if flags&trunDataOffset != 0 {
				if p+4 > c.End {
					return t, fmt.Errorf("%w: short trun", ErrMalformed)
				}
				t.dataOffAts = append(t.dataOffAts, p)
				dataOff, haveDataOff = int32(binary.BigEndian.Uint32(b[p:])), true
				p += 4
			}
			firstFlags, haveFirst := uint32(0), false
			if flags&trunFirstSampleFlags != 0 {
				if p+4 > c.End {
					return t, fmt.Errorf("%w: short trun", ErrMalformed)
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
			if uint64(entry)*uint64(count) > uint64(c.End-p) {
				return t, fmt.Errorf("%w: trun of %d samples overruns its box", ErrMalformed, count)
			}
			for i := 0; i < int(count); i++ {
				q := p
				dur := defDur
				if flags&trunSampleDuration != 0 {
					dur = binary.BigEndian.Uint32(b[q:])
					q += 4
				}
				size := defSize
				if flags&trunSampleSize != 0 {
					size = binary.BigEndian.Uint32(b[q:])
					q += 4
				}
				sflags := defFlags
				if flags&trunSampleFlags != 0 {
					sflags = binary.BigEndian.Uint32(b[q:])
					q += 4
				}
				if i == 0 && haveFirst {
					sflags = firstFlags
				}
				if t.Samples == 0 && i == 0 {
					t.FirstKey = sflags&sampleIsNonSync == 0
					t.First = FirstSample{DataOffset: int64(dataOff), Size: size, Duration: dur, known: haveDataOff}
					if flags&trunSampleCTO != 0 {
						t.First.CTO = int32(binary.BigEndian.Uint32(b[q:]))
					}
				}
				t.Duration += uint64(dur)
				p += entry
			}
			t.Samples += int(count)
		}
	}
	if !haveTfhd {
		return t, fmt.Errorf("%w: traf without tfhd", ErrMalformed)
	}
	if !haveTfdt {
		return t, fmt.Errorf("%w: traf of track %d without tfdt", ErrMalformed, t.TrackID)
	}
	// Data offsets count from the moof when the tfhd says so, and for the first
	// track fragment when it gives no base at all.
	t.relToMoof = t.baseOffAt < 0 && (tfhdFlags&tfhdDefaultBaseIsMoof != 0 || first)
	if t.baseOffAt >= 0 {
		t.First.base = int64(binary.BigEndian.Uint64(b[t.baseOffAt:]))
	}
	return t, nil
}

// FirstSample locates the first sample of a track fragment.
type FirstSample struct {
	// DataOffset is the trun's data_offset: where the sample begins, from
	// the base that SampleAt works out.
	DataOffset int64
	Size       uint32
	Duration   uint32
	CTO        int32 // composition time offset (the sample's PTS minus its DTS)

	known bool  // the trun gives a data offset
	base  int64 // tfhd's base_data_offset (a position in the file), when it has one
}

// SampleAt returns where the first sample of the track fragment t lies in
// its file, for a moof found at moofPos, and its size. It answers only the
// layouts that locate the sample without the preceding track fragments'
// data: a data offset counted from the moof (default-base-is-moof, or the
// first track fragment without a base), or from an explicit base data
// offset; anything else is ErrMalformed.
func (t *Traf) SampleAt(moofPos int64) (pos, size int64, err error) {
	if t.Samples == 0 || t.First.Size == 0 {
		return 0, 0, fmt.Errorf("%w: track fragment of track %d has no sample data", ErrMalformed, t.TrackID)
	}
	switch {
	case t.baseOffAt >= 0:
		pos = t.First.base + t.First.DataOffset
	case t.relToMoof && t.First.known:
		pos = moofPos + t.First.DataOffset
	default:
		return 0, 0, fmt.Errorf("%w: the first sample of track %d cannot be located on its own", ErrMalformed, t.TrackID)
	}
	if pos < moofPos {
		return 0, 0, fmt.Errorf("%w: sample of track %d before its fragment", ErrMalformed, t.TrackID)
	}
	return pos, int64(t.First.Size), nil
}

// rewriteMoof returns frag with the moof rewritten: sequence number seq, each
// track fragment's base media decode time set to times[i], and data offsets
// moved for a fragment that is written at output position outPos (it was at
// inPos in its file). A version-0 tfdt whose new value needs 64 bits is
// widened, which grows the moof. frag itself may be modified.
func RewriteMoof(frag []byte, m *Moof, seq uint32, times []uint64, inPos, outPos int64) ([]byte, error) {
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
			binary.BigEndian.PutUint64(frag[t.tfdt.Body+4:], times[i])
		} else {
			binary.BigEndian.PutUint32(frag[t.tfdt.Body+4:], uint32(times[i]))
		}
		if t.baseOffAt >= 0 {
			old := binary.BigEndian.Uint64(frag[t.baseOffAt:])
			nv := int64(old) - inPos + outPos + int64(growth)
			if nv < 0 {
				return nil, fmt.Errorf("%w: base data offset %d before its fragment", ErrMalformed, old)
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
func widenTfdts(frag []byte, m *Moof, widen []int) ([]byte, error) {
	if binary.BigEndian.Uint32(frag) == 1 {
		return nil, fmt.Errorf("%w: cannot widen a tfdt in a large-size moof", ErrMalformed)
	}
	var ins []int // insertion points, ascending: where each 32-bit time starts
	for _, i := range widen {
		t := m.Trafs[i]
		if t.box.Body-t.box.Start != 8 || t.tfdt.Body-t.tfdt.Start != 8 {
			return nil, fmt.Errorf("%w: cannot widen a tfdt in a large-size box", ErrMalformed)
		}
		ins = append(ins, t.tfdt.Body+4)
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
		binary.BigEndian.PutUint32(out[mv(t.box.Start):], uint32(t.box.End-t.box.Start+4))
		binary.BigEndian.PutUint32(out[mv(t.tfdt.Start):], uint32(t.tfdt.End-t.tfdt.Start+4))
		out[mv(t.tfdt.Body)] = 1
		t.tfdtV1 = true
	}
	for j := range m.Trafs {
		t := &m.Trafs[j]
		t.box = Box{Type: t.box.Type, Start: mv(t.box.Start), Body: mv(t.box.Body), End: mv(t.box.End)}
		t.tfdt = Box{Type: t.tfdt.Type, Start: mv(t.tfdt.Start), Body: mv(t.tfdt.Body), End: mv(t.tfdt.End)}
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
