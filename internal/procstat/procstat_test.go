package procstat

import (
	"testing"
	"time"
)

var statCases = []struct {
	name, stat string
	want       time.Duration
	ok         bool
}{
	{"plain", "1234 (vigil) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 12 0 100 1000 200", 3 * time.Second, true},
	{"name with spaces and parens", "7 (a) b) c) R 1 7 7 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0 1 1 1", 100 * time.Millisecond, true},
	{"no paren", "1234 vigil S 1", 0, false},
	{"short", "1 (x) S 1 2 3", 0, false},
	{"garbage numbers", "1 (x) S 1 1 1 0 -1 0 0 0 0 0 abc def 0", 0, false},
	{"empty", "", 0, false},
}

func TestParseStatCPU(t *testing.T) {
	for _, tc := range statCases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseStatCPU(tc.stat)
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("got %v, %v; want %v (ok %v)", got, err, tc.want, tc.ok)
			}
		})
	}
}

func TestSelf(t *testing.T) {
	if _, err := CPU("self"); err != nil {
		t.Fatal(err)
	}
	if rss, err := StatusKB("VmRSS"); err != nil || rss <= 0 {
		t.Fatalf("VmRSS %d, %v", rss, err)
	}
	if _, err := ParseStatusKB("VmRSS:\t  1 kB\n", "VmHWM"); err == nil {
		t.Fatal("missing key accepted")
	}
}

func FuzzParseStatCPU(f *testing.F) {
	for _, tc := range statCases {
		f.Add(tc.stat)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if d, err := ParseStatCPU(s); err == nil && d < 0 {
			t.Fatalf("negative CPU time %v", d)
		}
	})
}

func TestParseMachine(t *testing.T) {
	m, err := ParseMachine("cpu  100 5 50 1000 20 3 2 7 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	if want := (Machine{Busy: 1600 * time.Millisecond, Idle: 10200 * time.Millisecond, Steal: 70 * time.Millisecond}); m != want {
		t.Fatalf("%+v, want %+v", m, want)
	}
	for _, bad := range []string{"", "intr 1 2 3", "cpu 1 2 3", "cpu 1 2 3 x 5 6 7 8"} {
		if _, err := ParseMachine(bad); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}
