package review

import (
	"fmt"
	"math"
	"math/bits"
)

// mulDiv returns a*b/c rounded to nearest, for a signed a, failing on overflow.
func mulDiv(a int64, b, c uint64) (int64, error) {
	neg := a < 0
	ua := uint64(a)
	if neg {
		ua = uint64(-a)
	}
	hi, lo := bits.Mul64(ua, b)
	lo, carry := bits.Add64(lo, c/2, 0)
	hi += carry
	if hi >= c {
		return 0, fmt.Errorf("time %d×%d/%d overflows", a, b, c)
	}
	q, _ := bits.Div64(hi, lo, c)
	if q > math.MaxInt64 {
		return 0, fmt.Errorf("time %d×%d/%d overflows", a, b, c)
	}
	if neg {
		return -int64(q), nil
	}
	return int64(q), nil
}
