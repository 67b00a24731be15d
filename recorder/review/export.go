package review

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/internal/apierr"
	"github.com/vigil-vms/vigil/internal/diskfree"
)

// Export is an evidence clip ready to be sent: its bytes, length and SHA-256.
type Export struct {
	// File reads the clip; Close removes any temporary file behind it.
	File io.ReadSeekCloser
	// Size is the clip's length in bytes.
	Size int64
	// SHA256 is the lower-case hex SHA-256 of the clip.
	SHA256 string
	// Name is a file name for the download, such as
	// police-007_20261126T080000Z_20261126T081000Z.mp4.
	Name string
	// Gaps are the stretches of the range asked for that the clip does not
	// hold, oldest first: pauses in recording longer than MaxGap (the clip
	// goes on across them: its timeline has no hole where they were), and
	// the start or end of the range where nothing was recorded (or where the
	// codec or resolution changed, which ends the clip).
	Gaps []Gap
	// Recorded is the length of the clip's timeline: the recorded time it holds.
	Recorded time.Duration
}

// Export builds the clip of the camera's recording over [start, end) — the
// same fragmented MP4 that Playback streams for that range — in memory when
// it is small (ExportMemoryBytes) or else in a temporary file in TempDir, so
// that it has a known length and can be served with Range requests. The
// range is limited to MaxExport (24 hours). Unlike a playback, an export goes
// on across gaps in recording, and lists them (Export.Gaps). Bad arguments
// fail with apierr.ErrInvalid, a range with nothing recorded with
// apierr.ErrNotFound; any failure while reading the recording fails the whole
// export. A user (WithUser) past MaxExportsPerUser is refused with
// apierr.ErrTooMany, and everyone while MaxExports clips are being prepared
// with apierr.ErrUnavailable.
func (rv *Review) Export(ctx context.Context, camera string, start, end time.Time) (Export, error) {
	if err := checkCamera(camera); err != nil {
		return Export{}, err
	}
	if err := checkRange("the export", start, end, MaxExport); err != nil {
		return Export{}, err
	}
	prepared, release, err := rv.acquireExport(ctx)
	if err != nil {
		return Export{}, err
	}
	defer prepared() // downloading holds only the user's place
	sp := &spillWriter{limit: rv.exportMemory(), dir: rv.TempDir, diskSpace: rv.diskSpace}
	h := sha256.New()
	c := rv.newClip(ctx, camera, start, end)
	c.acrossGaps = true
	n, err := c.WriteTo(io.MultiWriter(sp, h))
	if err == nil {
		err = sp.finish()
	}
	if err != nil {
		sp.discard()
		release()
		return Export{}, err
	}
	ex := Export{Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Name: DownloadName(camera, start, end, ".mp4"),
		Gaps: c.missing(), Recorded: c.duration()}
	if sp.f != nil {
		ex.File = &tempFile{File: sp.f}
	} else {
		ex.File = nopCloser{bytes.NewReader(sp.buf.Bytes())}
	}
	ex.File = releaseOnClose{ReadSeekCloser: ex.File, release: release}
	return ex, nil
}

// userKey is the context key of the user an export is for (WithUser).
type userKey struct{}

// WithUser returns a context that names the user a request is for: Export
// counts that user's exports against MaxExportsPerUser. Without it, the
// exports count as one unnamed user's.
func WithUser(ctx context.Context, user string) context.Context {
	return context.WithValue(ctx, userKey{}, user)
}

// acquireExport takes one of the user's MaxExportsPerUser places, given back
// by release (when the clip is closed; more than once is harmless), and one
// of the MaxExports places to prepare a clip, given back by prepared (when
// the clip is written; more than once is harmless too).
func (rv *Review) acquireExport(ctx context.Context) (prepared, release func(), err error) {
	rv.exportOnce.Do(func() {
		n := rv.MaxExports
		if n <= 0 {
			n = 2
		}
		rv.exportSem = make(chan struct{}, n)
		rv.exportsOf = map[string]int{}
	})
	perUser := rv.MaxExportsPerUser
	if perUser <= 0 {
		perUser = 2
	}
	user, _ := ctx.Value(userKey{}).(string)
	rv.exportMu.Lock()
	if rv.exportsOf[user] >= perUser {
		rv.exportMu.Unlock()
		return nil, nil, apierr.New(apierr.ErrTooMany,
			"you have %d exports being prepared or downloaded already; try again when one has finished", perUser)
	}
	rv.exportsOf[user]++
	rv.exportMu.Unlock()
	var releaseOnce sync.Once
	release = func() {
		releaseOnce.Do(func() {
			rv.exportMu.Lock()
			if rv.exportsOf[user]--; rv.exportsOf[user] <= 0 {
				delete(rv.exportsOf, user)
			}
			rv.exportMu.Unlock()
		})
	}
	select {
	case rv.exportSem <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-rv.exportSem }) }, release, nil
	default:
		release()
		return nil, nil, apierr.New(apierr.ErrUnavailable,
			"%d exports are being prepared already; try again in a moment", cap(rv.exportSem))
	}
}

// releaseOnClose gives the export's place back when the clip is closed.
type releaseOnClose struct {
	io.ReadSeekCloser
	release func()
}

func (r releaseOnClose) Close() error {
	err := r.ReadSeekCloser.Close()
	r.release()
	return err
}

// DownloadName is the download name of what (a camera, an incident) over
// a UTC range, in characters any file system accepts, ending in ext, such as
// police-007_20261126T080000Z_20261126T081000Z.mp4.
func DownloadName(what string, start, end time.Time, ext string) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, what)
	const f = "20060102T150405Z"
	return safe + "_" + start.UTC().Format(f) + "_" + end.UTC().Format(f) + ext
}

// spillWriter keeps up to limit bytes in memory, then moves to a temporary file.
type spillWriter struct {
	limit int64
	dir   string
	buf   bytes.Buffer
	f     *os.File
	// diskSpace, when set, measures the temporary file's disk before the
	// file is created and every spaceCheckEvery bytes: the clip may not
	// take the free space that recording keeps (diskfree.Reserve).
	diskSpace func(dir string) (free, total uint64, err error)
	written   int64 // to the file
	checkedAt int64 // written at the last check
}

// spaceCheckEvery is how often a growing export measures its disk.
const spaceCheckEvery = 64 << 20

// checkSpace fails when writing n more bytes would leave the disk with less
// than the reserve free. A disk that cannot be measured does not stop it.
func (s *spillWriter) checkSpace(n int64) error {
	if s.diskSpace == nil {
		return nil
	}
	dir := s.dir
	if dir == "" {
		dir = os.TempDir()
	}
	free, total, err := s.diskSpace(dir)
	if err != nil {
		return nil
	}
	if need := diskfree.Reserve(total) + uint64(max(n, 0)); free < need {
		return apierr.New(apierr.ErrUnavailable,
			"the server's disk has too little free space to prepare this export (%d MiB free, %d MiB kept for recording); ask for a shorter range or try again later",
			free>>20, diskfree.Reserve(total)>>20)
	}
	return nil
}

func (s *spillWriter) Write(p []byte) (int, error) {
	if s.f != nil && s.written+int64(len(p))-s.checkedAt >= spaceCheckEvery {
		if err := s.checkSpace(spaceCheckEvery); err != nil {
			return 0, err
		}
		s.checkedAt = s.written
	}
	if s.f == nil && int64(s.buf.Len()+len(p)) > s.limit {
		if err := s.checkSpace(int64(s.buf.Len() + len(p))); err != nil {
			return 0, err
		}
		f, err := os.CreateTemp(s.dir, "vigil-export-*.mp4")
		if err != nil {
			return 0, fmt.Errorf("export: temporary file: %w", err)
		}
		s.f = f
		if _, err := f.Write(s.buf.Bytes()); err != nil {
			return 0, fmt.Errorf("export: temporary file: %w", err)
		}
		s.buf = bytes.Buffer{}
	}
	if s.f != nil {
		n, err := s.f.Write(p)
		s.written += int64(n)
		if err != nil {
			return n, fmt.Errorf("export: temporary file: %w", err)
		}
		return n, nil
	}
	return s.buf.Write(p)
}

// finish rewinds the temporary file for reading.
func (s *spillWriter) finish() error {
	if s.f == nil {
		return nil
	}
	if _, err := s.f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("export: temporary file: %w", err)
	}
	return nil
}

func (s *spillWriter) discard() {
	if s.f != nil {
		s.f.Close()
		os.Remove(s.f.Name())
	}
}

// tempFile removes its file when closed.
type tempFile struct{ *os.File }

func (t *tempFile) Close() error {
	err := t.File.Close()
	if rerr := os.Remove(t.File.Name()); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
		err = rerr
	}
	return err
}

type nopCloser struct{ *bytes.Reader }

func (nopCloser) Close() error { return nil }
