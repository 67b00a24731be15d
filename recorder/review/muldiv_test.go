package review

import (
	"math"
	"testing"
)

func TestMulDiv(t *testing.T) {
	cases := []struct {
		a    int64
		b, c uint64
		want int64
		ok   bool
	}{
		{90000, 1e9, 90000, 1e9, true},
		{-90000, 1e9, 90000, -1e9, true},
		{1, 1, 2, 1, true}, // rounds half up
		{math.MaxInt64, 1e9, 1, 0, false},
		{1 << 62, 4, 1, 0, false},
	}
	for _, tc := range cases {
		got, err := mulDiv(tc.a, tc.b, tc.c)
		if (err == nil) != tc.ok || got != tc.want {
			t.Errorf("mulDiv(%d, %d, %d) = %d, %v", tc.a, tc.b, tc.c, got, err)
		}
	}
}
