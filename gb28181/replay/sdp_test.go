package replay

import (
	"errors"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
)

func TestParseTimeRange(t *testing.T) {
	unix := func(s int64) time.Time { return time.Unix(s, 0).UTC() }
	for _, tc := range []struct {
		in         string
		start, end time.Time
	}{
		{"1764144000 1764147600", unix(1764144000), unix(1764147600)},
		{" 1764144000  1764147600 ", unix(1764144000), unix(1764147600)},
		{"3973132800 3973136400", unix(3973132800 - ntpOffset), unix(3973136400 - ntpOffset)}, // NTP
	} {
		s, e, err := ParseTimeRange(tc.in)
		if err != nil || !s.Equal(tc.start) || !e.Equal(tc.end) {
			t.Errorf("ParseTimeRange(%q) = %s, %s, %v; want %s, %s", tc.in, s, e, err, tc.start, tc.end)
		}
	}
	for _, in := range []string{"", "0 0", "1764144000", "1764147600 1764144000", "1764144000 1764144000",
		"1764144000 1764317000", "a b", "-1 5", "1764144000 1764147600 1"} {
		if _, _, err := ParseTimeRange(in); !errors.Is(err, apierr.ErrInvalid) {
			t.Errorf("ParseTimeRange(%q): %v, want invalid", in, err)
		}
	}
}
