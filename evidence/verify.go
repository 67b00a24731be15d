package evidence

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// maxManifest bounds what Verify reads of manifest.json and manifest.sig.
const maxManifest = 16 << 20

// Verify checks a package offline: that manifest.sig is a valid signature
// of manifest.json by the key the manifest names (and, when pin is not nil,
// that this key is pin), and that every file the manifest lists is in the
// package with its length and SHA-256, and no other. What does not hold is
// an *AlteredError naming the file; a package signed by another key than
// pin fails with an error wrapping ErrOtherKey.
func Verify(r io.ReaderAt, size int64, pin ed25519.PublicKey) (Manifest, error) {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return Manifest{}, fmt.Errorf("not a readable zip: %w", err)
	}
	entries := map[string]*zip.File{}
	for _, f := range zr.File {
		if entries[f.Name] != nil {
			return Manifest{}, &AlteredError{File: f.Name, Reason: "appears twice in the package"}
		}
		entries[f.Name] = f
	}
	body, err := readEntry(entries, ManifestName)
	if err != nil {
		return Manifest{}, err
	}
	sigText, err := readEntry(entries, SignatureName)
	if err != nil {
		return Manifest{}, err
	}
	sig, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(sigText)))
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Manifest{}, &AlteredError{File: SignatureName, Reason: "not an Ed25519 signature in base64"}
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, &AlteredError{File: ManifestName, Reason: "altered: not a valid manifest (" + err.Error() + ")"}
	}
	pub, err := ParsePublic(m.PublicKey)
	if err != nil {
		return m, &AlteredError{File: ManifestName, Reason: "altered: " + err.Error()}
	}
	if !ed25519.Verify(pub, body, sig) {
		return m, &AlteredError{File: ManifestName, Reason: "altered: the signature in " + SignatureName + " does not match it (or that signature was replaced)"}
	}
	if pin != nil && !pub.Equal(pin) {
		return m, fmt.Errorf("%w: key id %s, expected %s", ErrOtherKey, KeyID(pub), KeyID(pin))
	}
	if m.KeyID != KeyID(pub) {
		return m, &AlteredError{File: ManifestName, Reason: "key id does not match its public key"}
	}
	listed := map[string]bool{ManifestName: true, SignatureName: true}
	for _, f := range m.Files {
		listed[f.Name] = true
		if err := checkFile(entries[f.Name], f); err != nil {
			return m, err
		}
	}
	var extra []string
	for name := range entries {
		if !listed[name] {
			extra = append(extra, name)
		}
	}
	if len(extra) > 0 {
		slices.Sort(extra)
		return m, &AlteredError{File: extra[0], Reason: "added: the manifest does not list it"}
	}
	return m, nil
}

func readEntry(entries map[string]*zip.File, name string) ([]byte, error) {
	f := entries[name]
	if f == nil {
		return nil, &AlteredError{File: name, Reason: "missing from the package"}
	}
	rc, err := f.Open()
	if err != nil {
		return nil, &AlteredError{File: name, Reason: "unreadable: " + err.Error()}
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxManifest+1))
	if err == nil && len(b) > maxManifest {
		err = errors.New("too large")
	}
	if err != nil {
		return nil, &AlteredError{File: name, Reason: "altered: " + err.Error()}
	}
	return b, nil
}

func checkFile(zf *zip.File, want File) error {
	if zf == nil {
		return &AlteredError{File: want.Name, Reason: "missing from the package"}
	}
	rc, err := zf.Open()
	if err != nil {
		return &AlteredError{File: want.Name, Reason: "unreadable: " + err.Error()}
	}
	defer rc.Close()
	h := sha256.New()
	n, err := io.Copy(h, rc)
	got := hex.EncodeToString(h.Sum(nil))
	switch {
	case err != nil && !errors.Is(err, zip.ErrChecksum):
		return &AlteredError{File: want.Name, Reason: "unreadable: " + err.Error()}
	case n != want.Size:
		return &AlteredError{File: want.Name, Reason: fmt.Sprintf("altered: %d bytes, the manifest says %d", n, want.Size)}
	case got != want.SHA256:
		return &AlteredError{File: want.Name, Reason: "altered: its SHA-256 is " + got + ", the manifest says " + want.SHA256}
	case err != nil:
		return &AlteredError{File: want.Name, Reason: "altered: " + err.Error()}
	}
	return nil
}
