package segscan

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// mediacommon's fmp4.Parts.Unmarshal takes a sample's flags from the trun
// entry or from the tfhd's default_sample_flags, and nothing else: it ignores
// the trun's first_sample_flags and the trex defaults of the init section, and
// reads a tfhd without default_sample_flags as "every sample is a sync
// sample". ffmpeg and most other muxers mark a fragment's keyframe with
// first_sample_flags over a non-sync default, so the flag of a fragment's first
// video sample is read here from the boxes themselves (ISO/IEC 14496-12
// 8.8.7, 8.8.8, 8.8.3), as recorder/review_mp4.go does for playback.

// Flags of tfhd and trun, and the sample_is_non_sync_sample bit of sample flags.
const (
	tfhdBaseDataOffset  = 0x000001
	tfhdSampleDescIndex = 0x000002
	tfhdDefaultDuration = 0x000008
	tfhdDefaultSize     = 0x000010
	tfhdDefaultFlags    = 0x000020
	trunDataOffset      = 0x000001
	trunFirstFlags      = 0x000004
	trunSampleDuration  = 0x000100
	trunSampleSize      = 0x000200
	trunSampleFlags     = 0x000400
	sampleIsNonSync     = 0x00010000
)

var errBadBox = errors.New("malformed box")

// box is one box found in a buffer: its type and the offsets of its payload.
type box struct {
	typ       string
	body, end int
}

// children lists the boxes laid end to end in b[from:to]. A size of 0 (to the
// end) is accepted for the last box.
func children(b []byte, from, to int) ([]box, error) {
	var out []box
	for p := from; p < to; {
		if to-p < 8 {
			return nil, fmt.Errorf("%w: truncated header at %d", errBadBox, p)
		}
		size := uint64(binary.BigEndian.Uint32(b[p:]))
		hdr := 8
		switch size {
		case 0:
			size = uint64(to - p)
		case 1:
			if to-p < 16 {
				return nil, fmt.Errorf("%w: truncated header at %d", errBadBox, p)
			}
			size, hdr = binary.BigEndian.Uint64(b[p+8:]), 16
		}
		if size < uint64(hdr) || size > uint64(to-p) {
			return nil, fmt.Errorf("%w: %q at %d has size %d, %d bytes left", errBadBox, b[p+4:p+8], p, size, to-p)
		}
		out = append(out, box{typ: string(b[p+4 : p+8]), body: p + hdr, end: p + int(size)})
		p += int(size)
	}
	return out, nil
}

// trexFlags returns the default_sample_flags of each track's trex box in an
// init section (ftyp+moov). A track without trex is absent from the map.
func trexFlags(init []byte) (map[uint32]uint32, error) {
	top, err := children(init, 0, len(init))
	if err != nil {
		return nil, err
	}
	out := map[uint32]uint32{}
	for _, moov := range top {
		if moov.typ != "moov" {
			continue
		}
		inMoov, err := children(init, moov.body, moov.end)
		if err != nil {
			return nil, err
		}
		for _, mvex := range inMoov {
			if mvex.typ != "mvex" {
				continue
			}
			inMvex, err := children(init, mvex.body, mvex.end)
			if err != nil {
				return nil, err
			}
			for _, trex := range inMvex {
				if trex.typ != "trex" {
					continue
				}
				// version+flags(4) track_ID(4) description index(4) duration(4) size(4) flags(4)
				if trex.end-trex.body < 24 {
					return nil, fmt.Errorf("%w: short trex", errBadBox)
				}
				out[binary.BigEndian.Uint32(init[trex.body+4:])] = binary.BigEndian.Uint32(init[trex.body+20:])
			}
		}
	}
	return out, nil
}

// firstSampleSync reports whether the first sample of track's first non-empty
// trun in the moof that begins frag is a sync sample. Its flags are, in this
// order: the trun's first_sample_flags, the trun entry's sample_flags, the
// tfhd's default_sample_flags, and defFlags (the trex default). found is false
// when the moof has no sample of the track.
func firstSampleSync(frag []byte, track, defFlags uint32) (sync, found bool, err error) {
	top, err := children(frag, 0, len(frag))
	if err != nil {
		return false, false, err
	}
	if len(top) == 0 || top[0].typ != "moof" {
		return false, false, fmt.Errorf("%w: fragment does not begin with a moof", errBadBox)
	}
	moof := top[0]
	trafs, err := children(frag, moof.body, moof.end)
	if err != nil {
		return false, false, err
	}
	for _, traf := range trafs {
		if traf.typ != "traf" {
			continue
		}
		inTraf, err := children(frag, traf.body, traf.end)
		if err != nil {
			return false, false, err
		}
		flags, haveTfhd := defFlags, false
		for _, c := range inTraf {
			switch c.typ {
			case "tfhd":
				// version+flags(4) track_ID(4), then the optional fields in order
				if c.end-c.body < 8 {
					return false, false, fmt.Errorf("%w: short tfhd", errBadBox)
				}
				tf := binary.BigEndian.Uint32(frag[c.body:]) & 0xffffff
				if binary.BigEndian.Uint32(frag[c.body+4:]) != track {
					break
				}
				haveTfhd = true
				if tf&tfhdDefaultFlags != 0 {
					p := c.body + 8
					for _, f := range []struct {
						bit uint32
						n   int
					}{{tfhdBaseDataOffset, 8}, {tfhdSampleDescIndex, 4}, {tfhdDefaultDuration, 4}, {tfhdDefaultSize, 4}} {
						if tf&f.bit != 0 {
							p += f.n
						}
					}
					if p+4 > c.end {
						return false, false, fmt.Errorf("%w: short tfhd", errBadBox)
					}
					flags = binary.BigEndian.Uint32(frag[p:])
				}
			case "trun":
				if !haveTfhd {
					continue // another track's, or a trun before its tfhd
				}
				if c.end-c.body < 8 {
					return false, false, fmt.Errorf("%w: short trun", errBadBox)
				}
				tf := binary.BigEndian.Uint32(frag[c.body:]) & 0xffffff
				if binary.BigEndian.Uint32(frag[c.body+4:]) == 0 {
					continue
				}
				p := c.body + 8
				if tf&trunDataOffset != 0 {
					p += 4
				}
				sampleFlags := flags
				if tf&trunSampleFlags != 0 {
					q := p
					if tf&trunFirstFlags != 0 {
						q += 4
					}
					for _, bit := range []uint32{trunSampleDuration, trunSampleSize} {
						if tf&bit != 0 {
							q += 4
						}
					}
					if q+4 > c.end {
						return false, false, fmt.Errorf("%w: short trun", errBadBox)
					}
					sampleFlags = binary.BigEndian.Uint32(frag[q:])
				}
				if tf&trunFirstFlags != 0 {
					if p+4 > c.end {
						return false, false, fmt.Errorf("%w: short trun", errBadBox)
					}
					sampleFlags = binary.BigEndian.Uint32(frag[p:])
				}
				return sampleFlags&sampleIsNonSync == 0, true, nil
			}
		}
	}
	return false, false, nil
}
