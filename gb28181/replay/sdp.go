package replay

import (
	"strconv"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/recorder/review"
)

// ntpOffset is the seconds from 1900 (NTP) to 1970 (Unix).
const ntpOffset = 2208988800

// ParseTimeRange reads the value of the t= line of an INVITE for s=Playback
// or s=Download ("t=1764144000 1764147600"): the start and end of the
// recorded range in seconds since 1970 UTC, as GB/T 28181 writes them. A
// value past 2065 is taken as NTP time (seconds since 1900), which some
// platforms send. It fails with apierr.ErrInvalid when the value is not
// two such numbers, either is 0 ("t=0 0" is a live view's), the end is not
// after the start, or the range is longer than review.MaxPlayback.
func ParseTimeRange(v string) (start, end time.Time, err error) {
	f := strings.Fields(v)
	if len(f) != 2 {
		return time.Time{}, time.Time{}, apierr.New(apierr.ErrInvalid, "the SDP t= line %q is not START END in seconds", clip(v))
	}
	var t [2]time.Time
	for i, s := range f {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 || n > 1<<40 {
			return time.Time{}, time.Time{}, apierr.New(apierr.ErrInvalid, "the SDP t= line %q is not START END in seconds", clip(v))
		}
		if n > 3_000_000_000 {
			n -= ntpOffset
		}
		t[i] = time.Unix(int64(n), 0).UTC()
	}
	if !t[1].After(t[0]) {
		return time.Time{}, time.Time{}, apierr.New(apierr.ErrInvalid, "the SDP t= line %q ends before it starts", clip(v))
	}
	if t[1].Sub(t[0]) > review.MaxPlayback {
		return time.Time{}, time.Time{}, apierr.New(apierr.ErrInvalid, "the SDP t= line %q covers more than a day", clip(v))
	}
	return t[0], t[1], nil
}
