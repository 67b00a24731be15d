package manscdp

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzDecode checks that Decode never panics, refuses what is over
// MaxBodySize, and that whatever it accepts Vigil can write back (in
// GB18030, which carries every character) and read again.
func FuzzDecode(f *testing.F) {
	for _, c := range bodyCases {
		b, err := os.ReadFile(filepath.Join("testdata", c.file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"",
		`<?xml version="1.0" encoding="Big5"?><Query/>`,
		"<Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><Name>\xB9\xAB\xFF</Name></Query>",
		`<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><SumNum>1</SumNum><DeviceList Num="1"><Item><DeviceID>12</DeviceID></Item></DeviceList></Response>`,
		`<Control><CmdType>DeviceControl</CmdType><SN>1</SN><DeviceID>34020000001320000001</DeviceID><PTZCmd>A50F0100000000B6</PTZCmd></Control>`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		m, err := Decode(body)
		if len(body) > MaxBodySize && !errors.Is(err, ErrBodyTooLarge) {
			t.Fatalf("Decode of %d bytes: %v, want ErrBodyTooLarge", len(body), err)
		}
		if err != nil {
			if m != nil {
				t.Fatalf("Decode returned %#v with error %v", m, err)
			}
			return
		}
		out, err := Encoder{Charset: GB18030}.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal of an accepted body: %v\n%q", err, body)
		}
		if _, err := Decode(out); err != nil {
			t.Fatalf("Decode(Marshal(Decode(body))): %v\nbody %q\nout %q", err, body, out)
		}
	})
}
