package media

import (
	"fmt"
	"slices"
	"testing"
)

// seqCase: packets pushed in order, what comes out: "n" delivered
// packet n (with "r" when it was held), "L3" a loss of 3, "D" a dropped one;
// "F" in the input is a flush (the gap timer).
var seqCases = []struct {
	name   string
	window int
	in     []string
	out    []string
	prime  bool // start priming, as a new receiver does; else started
}{
	{"in order", 8, []string{"1", "2", "3"}, []string{"1", "2", "3"}, false},
	{"swap", 8, []string{"1", "3", "2", "4"}, []string{"1", "2", "3r", "4"}, false},
	{"duplicate", 8, []string{"1", "2", "2", "1", "3"}, []string{"1", "2", "D", "D", "3"}, false},
	{"duplicate held", 8, []string{"1", "3", "3", "2"}, []string{"1", "D", "2", "3r"}, false},
	{"loss then flush", 8, []string{"1", "3", "4", "F", "5"}, []string{"1", "L1", "3r", "4r", "5"}, false},
	{"window full", 4, []string{"1", "3", "4", "5"}, []string{"1", "L1", "3r", "4r", "5r"}, false},
	{"gap wider than window", 4, []string{"1", "2", "10", "11"}, []string{"1", "2", "L7", "10", "11"}, false},
	{"wide gap flushes held", 4, []string{"1", "3", "20"}, []string{"1", "L1", "3r", "L16", "20"}, false},
	{"wraps", 8, []string{"65534", "65535", "1", "0", "2"}, []string{"65534", "65535", "0", "1r", "2"}, false},
	{"late after skip", 4, []string{"1", "3", "4", "5", "2"}, []string{"1", "L1", "3r", "4r", "5r", "D"}, false},
	{"restart behind", 8, []string{"100", "101", "60000", "60001"}, []string{"100", "101", "L1", "60000", "60001"}, false},
	{"restart far", 8, []string{"40000", "40001", "7", "8"}, []string{"40000", "40001", "L1", "7", "8"}, false},
	{"tcp: no window", 1, []string{"1", "3", "2", "4"}, []string{"1", "L1", "3", "D", "4"}, false},
	{"priming: first two swapped", 8, []string{"2", "1", "3", "F", "4"}, []string{"1", "2", "3", "4"}, true},
	{"priming ends when the window fills", 4, []string{"5", "6", "7", "8"}, []string{"5", "6", "7", "8"}, true},
	{"priming: too far behind", 4, []string{"10", "5", "F"}, []string{"D", "10"}, true},
	{"priming: behind, but the window would not hold", 4, []string{"10", "13", "9", "F"}, []string{"D", "10", "L2", "13"}, true},
	{"priming with a gap", 8, []string{"1", "3", "F", "4"}, []string{"1", "L1", "3", "4"}, true},
	{"priming: duplicate first", 8, []string{"1", "1", "2", "F"}, []string{"D", "1", "2"}, true},
	{"priming: ahead of the window, in it once the held are handed on", 4, []string{"1", "2", "5", "4", "3"}, []string{"1", "2", "3", "4r", "5r"}, true},
	{"priming: wide jump", 4, []string{"1", "2", "100"}, []string{"1", "2", "L97", "100"}, true},
	{"two gaps", 8, []string{"1", "4", "3", "F", "5", "7", "F"}, []string{"1", "L1", "3r", "4r", "5", "L1", "7r"}, false},
}

func runSequencer(window int, in []string, prime bool) []string {
	q := newSequencer(window)
	q.priming = prime && window > 1
	var out []string
	q.deliver = func(b *[]byte, reordered bool) {
		s := string(*b)
		if reordered {
			s += "r"
		}
		out = append(out, s)
	}
	q.lost = func(n int) { out = append(out, fmt.Sprintf("L%d", n)) }
	q.drop = func(*[]byte) { out = append(out, "D") }
	for _, s := range in {
		if s == "F" {
			q.flush()
			continue
		}
		var n uint16
		fmt.Sscan(s, &n)
		b := []byte(s)
		q.push(n, &b)
	}
	return out
}

func TestSequencer(t *testing.T) {
	for _, c := range seqCases {
		t.Run(c.name, func(t *testing.T) {
			if got := runSequencer(c.window, c.in, c.prime); !slices.Equal(got, c.out) {
				t.Errorf("got %v, want %v", got, c.out)
			}
		})
	}
}

// FuzzSequencer: whatever the order, every packet is delivered or dropped
// exactly once, delivered ones in increasing order between losses, and the
// held count stays below the window.
func FuzzSequencer(f *testing.F) {
	for _, c := range seqCases { // the table seeds the fuzzer
		var b []byte
		for _, s := range c.in {
			var n uint16
			if _, err := fmt.Sscan(s, &n); err == nil {
				b = append(b, byte(n>>8), byte(n))
			}
		}
		f.Add(b, uint8(c.window))
	}
	f.Fuzz(func(t *testing.T, seqs []byte, window uint8) {
		q := newSequencer(int(window))
		seen := 0
		var last int = -1
		q.deliver = func(b *[]byte, _ bool) {
			seen++
			s := int((*b)[0])<<8 | int((*b)[1])
			if last >= 0 && uint16(s-last) == 0 {
				t.Fatalf("seq %d delivered twice in a row", s)
			}
			last = s
		}
		q.lost = func(n int) {
			if n <= 0 {
				t.Fatalf("loss of %d", n)
			}
		}
		q.drop = func(*[]byte) { seen++ }
		n := len(seqs) / 2
		for i := range n {
			b := []byte{seqs[2*i], seqs[2*i+1]}
			q.push(uint16(b[0])<<8|uint16(b[1]), &b)
			if q.held >= len(q.slots) && len(q.slots) > 1 {
				t.Fatalf("%d held in a window of %d", q.held, len(q.slots))
			}
		}
		q.flush()
		if seen != n || q.held != 0 {
			t.Fatalf("%d packets pushed, %d delivered or dropped, %d held", n, seen, q.held)
		}
	})
}
