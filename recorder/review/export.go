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
}

// Export builds the clip of the camera's recording over [start, end) — the
// same fragmented MP4 that Playback streams for that range — in memory when
// it is small (ExportMemoryBytes) or else in a temporary file in TempDir, so
// that it has a known length and can be served with Range requests. The
// range is limited to MaxExport (24 hours). Bad arguments fail with
// apierr.ErrInvalid, a range with nothing recorded with apierr.ErrNotFound;
// any failure while reading the recording fails the whole export.
func (rv *Review) Export(ctx context.Context, camera string, start, end time.Time) (Export, error) {
	if err := checkCamera(camera); err != nil {
		return Export{}, err
	}
	if err := checkRange("the export", start, end, MaxExport); err != nil {
		return Export{}, err
	}
	release, err := rv.acquireExport()
	if err != nil {
		return Export{}, err
	}
	sp := &spillWriter{limit: rv.exportMemory(), dir: rv.TempDir}
	h := sha256.New()
	n, err := rv.writeClip(ctx, io.MultiWriter(sp, h), camera, start, end)
	if err == nil {
		err = sp.finish()
	}
	if err != nil {
		sp.discard()
		release()
		return Export{}, err
	}
	ex := Export{Size: n, SHA256: hex.EncodeToString(h.Sum(nil)), Name: exportName(camera, start, end)}
	if sp.f != nil {
		ex.File = &tempFile{File: sp.f}
	} else {
		ex.File = nopCloser{bytes.NewReader(sp.buf.Bytes())}
	}
	ex.File = releaseOnClose{ReadSeekCloser: ex.File, release: release}
	return ex, nil
}

// acquireExport takes one of the MaxExports places; release gives it back
// (more than once is harmless).
func (rv *Review) acquireExport() (release func(), err error) {
	rv.exportOnce.Do(func() {
		n := rv.MaxExports
		if n <= 0 {
			n = 2
		}
		rv.exportSem = make(chan struct{}, n)
	})
	select {
	case rv.exportSem <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-rv.exportSem }) }, nil
	default:
		return nil, apierr.New(apierr.ErrUnavailable,
			"%d exports are being prepared or downloaded already; try again when one has finished", cap(rv.exportSem))
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

// exportName is the download name: camera and UTC range, in characters any
// file system accepts.
func exportName(camera string, start, end time.Time) string {
	safe := strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_':
			return r
		}
		return '_'
	}, camera)
	const f = "20060102T150405Z"
	return safe + "_" + start.UTC().Format(f) + "_" + end.UTC().Format(f) + ".mp4"
}

// spillWriter keeps up to limit bytes in memory, then moves to a temporary file.
type spillWriter struct {
	limit int64
	dir   string
	buf   bytes.Buffer
	f     *os.File
}

func (s *spillWriter) Write(p []byte) (int, error) {
	if s.f == nil && int64(s.buf.Len()+len(p)) > s.limit {
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
