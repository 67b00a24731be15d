package fmp4read

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// failingReader yields its data, then fails with err instead of io.EOF.
type failingReader struct {
	r   io.Reader
	err error
}

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, f.err
	}
	return n, err
}

// TestScanReadError: a read error (a disk that fails a read, a file
// descriptor limit) is not the end of the data. Scan must report it rather
// than call the rest a cut-off fragment: its caller truncates the file at
// Valid, and would throw away fragments that are on disk intact.
func TestScanReadError(t *testing.T) {
	ioErr := errors.New("input/output error")
	for _, tc := range scanCases {
		t.Run(tc.name, func(t *testing.T) {
			file, ends, res := scanBuilt(t, tc.audio, tc.frags)
			cuts := []int64{0, res.InitSize / 2, res.InitSize, ends[0] - 1}
			if len(ends) > 1 {
				cuts = append(cuts, ends[0], ends[0]+4, ends[0]+12)
			}
			for _, cut := range cuts {
				got, err := Scan(&failingReader{r: bytes.NewReader(file[:cut]), err: ioErr})
				if !errors.Is(err, ioErr) {
					t.Fatalf("read error after %d bytes: %+v, %v; want the read error", cut, got, err)
				}
			}
		})
	}
}
