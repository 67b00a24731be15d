package manscdp

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// Charset is the character set of a body, named in its XML declaration.
type Charset string

// Character sets. GB2312 ⊂ GBK ⊂ GB18030; every body in one of the GB sets
// is decoded as GB18030, since devices that declare GB2312 routinely send
// GBK characters (rare surnames, 镕, 珺).
const (
	GB2312  Charset = "GB2312"
	GBK     Charset = "GBK"
	GB18030 Charset = "GB18030"
	UTF8    Charset = "UTF-8"
)

// parseCharset maps a declared encoding label (any case) to a Charset.
func parseCharset(label string) (Charset, bool) {
	switch strings.ToUpper(strings.TrimSpace(label)) {
	case "GB2312", "GB_2312-80", "EUC-CN", "CSGB2312", "X-GBK":
		return GB2312, true
	case "GBK", "CP936", "WINDOWS-936", "MS936":
		return GBK, true
	case "GB18030":
		return GB18030, true
	case "UTF-8", "UTF8":
		return UTF8, true
	}
	return "", false
}

var declRe = regexp.MustCompile(`^<\?xml\s[^>]*?\?>`)
var encRe = regexp.MustCompile(`\sencoding\s*=\s*["']([^"']*)["']`)

// CharsetError is returned when a body's declared character set is unknown
// or its bytes are not valid in it.
type CharsetError struct {
	Charset Charset // as declared, or GB2312 when there is no declaration
	Label   string  // the declared label when it is unknown
	Offset  int     // byte offset of the first invalid sequence, −1 if unknown
	Context string  // decoded text just before it
	// UTF8 is set when a body read as GB is valid UTF-8: the usual cause is
	// a device that declares GB2312 (or nothing) but sends UTF-8.
	UTF8 bool
}

func (e *CharsetError) Error() string {
	if e.Label != "" {
		return fmt.Sprintf("manscdp: XML declaration names encoding %q; want GB2312, GBK, GB18030 or UTF-8", e.Label)
	}
	if e.UTF8 {
		return fmt.Sprintf("manscdp: body is not valid %s at byte %d (after %q) but is valid UTF-8: the device sends UTF-8 and must declare encoding=\"UTF-8\"", e.Charset, e.Offset, e.Context)
	}
	return fmt.Sprintf("manscdp: body is not valid %s at byte %d (after %q); check the encoding in the XML declaration", e.Charset, e.Offset, e.Context)
}

// toUTF8 strips an optional UTF-8 byte-order mark and the XML declaration and
// returns the rest of the body as UTF-8, with the charset it was read as:
// override when it is set, else the declared one.
func toUTF8(body []byte, override Charset) ([]byte, Charset, error) {
	body = bytes.TrimPrefix(body, []byte("\xEF\xBB\xBF"))
	body = bytes.TrimLeft(body, " \t\r\n")
	cs := GB2312 // devices that omit the declaration send GB2312
	if d := declRe.Find(body); d != nil {
		if m := encRe.FindSubmatch(d); m != nil {
			c, ok := parseCharset(string(m[1]))
			if !ok {
				return nil, "", &CharsetError{Label: string(m[1]), Offset: -1}
			}
			cs = c
		}
		body = body[len(d):]
	}
	if override != "" {
		c, ok := parseCharset(string(override))
		if !ok {
			return nil, "", fmt.Errorf("manscdp: unknown charset %q; want GB2312, GBK, GB18030 or UTF-8", string(override))
		}
		cs = c
	}
	if cs == UTF8 {
		if !utf8.Valid(body) {
			off := 0
			for off < len(body) {
				r, n := utf8.DecodeRune(body[off:])
				if r == utf8.RuneError && n <= 1 {
					break
				}
				off += n
			}
			return nil, cs, &CharsetError{Charset: cs, Offset: off, Context: tail(string(body[:off]))}
		}
		return body, cs, nil
	}
	if isASCII(body) {
		return body, cs, nil
	}
	out, err := simplifiedchinese.GB18030.NewDecoder().Bytes(body)
	if err != nil {
		return nil, cs, &CharsetError{Charset: cs, Offset: -1}
	}
	// x/text replaces invalid sequences with U+FFFD; a body that needs a
	// replacement is rejected (U+FFFD is not a character a device names
	// anything with), and the offset is found by decoding prefixes.
	if i := bytes.IndexRune(out, utf8.RuneError); i >= 0 {
		return nil, cs, &CharsetError{Charset: cs, Offset: gbInvalidOffset(body), Context: tail(string(out[:i])), UTF8: utf8.Valid(body)}
	}
	return out, cs, nil
}

// gbInvalidOffset returns the byte offset of the first GB18030 sequence that
// decodes to U+FFFD.
func gbInvalidOffset(b []byte) int {
	dec := simplifiedchinese.GB18030.NewDecoder()
	for i := 0; i < len(b); {
		n := 1
		switch {
		case b[i] < 0x80:
		case i+1 < len(b) && b[i+1] >= 0x30 && b[i+1] <= 0x39:
			n = 4
		default:
			n = 2
		}
		if i+n > len(b) {
			return i
		}
		out, err := dec.Bytes(b[i : i+n])
		if err != nil || bytes.ContainsRune(out, utf8.RuneError) {
			return i
		}
		i += n
	}
	return -1
}

func isASCII(b []byte) bool {
	for _, c := range b {
		if c >= 0x80 {
			return false
		}
	}
	return true
}

// tail returns up to the last 24 runes of s.
func tail(s string) string {
	r := []rune(s)
	if len(r) > 24 {
		r = r[len(r)-24:]
	}
	return string(r)
}

// encodeCharset converts UTF-8 text to cs. For GB2312 it reports the first
// character outside GB2312 (GBK and GB18030 extensions included).
func encodeCharset(s string, cs Charset) ([]byte, error) {
	switch cs {
	case UTF8:
		return []byte(s), nil
	case GB2312:
		enc := simplifiedchinese.GBK.NewEncoder()
		for i, r := range s {
			if r < 0x80 {
				continue
			}
			b, err := enc.Bytes([]byte(string(r)))
			// GB2312 (EUC-CN) is the GBK region with both bytes in A1–FE
			// and the lead byte at most F7.
			if err != nil || len(b) != 2 || b[0] < 0xA1 || b[0] > 0xF7 || b[1] < 0xA1 || b[1] > 0xFE {
				return nil, &UnencodableError{Charset: cs, Rune: r, Offset: i}
			}
		}
		return simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
	case GBK:
		b, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(s))
		if err != nil {
			for i, r := range s {
				if _, err := simplifiedchinese.GBK.NewEncoder().Bytes([]byte(string(r))); err != nil {
					return nil, &UnencodableError{Charset: cs, Rune: r, Offset: i}
				}
			}
			return nil, fmt.Errorf("manscdp: encode GBK: %w", err)
		}
		return b, nil
	case GB18030:
		// GB18030 encodes every Unicode scalar value.
		return simplifiedchinese.GB18030.NewEncoder().Bytes([]byte(s))
	}
	return nil, fmt.Errorf("manscdp: unknown charset %q; want GB2312, GBK, GB18030 or UTF-8", string(cs))
}

// UnencodableError reports a character the chosen charset cannot carry.
type UnencodableError struct {
	Charset Charset
	Rune    rune
	Offset  int // byte offset in the UTF-8 XML text
}

func (e *UnencodableError) Error() string {
	return fmt.Sprintf("manscdp: character %q (U+%04X) is not in %s; send GB18030 or UTF-8, or set Encoder.Fallback", e.Rune, e.Rune, e.Charset)
}
