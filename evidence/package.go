package evidence

import (
	"archive/zip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"strings"
	"time"
)

// Names of the package's own files.
const (
	ManifestName  = "manifest.json"
	SignatureName = "manifest.sig"
)

// Manifest describes a package. It is written as manifest.json and signed.
type Manifest struct {
	// Version is the manifest format, 1.
	Version int `json:"version"`
	// Incident is the incident exported, if the package is one.
	Incident *int64 `json:"incident,omitempty"`
	// Start and End are the range exported.
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Exporter is the user who exported the package, Exported the server's
	// time when it did.
	Exporter string    `json:"exporter"`
	Exported time.Time `json:"exported"`
	// Cameras are the cameras in the package.
	Cameras []Camera `json:"cameras"`
	// Omitted counts the incident's cameras left out because the exporter
	// may not see them.
	Omitted int `json:"omittedCameras,omitempty"`
	// Files are every file of the package but the manifest and signature.
	Files []File `json:"files"`
	// PublicKey is the signing key (hex) and KeyID its fingerprint.
	PublicKey string `json:"publicKey"`
	KeyID     string `json:"keyId"`
}

// Camera is one camera's part of a package.
type Camera struct {
	ID         string `json:"id"`
	Name       string `json:"name"`
	Department string `json:"department"`
	// File is the clip's name in the package; empty when nothing was
	// recorded in the range.
	File string `json:"file,omitempty"`
	// RecordedSeconds is the recorded time the clip holds.
	RecordedSeconds float64 `json:"recordedSeconds"`
	// Gaps are the stretches of the range the clip does not hold.
	Gaps []Gap `json:"gaps"`
}

// Gap is a stretch of the range without recording.
type Gap struct {
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
}

// File is a file of the package.
type File struct {
	Name   string `json:"name"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Writer streams a package to an io.Writer: files are stored as they are
// read (the clips are compressed already), never held whole in memory.
type Writer struct {
	key   Key
	zw    *zip.Writer
	sum   hash.Hash
	files []File
	names map[string]bool
}

// NewWriter starts a package on w, to be signed by key.
func NewWriter(w io.Writer, key Key) *Writer {
	sum := sha256.New()
	return &Writer{key: key, zw: zip.NewWriter(io.MultiWriter(w, sum)), sum: sum, names: map[string]bool{}}
}

// Add stores a file read from r under name, and notes its length and
// SHA-256 for the manifest.
func (pw *Writer) Add(name string, r io.Reader, modified time.Time) (File, error) {
	if name == ManifestName || name == SignatureName || pw.names[name] || !validName(name) {
		return File{}, fmt.Errorf("evidence package: bad or repeated file name %q", name)
	}
	pw.names[name] = true
	fw, err := pw.zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store, Modified: modified.UTC()})
	if err != nil {
		return File{}, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(fw, h), r)
	if err != nil {
		return File{}, fmt.Errorf("evidence package: %s: %w", name, err)
	}
	f := File{Name: name, Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}
	pw.files = append(pw.files, f)
	return f, nil
}

// Close writes the manifest (its Files, PublicKey and KeyID filled in here)
// and its signature, ends the zip, and returns the SHA-256 of the whole
// package in hex.
func (pw *Writer) Close(m Manifest) (string, error) {
	m.Version = 1
	m.Files = pw.files
	if m.Files == nil {
		m.Files = []File{}
	}
	if m.Cameras == nil {
		m.Cameras = []Camera{}
	}
	pub := pw.key.Public()
	m.PublicKey, m.KeyID = FormatPublic(pub), KeyID(pub)
	body, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return "", err
	}
	body = append(body, '\n')
	sig := base64.StdEncoding.EncodeToString(pw.key.Sign(body)) + "\n"
	for _, f := range []struct {
		name string
		b    []byte
	}{{ManifestName, body}, {SignatureName, []byte(sig)}} {
		fw, err := pw.zw.CreateHeader(&zip.FileHeader{Name: f.name, Method: zip.Store, Modified: m.Exported.UTC()})
		if err != nil {
			return "", err
		}
		if _, err := fw.Write(f.b); err != nil {
			return "", err
		}
	}
	if err := pw.zw.Close(); err != nil {
		return "", err
	}
	return hex.EncodeToString(pw.sum.Sum(nil)), nil
}

// validName accepts a plain relative file name without directories.
func validName(name string) bool {
	return name != "" && len(name) <= 255 && path.Base(name) == name && !strings.ContainsAny(name, `\/:`) &&
		name != "." && name != ".."
}

// AlteredError names what of a package does not hold.
type AlteredError struct {
	// File is the file that was altered (or is missing or extra).
	File string
	// Reason says how.
	Reason string
}

func (e *AlteredError) Error() string { return e.File + ": " + e.Reason }

// ErrOtherKey is wrapped by Verify's error when the package is signed by a
// key other than the one pinned.
var ErrOtherKey = errors.New("signed by another key")
