package fmp4read

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Track is what playback needs to know of one track of an init section.
type Track struct {
	ID        uint32
	Timescale uint32
	Handler   string // "vide", "soun", ...
	// Sample entry (stsd) bytes: codec and parameters; a change here is a
	// change of resolution or codec.
	SampleEntry []byte
	// Defaults from the track extends box (trex).
	DefaultDuration uint32
	DefaultFlags    uint32
	DefaultSize     uint32
}

// Init is the parsed track table of an init section.
type Init struct {
	Tracks []Track
}

func (in *Init) Track(id uint32) *Track {
	for i := range in.Tracks {
		if in.Tracks[i].ID == id {
			return &in.Tracks[i]
		}
	}
	return nil
}

// sameAs tells whether fragments described by other can follow fragments of in
// under in's init section.
func (in *Init) SameAs(other *Init) bool {
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
func ParseInit(b []byte) (*Init, error) {
	top, err := Boxes(b, 0, len(b))
	if err != nil {
		return nil, err
	}
	var moov Box
	found := false
	for _, bx := range top {
		if bx.Type == "moov" {
			moov, found = bx, true
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: init section has no moov", ErrMalformed)
	}
	children, err := Boxes(b, moov.Body, moov.End)
	if err != nil {
		return nil, err
	}
	in := &Init{}
	type trexDefaults struct{ dur, size, flags uint32 }
	trex := map[uint32]trexDefaults{}
	for _, c := range children {
		switch c.Type {
		case "trak":
			t, err := parseTrak(b, c)
			if err != nil {
				return nil, err
			}
			if in.Track(t.ID) != nil {
				return nil, fmt.Errorf("%w: track %d appears twice", ErrMalformed, t.ID)
			}
			in.Tracks = append(in.Tracks, t)
		case "mvex":
			ex, err := Boxes(b, c.Body, c.End)
			if err != nil {
				return nil, err
			}
			for _, e := range ex {
				if e.Type != "trex" {
					continue
				}
				// fullbox(4) track_ID(4) desc_index(4) duration(4) size(4) flags(4)
				if e.End-e.Body < 24 {
					return nil, fmt.Errorf("%w: short trex", ErrMalformed)
				}
				p := e.Body + 4
				trex[binary.BigEndian.Uint32(b[p:])] = trexDefaults{
					dur:   binary.BigEndian.Uint32(b[p+8:]),
					size:  binary.BigEndian.Uint32(b[p+12:]),
					flags: binary.BigEndian.Uint32(b[p+16:]),
				}
			}
		}
	}
	if len(in.Tracks) == 0 {
		return nil, fmt.Errorf("%w: init section has no track", ErrMalformed)
	}
	for i := range in.Tracks {
		d := trex[in.Tracks[i].ID]
		in.Tracks[i].DefaultDuration, in.Tracks[i].DefaultFlags, in.Tracks[i].DefaultSize = d.dur, d.flags, d.size
	}
	return in, nil
}

func parseTrak(b []byte, trak Box) (Track, error) {
	var t Track
	tkhd, ok, err := child(b, trak, "tkhd")
	if err != nil {
		return t, err
	}
	if !ok {
		return t, fmt.Errorf("%w: trak without tkhd", ErrMalformed)
	}
	idAt := tkhd.Body + 4 + 8 // fullbox, creation and modification times (v0)
	if tkhd.End-tkhd.Body >= 1 && b[tkhd.Body] == 1 {
		idAt = tkhd.Body + 4 + 16
	}
	if idAt+4 > tkhd.End {
		return t, fmt.Errorf("%w: short tkhd", ErrMalformed)
	}
	t.ID = binary.BigEndian.Uint32(b[idAt:])

	mdia, ok, err := child(b, trak, "mdia")
	if err != nil {
		return t, err
	}
	if !ok {
		return t, fmt.Errorf("%w: trak without mdia", ErrMalformed)
	}
	mdhd, ok, err := child(b, mdia, "mdhd")
	if err != nil {
		return t, err
	}
	if !ok {
		return t, fmt.Errorf("%w: mdia without mdhd", ErrMalformed)
	}
	tsAt := mdhd.Body + 4 + 8
	if mdhd.End-mdhd.Body >= 1 && b[mdhd.Body] == 1 {
		tsAt = mdhd.Body + 4 + 16
	}
	if tsAt+4 > mdhd.End {
		return t, fmt.Errorf("%w: short mdhd", ErrMalformed)
	}
	t.Timescale = binary.BigEndian.Uint32(b[tsAt:])
	if t.Timescale == 0 {
		return t, fmt.Errorf("%w: track %d has timescale 0", ErrMalformed, t.ID)
	}
	if hdlr, ok, err := child(b, mdia, "hdlr"); err != nil {
		return t, err
	} else if ok && hdlr.End-hdlr.Body >= 12 {
		t.Handler = string(b[hdlr.Body+8 : hdlr.Body+12])
	}
	if minf, ok, err := child(b, mdia, "minf"); err != nil {
		return t, err
	} else if ok {
		if stbl, ok, err := child(b, minf, "stbl"); err != nil {
			return t, err
		} else if ok {
			if stsd, ok, err := child(b, stbl, "stsd"); err != nil {
				return t, err
			} else if ok {
				t.SampleEntry = b[stsd.Start:stsd.End]
			}
		}
	}
	return t, nil
}
