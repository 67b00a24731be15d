// Package review is the recorder's read side: the recordings timeline
// (Recordings), playback (Open, Playback), evidence export (Export) and
// timeline thumbnails (Thumbnail: a stored keyframe, not decoded) of the
// HTTP API, and the recorded access units with their times (Units) that
// GB/T 28181 playback re-muxes. It reads the archive's index and store, and, through the
// small Spooled interface it declares, the segments still on the recording
// node's local disk (package recorder implements it); it never writes to any
// of them and imports nothing of the write side. Fragments are parsed and
// rewritten onto one continuous timeline with internal/fmp4read.
package review

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/diskfree"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// Limits of the review requests.
const (
	// MaxGap is the longest pause between two segments that still counts as
	// continuous recording: spans merge across it and playback runs over it.
	MaxGap = 1500 * time.Millisecond
	// MaxPlayback is the longest playback one request may ask for.
	MaxPlayback = 24 * time.Hour
	// MaxExport is the longest clip one export may cover.
	MaxExport = 24 * time.Hour
	// MaxRecordingsRange is the longest range one recordings query may cover.
	MaxRecordingsRange = 31 * 24 * time.Hour
)

// Review answers the review requests of the HTTP API: the recordings
// timeline, playback and evidence export. It reads the index and the store,
// and the recorder's spool when Spool is set, and never writes to any. Authorization and audit belong to the caller.
//
// The option fields may be set after NewReview and before the first call.
type Review struct {
	// TempDir is where Export writes clips larger than ExportMemoryBytes.
	// It defaults to os.TempDir(). A clip may not take the free space that
	// recording keeps on that disk (diskfree.Reserve): past it, Export
	// answers apierr.ErrUnavailable.
	TempDir string
	// ExportMemoryBytes is the size up to which Export keeps a clip in memory
	// instead of a temporary file. It defaults to 8 MiB.
	ExportMemoryBytes int64
	// MaxReadBytes bounds one ranged read from the store; contiguous
	// fragments are read together up to this size. It defaults to 4 MiB.
	MaxReadBytes int64
	// Logger receives the reasons a playback ended early. It defaults to
	// slog.Default().
	Logger *slog.Logger
	// Spool shows the recordings still on the recorder's local disk — the
	// segment being written and those waiting for upload — joined with the
	// indexed ones by Recordings, Playback and Export (a *recorder.Recorder). It
	// defaults to nil: the index only.
	Spool Spooled
	// MaxExports bounds the exports being prepared at once (reading the
	// recording and writing the clip): preparing costs the store's and the
	// disk's bandwidth. Downloading a prepared clip holds no such place, so
	// that slow readers do not block everyone's exports. Past it, Export
	// answers apierr.ErrUnavailable. It defaults to 2.
	MaxExports int
	// MaxExportsPerUser bounds one user's exports being prepared or
	// downloaded (until Export.File is closed; see WithUser): each may hold
	// a temporary file of up to a day of video (about 20 GB at 2 Mbit/s), so
	// the temporary files are bounded by this times the number of users.
	// Past it, Export answers apierr.ErrTooMany. It defaults to 2.
	MaxExportsPerUser int

	exportOnce sync.Once
	exportSem  chan struct{} // places to prepare an export
	exportMu   sync.Mutex
	exportsOf  map[string]int // exports prepared or downloaded, by user
	// diskSpace measures TempDir's disk (diskfree.Space; tests replace it).
	diskSpace func(dir string) (free, total uint64, err error)

	thumbInits thumbInitCache // video-only init sections of thumbnails, by stored init section

	store archive.Store
	ix    *archive.Index
	pin   func(key string) (unpin func())
}

// NewReview returns a Review over the store and its index. pin, when not nil,
// is called before a segment is read and the function it returns after, so
// that retention leaves the segment alone meanwhile.
func NewReview(store archive.Store, ix *archive.Index, pin func(key string) (unpin func())) *Review {
	return &Review{store: store, ix: ix, pin: pin, diskSpace: diskfree.Space}
}

func (rv *Review) logger() *slog.Logger {
	if rv.Logger != nil {
		return rv.Logger
	}
	return slog.Default()
}

func (rv *Review) maxRead() int64 {
	if rv.MaxReadBytes > 0 {
		return rv.MaxReadBytes
	}
	return 4 << 20
}

func (rv *Review) exportMemory() int64 {
	if rv.ExportMemoryBytes > 0 {
		return rv.ExportMemoryBytes
	}
	return 8 << 20
}

// Span is a stretch of continuous recording.
type Span struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// Gap is a stretch of a range asked for that holds no recording (or none
// that a clip could include).
type Gap struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// SegmentInfo describes one recorded segment.
type SegmentInfo struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	Bytes int64     `json:"bytes"`
}

// Recordings is the timeline of a camera over a range.
type Recordings struct {
	Spans    []Span        `json:"spans"`
	Segments []SegmentInfo `json:"segments"`
}

// The oldest and newest times a request may name: anything outside is a
// typing error or an overflow, not a recording.
var (
	minReviewTime = time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC)
	maxReviewTime = time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)
)

const reviewTimeFormat = time.RFC3339

func checkCamera(camera string) error {
	if camera == "" {
		return apierr.New(apierr.ErrInvalid, "a camera is required")
	}
	return nil
}

func checkTime(name string, t time.Time) error {
	if t.IsZero() {
		return apierr.New(apierr.ErrInvalid, "%s is required", name)
	}
	if t.Before(minReviewTime) || !t.Before(maxReviewTime) {
		return apierr.New(apierr.ErrInvalid, "%s %s is not a plausible recording time", name, t.UTC().Format(reviewTimeFormat))
	}
	return nil
}

// checkRange validates [start, end) of at most limit (what names the request).
func checkRange(what string, start, end time.Time, limit time.Duration) error {
	if err := checkTime("start", start); err != nil {
		return err
	}
	if err := checkTime("end", end); err != nil {
		return err
	}
	if !end.After(start) {
		return apierr.New(apierr.ErrInvalid, "end %s is not after start %s",
			end.UTC().Format(reviewTimeFormat), start.UTC().Format(reviewTimeFormat))
	}
	if end.Sub(start) > limit {
		return apierr.New(apierr.ErrInvalid, "%s covers %s, longer than the limit of %s; ask for a shorter range",
			what, end.Sub(start).Round(time.Second), fmtLimit(limit))
	}
	return nil
}

func fmtLimit(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		if d == 24*time.Hour {
			return "24 hours"
		}
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

func notRecorded(start, end time.Time) error {
	return apierr.New(apierr.ErrNotFound, "nothing was recorded between %s and %s",
		start.UTC().Format(reviewTimeFormat), end.UTC().Format(reviewTimeFormat))
}
