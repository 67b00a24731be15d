package archive

import (
	"fmt"
	"io"
	"path"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-vms/vigil/recorder/internal/fmp4read"
)

const keyLayout = "2006/01/02/15-04-05.000"

var keyRE = regexp.MustCompile(`^([a-z0-9-]{1,64})/(\d{4}/\d{2}/\d{2}/\d{2}-\d{2}-\d{2}\.\d{3})\.mp4$`)

// SegmentKey returns the store key of a camera's segment that starts at start:
// <camera>/<YYYY>/<MM>/<DD>/<HH-MM-SS.mmm>.mp4 in UTC.
func SegmentKey(camera string, start time.Time) string {
	return camera + "/" + start.UTC().Format(keyLayout) + ".mp4"
}

// ParseSegmentKey returns the camera and start time of a segment key.
func ParseSegmentKey(key string) (camera string, start time.Time, err error) {
	m := keyRE.FindStringSubmatch(key)
	if m == nil {
		return "", time.Time{}, fmt.Errorf("%q is not a segment key (<camera>/YYYY/MM/DD/HH-MM-SS.mmm.mp4)", key)
	}
	start, err = time.Parse(keyLayout, m[2])
	if err != nil {
		return "", time.Time{}, fmt.Errorf("segment key %q: %w", key, err)
	}
	return m[1], start, nil
}

// SegmentScan is what a scan of a segment file found.
type SegmentScan = fmp4read.Result

// ScanSegment parses a segment file up to its first incomplete or corrupt
// fragment; it fails when the init section is missing or invalid.
func ScanSegment(r io.Reader) (*SegmentScan, error) { return fmp4read.Scan(r) }

// SegmentRow builds the index row of a scanned segment stored under key.
func SegmentRow(key string, sc *SegmentScan) (Segment, error) {
	camera, start, err := ParseSegmentKey(key)
	if err != nil {
		return Segment{}, err
	}
	return Segment{
		Camera:    camera,
		Start:     start,
		End:       start.Add(sc.Duration),
		Bytes:     sc.Valid,
		Key:       key,
		InitSize:  sc.InitSize,
		Fragments: sc.Fragments,
	}, nil
}

// Meta is the object metadata of a segment.
func (s Segment) Meta() map[string]string {
	return map[string]string{
		"start":    s.Start.UTC().Format(time.RFC3339Nano),
		"end":      s.End.UTC().Format(time.RFC3339Nano),
		"duration": fmt.Sprintf("%.3f", s.End.Sub(s.Start).Seconds()),
	}
}

// IsSegmentKey tells whether a store or spool path looks like a segment.
func IsSegmentKey(key string) bool {
	return strings.HasSuffix(key, ".mp4") && keyRE.MatchString(path.Clean(key))
}
