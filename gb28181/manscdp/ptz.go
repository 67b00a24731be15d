package manscdp

import (
	"encoding/hex"
	"fmt"
	"math"
)

// PTZ instruction bits of byte 4 (index 3) of a PTZCmd, GB/T 28181-2016 A.3.2.
const (
	ptzRight   = 0x01
	ptzLeft    = 0x02
	ptzDown    = 0x04
	ptzUp      = 0x08
	ptzZoomIn  = 0x10 // tele
	ptzZoomOut = 0x20 // wide
)

// PTZCmd is the 8-byte front-end device control command of GB/T 28181-2016
// A.3 as carried in <PTZCmd> (16 hex digits):
//
//	index 0: 0xA5 (first byte)
//	index 1: 0x0F (version 0 in the high nibble; the low nibble is the
//	         check (0xA + 0x5 + version) mod 16)
//	index 2: address, low 8 bits (Vigil sends 0x01)
//	index 3: instruction: right 0x01, left 0x02, down 0x04, up 0x08,
//	         zoom in 0x10, zoom out 0x20 (PTZ instructions only)
//	index 4: pan speed 0–255
//	index 5: tilt speed 0–255
//	index 6: zoom speed 0–15 in the high nibble, address high 4 bits in the low
//	index 7: checksum, sum of indexes 0–6 mod 256
//
// The standard numbers the bytes 1–8, so "byte 7" there is index 6 here.
type PTZCmd [8]byte

// NewPTZCmd builds a pan/tilt/zoom command from speeds in −1…1: pan > 0 turns
// right, tilt > 0 turns up, zoom > 0 zooms in (tele). 0 on all three is stop.
// Magnitudes map linearly onto 0–255 (pan, tilt) and 0–15 (zoom).
func NewPTZCmd(pan, tilt, zoom float64) (PTZCmd, error) {
	for _, v := range []struct {
		name string
		v    float64
	}{{"pan", pan}, {"tilt", tilt}, {"zoom", zoom}} {
		if math.IsNaN(v.v) || v.v < -1 || v.v > 1 {
			return PTZCmd{}, fmt.Errorf("manscdp: ptz %s speed %v is outside −1…1", v.name, v.v)
		}
	}
	var c PTZCmd
	c[0], c[1], c[2] = 0xA5, 0x0F, 0x01
	switch {
	case pan > 0:
		c[3] |= ptzRight
	case pan < 0:
		c[3] |= ptzLeft
	}
	switch {
	case tilt > 0:
		c[3] |= ptzUp
	case tilt < 0:
		c[3] |= ptzDown
	}
	switch {
	case zoom > 0:
		c[3] |= ptzZoomIn
	case zoom < 0:
		c[3] |= ptzZoomOut
	}
	c[4] = speed(pan, 255)
	c[5] = speed(tilt, 255)
	c[6] = speed(zoom, 15) << 4
	c[7] = c.sum()
	return c, nil
}

// speed maps |v| in 0…1 onto 0…top; a non-zero v is at least 1, so a slow
// move is not sent as a move at speed 0.
func speed(v float64, top float64) byte {
	s := math.Round(math.Abs(v) * top)
	if s == 0 && v != 0 {
		s = 1
	}
	return byte(s)
}

func (c PTZCmd) sum() byte {
	var s byte
	for _, b := range c[:7] {
		s += b
	}
	return s
}

// Speeds returns the pan, tilt and zoom speeds in −1…1 with the signs of
// NewPTZCmd. It reports an error when the command is not a PTZ instruction
// (other instruction groups, such as presets or focus, set bits 6–7 of index 3)
// or when opposite directions are both set.
func (c PTZCmd) Speeds() (pan, tilt, zoom float64, err error) {
	ins := c[3]
	if ins&0xC0 != 0 {
		return 0, 0, 0, fmt.Errorf("manscdp: PTZCmd instruction 0x%02X is not a pan/tilt/zoom instruction", ins)
	}
	if ins&(ptzLeft|ptzRight) == ptzLeft|ptzRight || ins&(ptzUp|ptzDown) == ptzUp|ptzDown ||
		ins&(ptzZoomIn|ptzZoomOut) == ptzZoomIn|ptzZoomOut {
		return 0, 0, 0, fmt.Errorf("manscdp: PTZCmd instruction 0x%02X sets opposite directions", ins)
	}
	sign := func(pos, neg byte) float64 {
		switch {
		case ins&pos != 0:
			return 1
		case ins&neg != 0:
			return -1
		}
		return 0
	}
	pan = sign(ptzRight, ptzLeft) * float64(c[4]) / 255
	tilt = sign(ptzUp, ptzDown) * float64(c[5]) / 255
	zoom = sign(ptzZoomIn, ptzZoomOut) * float64(c[6]>>4) / 15
	return pan, tilt, zoom, nil
}

// String returns the 16 upper-case hex digits sent in <PTZCmd>.
func (c PTZCmd) String() string {
	const digits = "0123456789ABCDEF"
	out := make([]byte, 16)
	for i, b := range c {
		out[2*i], out[2*i+1] = digits[b>>4], digits[b&0x0F]
	}
	return string(out)
}

// ParsePTZCmd parses 16 hex digits (either case) and checks the first byte,
// the version check nibble and the checksum.
func ParsePTZCmd(s string) (PTZCmd, error) {
	var c PTZCmd
	if len(s) != 16 {
		return c, fmt.Errorf("manscdp: PTZCmd %q has %d characters, want 16 hex digits", s, len(s))
	}
	if _, err := hex.Decode(c[:], []byte(s)); err != nil {
		return c, fmt.Errorf("manscdp: PTZCmd %q is not hex: %w", s, err)
	}
	if c[0] != 0xA5 {
		return c, fmt.Errorf("manscdp: PTZCmd %q starts with 0x%02X, want 0xA5", s, c[0])
	}
	if want := (0xA + 0x5 + c[1]>>4) & 0x0F; c[1]&0x0F != want {
		return c, fmt.Errorf("manscdp: PTZCmd %q has check nibble 0x%X for version %d, want 0x%X", s, c[1]&0x0F, c[1]>>4, want)
	}
	if sum := c.sum(); c[7] != sum {
		return c, fmt.Errorf("manscdp: PTZCmd %q has checksum 0x%02X, want 0x%02X (sum of the first 7 bytes mod 256)", s, c[7], sum)
	}
	return c, nil
}

// MarshalText implements encoding.TextMarshaler.
func (c PTZCmd) MarshalText() ([]byte, error) { return []byte(c.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParsePTZCmd.
func (c *PTZCmd) UnmarshalText(b []byte) error {
	p, err := ParsePTZCmd(string(trimSpace(b)))
	if err != nil {
		return err
	}
	*c = p
	return nil
}
