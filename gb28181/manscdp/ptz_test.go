package manscdp

import (
	"math"
	"strings"
	"testing"
)

func TestPTZCmd(t *testing.T) {
	cases := []struct {
		name             string
		pan, tilt, zoom  float64
		hex              string
		wantP, wantT, wZ float64 // speeds parsed back
	}{
		// Stop: A5+0F+01 = 0xB5.
		{"stop", 0, 0, 0, "A50F0100000000B5", 0, 0, 0},
		// Right at 0x80, up at 0x40, zoom in at 5:
		// instruction 0x01|0x08|0x10 = 0x19, byte 6 = 5<<4 = 0x50,
		// checksum A5+0F+01+19+80+40+50 = 0x1DE → 0xDE. WVP's
		// frontEndCmdString(0x19, 0x80, 0x40, 5) computes the same
		// bytes (cmdCode, pan, tilt, zoom<<4, sum mod 0x100).
		{"right up zoom in", 128.0 / 255, 64.0 / 255, 5.0 / 15, "A50F01198040" + "50DE", 128.0 / 255, 64.0 / 255, 5.0 / 15},
		// Left full speed: 0x02, FF; A5+0F+01+02+FF = 0x1B6 → B6.
		{"left full", -1, 0, 0, "A50F0102FF0000B6", -1, 0, 0},
		// Down at 0x20 and zoom out at 15: 0x04|0x20 = 0x24, F0;
		// A5+0F+01+24+00+20+F0 = 0x1E9 → E9.
		// The slowest right move is speed 1, not 0: 0x01, 01;
		// A5+0F+01+01+01 = 0xB7.
		{"right slowest", 0.0001, 0, 0, "A50F0101010000B7", 1.0 / 255, 0, 0},
		{"down zoom out", 0, -32.0 / 255, -1, "A50F01240020F0E9", 0, -32.0 / 255, -1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd, err := NewPTZCmd(c.pan, c.tilt, c.zoom)
			if err != nil {
				t.Fatal(err)
			}
			if got := cmd.String(); got != c.hex {
				t.Fatalf("NewPTZCmd(%v, %v, %v) = %s, want %s", c.pan, c.tilt, c.zoom, got, c.hex)
			}
			parsed, err := ParsePTZCmd(strings.ToLower(c.hex))
			if err != nil {
				t.Fatal(err)
			}
			if parsed != cmd {
				t.Fatalf("ParsePTZCmd(%s) = %X, want %X", c.hex, parsed, cmd)
			}
			p, tl, z, err := parsed.Speeds()
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range [][2]float64{{p, c.wantP}, {tl, c.wantT}, {z, c.wZ}} {
				if math.Abs(v[0]-v[1]) > 1e-9 {
					t.Fatalf("Speeds() = %v, %v, %v; want %v, %v, %v", p, tl, z, c.wantP, c.wantT, c.wZ)
				}
			}
		})
	}
}

func TestPTZCmdErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"A50F0100000000B6", "checksum 0xB6, want 0xB5"},
		{"A50F010000000000B5", "has 18 characters"},
		{"B50F0100000000C5", "starts with 0xB5"},
		{"A5000100000000A6", "check nibble"},
		{"A50F01000000ZZB5", "not hex"},
	} {
		if _, err := ParsePTZCmd(c.in); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("ParsePTZCmd(%s) error = %v, want it to contain %q", c.in, err, c.want)
		}
	}
	if _, err := NewPTZCmd(1.5, 0, 0); err == nil {
		t.Error("NewPTZCmd(1.5, 0, 0) succeeded, want a range error")
	}
	if _, err := NewPTZCmd(math.NaN(), 0, 0); err == nil {
		t.Error("NewPTZCmd(NaN, 0, 0) succeeded, want a range error")
	}
	// Left and right together, and a preset instruction (0x81 set preset).
	for _, s := range []string{"A50F0103000000B8", "A50F0181000000" + "36"} {
		c, err := ParsePTZCmd(s)
		if err != nil {
			t.Fatalf("ParsePTZCmd(%s): %v", s, err)
		}
		if _, _, _, err := c.Speeds(); err == nil {
			t.Errorf("Speeds() of %s succeeded, want an error", s)
		}
	}
}
