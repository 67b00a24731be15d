package recorder

import (
	"encoding/binary"
	"fmt"
	"math"
	"sync"
)

// fragSample is one sample of the fragment being gathered. A video sample
// keeps the access unit's NAL units (the hub's unit, shared, not copied):
// they are written length-prefixed (AVCC) straight into the fragment's
// buffer. Audio keeps its payload.
type fragSample struct {
	dur     uint32
	nonSync bool
	size    uint32   // bytes in the mdat
	au      [][]byte // video: NAL units, each written after its 4-byte length
	payload []byte   // audio
}

// trun flags and the sample flag, as mediacommon's fmp4.Part writes them
// (ISO/IEC 14496-12 8.8.8).
const (
	trunDataOffsetPresent     = 0x01
	trunSampleDurationPresent = 0x100
	trunSampleSizePresent     = 0x200
	trunSampleFlagsPresent    = 0x400
	sampleIsNonSync           = 1 << 16
)

// bufPool lends the buffers that fragments are marshalled into, for the
// time between marshalling and the write to the spool file. Every camera
// writer takes from the one pool of its Recorder, so that the buffers in
// use are as many as the fragments being written at once (about one per
// core), not one per camera; a buffer too small for a fragment is replaced
// by a right-sized one, rounded up to 64 KiB.
type bufPool struct{ p sync.Pool }

func (bp *bufPool) get(n int) *[]byte {
	if bp != nil {
		if b, _ := bp.p.Get().(*[]byte); b != nil && cap(*b) >= n {
			*b = (*b)[:n]
			return b
		}
	}
	b := make([]byte, n, (n+0xffff)&^0xffff)
	return &b
}

func (bp *bufPool) put(b *[]byte) {
	if bp != nil && b != nil {
		bp.p.Put(b)
	}
}

// marshalFragment writes one moof+mdat of the tracks' samples into a buffer
// of exactly its size from fr.bufs, without allocating: the moof as
// mediacommon's fmp4.Part.Marshal writes it (mfhd; per track a traf with
// tfhd (default-base-is-moof), tfdt version 1 and trun version 1 with data
// offset, sample durations, sizes and, when a sample is not a sync sample,
// sample flags) — byte for byte, TestMarshalFragmentAsMediacommon checks
// it — then the samples, each copied once from the units. mediacommon's
// writer, over go-mp4's reflection, made some 50 allocations per unit and
// three copies of the data (the AVCC sample, the mdat, a doubling buffer).
func (fr *fragmenter) marshalFragment(seq uint32, tracks []*fragTrack) ([]byte, error) {
	moofLen := 8 + 16
	data := 0
	for _, t := range tracks {
		entry := 8
		for i := range t.samples {
			if t.samples[i].nonSync {
				entry = 12
			}
			data += int(t.samples[i].size)
		}
		moofLen += 8 + 16 + 20 + 20 + entry*len(t.samples)
	}
	if uint64(moofLen)+8+uint64(data) > math.MaxInt32 {
		return nil, fmt.Errorf("fragment of %d bytes is too large", data)
	}
	fr.out = fr.bufs.get(moofLen + 8 + data)
	b := (*fr.out)[:0]
	b = boxHeader(b, moofLen, "moof")
	b = boxHeader(b, 16, "mfhd")
	b = binary.BigEndian.AppendUint32(b, 0) // version, flags
	b = binary.BigEndian.AppendUint32(b, seq)
	offset := moofLen + 8 // of the first sample, from the moof
	for _, t := range tracks {
		flags := uint32(trunDataOffsetPresent | trunSampleDurationPresent | trunSampleSizePresent)
		entry := 8
		for i := range t.samples {
			if t.samples[i].nonSync {
				flags |= trunSampleFlagsPresent
				entry = 12
			}
		}
		trunLen := 20 + entry*len(t.samples)
		b = boxHeader(b, 8+16+20+trunLen, "traf")
		b = boxHeader(b, 16, "tfhd")
		b = binary.BigEndian.AppendUint32(b, 0x020000) // version 0, default-base-is-moof
		b = binary.BigEndian.AppendUint32(b, uint32(t.id))
		b = boxHeader(b, 20, "tfdt")
		b = binary.BigEndian.AppendUint32(b, 1<<24) // version 1
		b = binary.BigEndian.AppendUint64(b, t.base)
		b = boxHeader(b, trunLen, "trun")
		b = binary.BigEndian.AppendUint32(b, 1<<24|flags) // version 1
		b = binary.BigEndian.AppendUint32(b, uint32(len(t.samples)))
		b = binary.BigEndian.AppendUint32(b, uint32(offset))
		for i := range t.samples {
			s := &t.samples[i]
			b = binary.BigEndian.AppendUint32(b, s.dur)
			b = binary.BigEndian.AppendUint32(b, s.size)
			if flags&trunSampleFlagsPresent != 0 {
				var sf uint32
				if s.nonSync {
					sf = sampleIsNonSync
				}
				b = binary.BigEndian.AppendUint32(b, sf)
			}
			offset += int(s.size)
		}
	}
	b = boxHeader(b, 8+data, "mdat")
	for _, t := range tracks {
		for i := range t.samples {
			s := &t.samples[i]
			if s.au == nil {
				b = append(b, s.payload...)
				continue
			}
			for _, n := range s.au {
				b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
				b = append(b, n...)
			}
		}
	}
	if len(b) != len(*fr.out) {
		return nil, fmt.Errorf("fragment of %d bytes, %d expected", len(b), len(*fr.out))
	}
	return b, nil
}

func boxHeader(b []byte, size int, typ string) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(size))
	return append(b, typ...)
}

// release gives the buffer of the last fragment back to the pool, once it
// is written, and leaves the gate that flush entered.
func (fr *fragmenter) release() {
	if fr.out != nil {
		fr.bufs.put(fr.out)
		fr.out = nil
		fr.gate.leave()
	}
}
