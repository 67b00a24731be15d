package replay

import (
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/headers"
)

// MANSRTSP methods (GB/T 28181-2016 annex B): what an upper platform sends
// in the body of an INFO within a Playback dialog.
const (
	MethodPlay     = "PLAY"
	MethodPause    = "PAUSE"
	MethodTeardown = "TEARDOWN"
)

// Scale bounds a PLAY may ask for.
const (
	MinScale = 0.25
	MaxScale = 8
)

// maxControlSize bounds an INFO body: a real one is under 200 bytes.
const maxControlSize = 4096

// maxNPT bounds a Range position (a day, the longest playback).
const maxNPT = 24 * time.Hour

// Control is one parsed MANSRTSP request.
type Control struct {
	Method string // MethodPlay, MethodPause or MethodTeardown
	CSeq   int
	// Scale is the speed a PLAY asks for, in [MinScale, MaxScale]; 0 when
	// the request has no Scale header (keep the current speed).
	Scale float64
	// HasRange tells that a PLAY carries a Range with a position: seek to
	// Range from the start of the playback (the t= start of the INVITE).
	// "npt=now-" and a missing Range mean: go on from where it is. Range
	// is rounded to the millisecond.
	HasRange bool
	Range    time.Duration
}

// ControlError is a MANSRTSP body that cannot be used; Field names the
// request line or the header at fault. Answer the INFO with 400.
type ControlError struct {
	Field string
	Msg   string
}

func (e *ControlError) Error() string {
	return fmt.Sprintf("MANSRTSP %s: %s", e.Field, e.Msg)
}

func controlErr(field, format string, a ...any) error {
	return &ControlError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// ParseControl parses the MANSRTSP body of an INFO (Content-Type
// Application/MANSRTSP), e.g.
//
//	PLAY MANSRTSP/1.0
//	CSeq: 2
//	Range: npt=120-
//	Scale: 2.0
//
// It is strict: the request line must be "METHOD MANSRTSP/1.0" (RTSP/1.0 is
// accepted, as some platforms send it) with PLAY, PAUSE or TEARDOWN; CSeq is
// required and a positive integer; Scale must be a number in
// [MinScale, MaxScale] (reverse play is not supported) and only in a PLAY;
// Range must be npt=START- or npt=START-END with a START under 24 h, or
// npt=now-; no header may repeat; a header line must be "Name: value". Other
// headers (PauseTime, Content-Length…) are accepted and ignored. Errors are
// *ControlError.
func ParseControl(body []byte) (*Control, error) {
	if len(body) > maxControlSize {
		return nil, controlErr("body", "%d bytes is more than the %d a control request may have", len(body), maxControlSize)
	}
	text := strings.ReplaceAll(string(body), "\r\n", "\n")
	lines := strings.Split(strings.TrimRight(text, "\n"), "\n")
	if len(lines) == 0 || strings.TrimSpace(lines[0]) == "" {
		return nil, controlErr("request line", "is missing")
	}
	f := strings.Fields(lines[0])
	if len(f) != 2 {
		return nil, controlErr("request line", "%q is not \"METHOD MANSRTSP/1.0\"", clip(lines[0]))
	}
	c := &Control{Method: strings.ToUpper(f[0])}
	switch c.Method {
	case MethodPlay, MethodPause, MethodTeardown:
	default:
		return nil, controlErr("request line", "method %q is not PLAY, PAUSE or TEARDOWN", clip(f[0]))
	}
	if v := strings.ToUpper(f[1]); v != "MANSRTSP/1.0" && v != "RTSP/1.0" {
		return nil, controlErr("request line", "version %q is not MANSRTSP/1.0", clip(f[1]))
	}
	seen := map[string]bool{}
	for i, ln := range lines[1:] {
		ln = strings.TrimSpace(ln)
		if ln == "" {
			if rest := strings.TrimSpace(strings.Join(lines[i+2:], "")); rest != "" {
				return nil, controlErr("body", "text after the blank line that ends the headers")
			}
			break
		}
		name, value, ok := strings.Cut(ln, ":")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, controlErr("header", "line %q is not \"Name: value\"", clip(ln))
		}
		key := strings.ToLower(name)
		if seen[key] {
			return nil, controlErr(name, "appears more than once")
		}
		seen[key] = true
		var err error
		switch key {
		case "cseq":
			c.CSeq, err = parseCSeq(value)
		case "scale":
			c.Scale, err = parseScale(c.Method, value)
		case "range":
			c.HasRange, c.Range, err = parseRange(c.Method, value)
		}
		if err != nil {
			return nil, err
		}
	}
	if !seen["cseq"] {
		return nil, controlErr("CSeq", "is missing")
	}
	return c, nil
}

func parseCSeq(v string) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > math.MaxInt32 {
		return 0, controlErr("CSeq", "%q is not a non-negative integer", clip(v))
	}
	return n, nil
}

func parseScale(method, v string) (float64, error) {
	if method != MethodPlay {
		return 0, controlErr("Scale", "is only allowed in a PLAY, not a %s", method)
	}
	s, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(s) || math.IsInf(s, 0) {
		return 0, controlErr("Scale", "%q is not a number", clip(v))
	}
	if s < 0 {
		return 0, controlErr("Scale", "%s asks for reverse play, which is not supported", v)
	}
	if s < MinScale || s > MaxScale {
		return 0, controlErr("Scale", "%s is outside %g to %g", v, float64(MinScale), float64(MaxScale))
	}
	return s, nil
}

func parseRange(method, v string) (bool, time.Duration, error) {
	if method != MethodPlay {
		return false, 0, nil // a PAUSE's Range (rare) says nothing we act on
	}
	if strings.EqualFold(v, "npt=now-") || strings.EqualFold(v, "npt=now-now") {
		return false, 0, nil
	}
	if !strings.HasPrefix(strings.ToLower(v), "npt=") {
		return false, 0, controlErr("Range", "%q is not npt=START- (seconds from the start of the playback)", clip(v))
	}
	var h headers.Range
	if err := h.Unmarshal(base.HeaderValue{"npt=" + v[4:]}); err != nil {
		return false, 0, controlErr("Range", "%q is not npt=START- (seconds from the start of the playback): %v", clip(v), err)
	}
	npt, ok := h.Value.(*headers.RangeNPT)
	if !ok {
		return false, 0, controlErr("Range", "%q is not npt=START-", clip(v))
	}
	if npt.Start < 0 || npt.Start > maxNPT || strings.Contains(strings.ToLower(v), "nan") || strings.Contains(strings.ToLower(v), "inf") {
		return false, 0, controlErr("Range", "start %q is not between 0 and %s", clip(v), maxNPT)
	}
	if npt.End != nil && *npt.End < npt.Start {
		return false, 0, controlErr("Range", "end %s is before start %s", *npt.End, npt.Start)
	}
	return true, npt.Start.Round(time.Millisecond), nil // MANSRTSP positions are seconds; ms is plenty
}

// clip shortens what is quoted in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// AppendControl appends the MANSRTSP body of c (for tests and for a lower
// platform's side): the request line, CSeq, and Scale and Range when set.
func AppendControl(dst []byte, c *Control) []byte {
	b := bytes.NewBuffer(dst)
	fmt.Fprintf(b, "%s MANSRTSP/1.0\r\nCSeq: %d\r\n", c.Method, c.CSeq)
	if c.Method == MethodPlay && c.Scale != 0 {
		fmt.Fprintf(b, "Scale: %s\r\n", strconv.FormatFloat(c.Scale, 'f', -1, 64))
	}
	if c.Method == MethodPlay && c.HasRange {
		fmt.Fprintf(b, "Range: npt=%s-\r\n", strconv.FormatFloat(c.Range.Seconds(), 'f', -1, 64))
	}
	if c.Method == MethodPause {
		b.WriteString("PauseTime: now\r\n")
	}
	return b.Bytes()
}
