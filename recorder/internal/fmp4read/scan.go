// Package fmp4read is the recorder's one reader of fragmented MP4 (ISO/IEC
// 14496-12): it walks ftyp/moov and moof/traf/tfhd/tfdt/trun and answers
// where the fragments of a file are, which of them start on a keyframe, and
// what their decode times are. The writer's index, crash recovery and
// reindexing use Scan; playback uses ParseInit, ParseMoof and RewriteMoof to
// join fragments of several files into one stream. It reads our own segments
// and fragmented MP4 written by other muxers (ffmpeg with
// -movflags +frag_keyframe+empty_moov+default_base_moof), whose keyframes are
// marked by trun first_sample_flags over tfhd or trex defaults.
//
// Nothing outside this package walks those boxes by hand (mediacommon writes
// them for the recorder). It links no database, so its fuzz target runs fast.
package fmp4read

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"
)

// Fragment is one moof+mdat pair of a segment file.
type Fragment struct {
	Offset   time.Duration // start of its first video sample, from the segment's start
	Pos      int64         // byte offset of the moof
	Size     int64         // bytes of moof+mdat
	Keyframe bool          // the first video sample is a sync sample
}

// Limits of the segment scanner, so that a corrupt file cannot make it
// allocate without bound.
const (
	maxInitBox     = 1 << 20
	maxFragmentBox = 64 << 20
)

// ErrIncomplete marks a box cut off by the end of the data.
var ErrIncomplete = errors.New("incomplete box")

// Result is what a scan of a segment file found.
type Result struct {
	InitSize  int64
	Fragments []Fragment
	Duration  time.Duration // end of the last video sample, from the start
	Valid     int64         // bytes up to the end of the last complete fragment
	Cut       bool          // something followed Valid: an incomplete or corrupt fragment
}

// Scan parses a segment file: the init section (ftyp, moov), then
// moof+mdat pairs, until the end of r or the first incomplete or corrupt
// fragment (Cut is then set and Valid says where to truncate). It fails when
// the init section itself is missing, incomplete or invalid.
func Scan(r io.Reader) (*Result, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	var pos int64
	ftyp, err := readBox(br, "ftyp", maxInitBox)
	if err != nil {
		return nil, fmt.Errorf("init section: %w", err)
	}
	moov, err := readBox(br, "moov", maxInitBox)
	if err != nil {
		return nil, fmt.Errorf("init section: %w", err)
	}
	initBytes := append(ftyp, moov...)
	var init fmp4.Init
	if err := init.Unmarshal(bytes.NewReader(initBytes)); err != nil {
		return nil, fmt.Errorf("init section: %w", err)
	}
	video := -1
	scales := map[int]uint32{}
	for _, t := range init.Tracks {
		scales[t.ID] = t.TimeScale
		if t.Codec != nil && t.Codec.IsVideo() && video < 0 {
			video = t.ID
		}
	}
	if video < 0 {
		return nil, errors.New("init section: no video track")
	}
	boxes, err := ParseInit(initBytes)
	if err != nil {
		return nil, fmt.Errorf("init section: %w", err)
	}
	pos = int64(len(initBytes))
	sc := &Result{InitSize: pos, Valid: pos}
	var frag []byte
	for {
		moof, err := readBox(br, "moof", maxFragmentBox)
		if err == io.EOF {
			return sc, nil
		}
		if re := (*ReadError)(nil); errors.As(err, &re) {
			return nil, err
		}
		if err != nil {
			sc.Cut = true
			return sc, nil
		}
		mdat, err := readBox(br, "mdat", maxFragmentBox)
		if re := (*ReadError)(nil); errors.As(err, &re) {
			return nil, err
		}
		if err != nil {
			sc.Cut = true
			return sc, nil
		}
		frag = append(append(frag[:0], moof...), mdat...)
		m, err := ParseMoof(frag, boxes)
		if err != nil {
			sc.Cut = true
			return sc, nil
		}
		f := Fragment{Pos: pos, Size: int64(len(frag))}
		found := false
		for _, tr := range m.Trafs {
			if tr.TrackID != uint32(video) || tr.Samples == 0 {
				continue
			}
			f.Offset = ScaleDuration(tr.BaseTime, scales[video])
			f.Keyframe = tr.FirstKey
			if end := ScaleDuration(tr.BaseTime+tr.Duration, scales[video]); end > sc.Duration {
				sc.Duration = end
			}
			found = true
			break
		}
		if !found {
			// a fragment without video: it starts where the video stopped
			f.Offset = sc.Duration
		}
		sc.Fragments = append(sc.Fragments, f)
		pos += f.Size
		sc.Valid = pos
	}
}

// ReadError is a failure to read the data (not its end): Scan returns it
// instead of calling what follows a cut-off fragment, since a caller
// truncates a file after its Valid bytes.
type ReadError struct{ Err error }

func (e *ReadError) Error() string { return "read: " + e.Err.Error() }
func (e *ReadError) Unwrap() error { return e.Err }

// incomplete maps the error of a short read: the end of the data is
// ErrIncomplete, anything else a *ReadError.
func incomplete(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return ErrIncomplete
	}
	return &ReadError{Err: err}
}

// readBox reads one whole top-level box of the given type. It returns io.EOF
// at a clean end of data, ErrIncomplete for a box cut off, a *ReadError when
// reading fails, and an error for another type or a size out of bounds.
func readBox(br *bufio.Reader, typ string, limit int64) ([]byte, error) {
	var hdr [16]byte
	n, err := io.ReadFull(br, hdr[:8])
	if n == 0 && err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, incomplete(err)
	}
	size := int64(binary.BigEndian.Uint32(hdr[:4]))
	hlen := 8
	if string(hdr[4:8]) != typ {
		return nil, fmt.Errorf("box %q where %q was expected", hdr[4:8], typ)
	}
	if size == 1 {
		if _, err := io.ReadFull(br, hdr[8:16]); err != nil {
			return nil, incomplete(err)
		}
		u := binary.BigEndian.Uint64(hdr[8:16])
		if u > uint64(limit) {
			return nil, fmt.Errorf("box %s of %d bytes is too large", typ, u)
		}
		size, hlen = int64(u), 16
	}
	if size < int64(hlen) || size > limit {
		return nil, fmt.Errorf("box %s has an invalid size %d", typ, size)
	}
	// grow with the data actually read, not with what the header claims
	buf := bytes.NewBuffer(make([]byte, 0, min(size, 1<<20)))
	buf.Write(hdr[:hlen])
	if n, err := io.CopyN(buf, br, size-int64(hlen)); err != nil {
		return nil, incomplete(err)
	} else if n != size-int64(hlen) {
		return nil, ErrIncomplete
	}
	return buf.Bytes(), nil
}

// ScaleDuration converts v ticks of a timescale into a duration without overflow.
func ScaleDuration(v uint64, scale uint32) time.Duration {
	if scale == 0 {
		return 0
	}
	s := uint64(scale)
	return time.Duration(v/s)*time.Second + time.Duration((v%s)*uint64(time.Second)/s)
}
