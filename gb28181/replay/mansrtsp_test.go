package replay

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// controlCases feed the parse test and the fuzz seeds.
var controlCases = []struct {
	name string
	body string
	want *Control
	err  string // part of the error when want is nil
}{
	{"play from start", "PLAY MANSRTSP/1.0\r\nCSeq: 2\r\nRange: npt=0-\r\n\r\n",
		&Control{Method: MethodPlay, CSeq: 2, HasRange: true}, ""},
	{"play seek and scale", "PLAY MANSRTSP/1.0\r\nCSeq: 5\r\nScale: 2.0\r\nRange: npt=120.5-\r\n\r\n",
		&Control{Method: MethodPlay, CSeq: 5, Scale: 2, HasRange: true, Range: 120500 * time.Millisecond}, ""},
	{"play now", "PLAY MANSRTSP/1.0\r\nCSeq: 6\r\nRange: npt=now-\r\n", &Control{Method: MethodPlay, CSeq: 6}, ""},
	{"play scale only, LF", "PLAY MANSRTSP/1.0\nCSeq: 7\nScale: 0.25\n", &Control{Method: MethodPlay, CSeq: 7, Scale: 0.25}, ""},
	{"play range with end", "PLAY MANSRTSP/1.0\r\nCSeq: 8\r\nRange: npt=10-20\r\n",
		&Control{Method: MethodPlay, CSeq: 8, HasRange: true, Range: 10 * time.Second}, ""},
	{"play sub-ms", "PLAY MANSRTSP/1.0\r\nCSeq: 8\r\nRange: npt=0.1234567891-\r\n",
		&Control{Method: MethodPlay, CSeq: 8, HasRange: true, Range: 123 * time.Millisecond}, ""},
	{"play hh:mm:ss", "PLAY MANSRTSP/1.0\r\nCSeq: 8\r\nRange: npt=0:01:30-\r\n",
		&Control{Method: MethodPlay, CSeq: 8, HasRange: true, Range: 90 * time.Second}, ""},
	{"pause", "PAUSE MANSRTSP/1.0\r\nCSeq: 3\r\nPauseTime: now\r\n\r\n", &Control{Method: MethodPause, CSeq: 3}, ""},
	{"teardown rtsp version", "TEARDOWN RTSP/1.0\r\nCSeq: 9\r\n", &Control{Method: MethodTeardown, CSeq: 9}, ""},
	{"lower-case header names", "PLAY MANSRTSP/1.0\r\ncseq: 1\r\nscale: 4\r\n", &Control{Method: MethodPlay, CSeq: 1, Scale: 4}, ""},

	{"empty", "", nil, "request line: is missing"},
	{"no version", "PLAY\r\nCSeq: 1\r\n", nil, "request line"},
	{"url in request line", "PLAY rtsp://x MANSRTSP/1.0\r\nCSeq: 1\r\n", nil, "request line"},
	{"unknown method", "OPTIONS MANSRTSP/1.0\r\nCSeq: 1\r\n", nil, "method \"OPTIONS\""},
	{"bad version", "PLAY SIP/2.0\r\nCSeq: 1\r\n", nil, "version \"SIP/2.0\""},
	{"no cseq", "PLAY MANSRTSP/1.0\r\nScale: 1\r\n", nil, "CSeq: is missing"},
	{"bad cseq", "PLAY MANSRTSP/1.0\r\nCSeq: two\r\n", nil, "CSeq: \"two\""},
	{"negative cseq", "PLAY MANSRTSP/1.0\r\nCSeq: -1\r\n", nil, "CSeq"},
	{"duplicate cseq", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nCSeq: 2\r\n", nil, "appears more than once"},
	{"header without colon", "PLAY MANSRTSP/1.0\r\nCSeq 1\r\n", nil, "not \"Name: value\""},
	{"scale too high", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nScale: 16\r\n", nil, "Scale: 16 is outside 0.25 to 8"},
	{"scale too low", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nScale: 0.1\r\n", nil, "outside"},
	{"reverse", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nScale: -1\r\n", nil, "reverse play"},
	{"scale NaN", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nScale: NaN\r\n", nil, "not a number"},
	{"scale in pause", "PAUSE MANSRTSP/1.0\r\nCSeq: 1\r\nScale: 2\r\n", nil, "only allowed in a PLAY"},
	{"range clock", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nRange: clock=20261126T080000Z-\r\n", nil, "Range"},
	{"range garbage", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nRange: npt=abc-\r\n", nil, "Range"},
	{"range too far", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nRange: npt=100000-\r\n", nil, "not between 0 and"},
	{"range backwards", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nRange: npt=20-10\r\n", nil, "before start"},
	{"range inf", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nRange: npt=inf-\r\n", nil, "Range"},
	{"body after headers", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\n\r\nhello", nil, "after the blank line"},
	{"too long", "PLAY MANSRTSP/1.0\r\nCSeq: 1\r\nX: " + strings.Repeat("a", 5000) + "\r\n", nil, "more than the 4096"},
}

func TestParseControl(t *testing.T) {
	for _, tc := range controlCases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ParseControl([]byte(tc.body))
			if tc.want == nil {
				var ce *ControlError
				if err == nil || !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("ParseControl = %+v, %v; want a *ControlError with %q", c, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *c != *tc.want {
				t.Fatalf("ParseControl = %+v, want %+v", *c, *tc.want)
			}
			// What AppendControl writes parses back to the same request.
			again, err := ParseControl(AppendControl(nil, c))
			if err != nil || *again != *c {
				t.Fatalf("round trip: %+v, %v; want %+v", again, err, *c)
			}
		})
	}
}

func FuzzParseControl(f *testing.F) {
	for _, tc := range controlCases {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseControl(b)
		if err != nil {
			var ce *ControlError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ControlError", err)
			}
			return
		}
		switch c.Method {
		case MethodPlay, MethodPause, MethodTeardown:
		default:
			t.Fatalf("method %q accepted", c.Method)
		}
		if c.Scale != 0 && (c.Scale < MinScale || c.Scale > MaxScale) {
			t.Fatalf("scale %g accepted", c.Scale)
		}
		if c.Range < 0 || c.Range > maxNPT || c.CSeq < 0 {
			t.Fatalf("accepted %+v", c)
		}
		again, err := ParseControl(AppendControl(nil, c))
		if err != nil || *again != *c {
			t.Fatalf("round trip of %+v: %+v, %v", c, again, err)
		}
	})
}
