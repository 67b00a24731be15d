package fmp4read

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// ErrMalformed marks bytes that are not the boxes they claim to be.
var ErrMalformed = errors.New("malformed mp4")

// Box is one box header found in a buffer.
type Box struct {
	Type  string
	Start int // offset of the box header
	Body  int // offset of the payload
	End   int // offset just past the box
}

// Boxes lists the boxes laid end to end in b[from:to].
func Boxes(b []byte, from, to int) ([]Box, error) {
	var out []Box
	for p := from; p < to; {
		if to-p < 8 {
			return nil, fmt.Errorf("%w: truncated box header at %d", ErrMalformed, p)
		}
		size := uint64(binary.BigEndian.Uint32(b[p:]))
		typ := string(b[p+4 : p+8])
		hdr := 8
		switch size {
		case 0: // to the end of the enclosing space
			size = uint64(to - p)
		case 1:
			if to-p < 16 {
				return nil, fmt.Errorf("%w: truncated large box header at %d", ErrMalformed, p)
			}
			size = binary.BigEndian.Uint64(b[p+8:])
			hdr = 16
		}
		if size < uint64(hdr) || size > uint64(to-p) {
			return nil, fmt.Errorf("%w: box %q at %d has size %d, %d bytes left", ErrMalformed, typ, p, size, to-p)
		}
		out = append(out, Box{Type: typ, Start: p, Body: p + hdr, End: p + int(size)})
		p += int(size)
	}
	return out, nil
}

func child(b []byte, parent Box, typ string) (Box, bool, error) {
	children, err := Boxes(b, parent.Body, parent.End)
	if err != nil {
		return Box{}, false, err
	}
	for _, c := range children {
		if c.Type == typ {
			return c, true, nil
		}
	}
	return Box{}, false, nil
}
