package evidence

import (
	"archive/zip"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testKey(t *testing.T) Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return NewKey(priv)
}

// buildPackage writes a package of two clips.
func buildPackage(t *testing.T, key Key) []byte {
	t.Helper()
	var buf bytes.Buffer
	pw := NewWriter(&buf, key)
	now := time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC)
	for _, f := range []struct{ name, body string }{
		{"cam1.mp4", "ftyp-clip-one-" + strings.Repeat("A", 3000)},
		{"cam2.mp4", "ftyp-clip-two-" + strings.Repeat("B", 3000)},
	} {
		if _, err := pw.Add(f.name, strings.NewReader(f.body), now); err != nil {
			t.Fatal(err)
		}
	}
	sum, err := pw.Close(Manifest{Start: now.Add(-time.Hour), End: now, Exporter: "alice", Exported: now,
		Cameras: []Camera{{ID: "cam1", File: "cam1.mp4"}, {ID: "cam2", File: "cam2.mp4"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(sum) != 64 {
		t.Fatalf("package sum %q", sum)
	}
	return buf.Bytes()
}

func verify(b []byte, pin ed25519.PublicKey) (Manifest, error) {
	return Verify(bytes.NewReader(b), int64(len(b)), pin)
}

// rezip rebuilds a package with one entry's content changed by edit, with
// a correct zip checksum, as a careful forger would.
func rezip(t *testing.T, b []byte, name string, edit func([]byte) []byte) []byte {
	return rebuildZip(t, b, name, edit, "")
}

// addFile rebuilds a package with one more entry, name, holding "x".
func addFile(t *testing.T, b []byte, name string) []byte {
	return rebuildZip(t, b, "", nil, name)
}

// rebuildZip rewrites every entry of a package, the one called name changed
// by edit, and appends an entry called add unless add is empty.
func rebuildZip(t *testing.T, b []byte, name string, edit func([]byte) []byte, add string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(b), int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	zw := zip.NewWriter(&out)
	write := func(name string, body []byte) {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Store})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(body)
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if f.Name == name {
			body = edit(body)
		}
		write(f.Name, body)
	}
	if add != "" {
		write(add, []byte("x"))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func flipOne(b []byte, at int) []byte {
	c := bytes.Clone(b)
	c[at] ^= 0x01
	return c
}

func TestVerify(t *testing.T) {
	key := testKey(t)
	pkg := buildPackage(t, key)
	m, err := verify(pkg, nil)
	if err != nil {
		t.Fatalf("a fresh package does not verify: %v", err)
	}
	if m.Exporter != "alice" || len(m.Files) != 2 || m.KeyID != KeyID(key.Public()) || len(m.Cameras) != 2 {
		t.Fatalf("manifest %+v", m)
	}
	if _, err := verify(pkg, key.Public()); err != nil {
		t.Fatalf("pinned to its own key: %v", err)
	}

	rawAt := func(s string) int {
		i := bytes.Index(pkg, []byte(s))
		if i < 0 {
			t.Fatalf("%q not in the package", s)
		}
		return i
	}
	other := testKey(t)
	cases := []struct {
		name string
		pkg  []byte
		pin  ed25519.PublicKey
		file string // the file named, or "" for ErrOtherKey
	}{
		{"a byte of a video (raw)", flipOne(pkg, rawAt("clip-two")+100), nil, "cam2.mp4"},
		{"a byte of a video (zip rebuilt)", rezip(t, pkg, "cam1.mp4", func(b []byte) []byte { return flipOne(b, 50) }), nil, "cam1.mp4"},
		{"a byte of the manifest (raw)", flipOne(pkg, rawAt(`"alice"`)+2), nil, ManifestName},
		{"a byte of the manifest (zip rebuilt)", rezip(t, pkg, ManifestName, func(b []byte) []byte {
			return bytes.Replace(b, []byte(`"alice"`), []byte(`"alicf"`), 1)
		}), nil, ManifestName},
		{"a listed hash rewritten", rezip(t, pkg, ManifestName, func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"sha256": "`)) + 11
			return flipOne(b, i)
		}), nil, ManifestName},
		// a signature of other bytes: the manifest and the signature disagree
		{"the signature replaced", rezip(t, pkg, SignatureName, func([]byte) []byte {
			return []byte(base64.StdEncoding.EncodeToString(key.Sign([]byte("other"))) + "\n")
		}), nil, ManifestName},
		{"the signature garbled", rezip(t, pkg, SignatureName, func(b []byte) []byte { return append([]byte("!"), b[1:]...) }), nil, SignatureName},
		{"signed by another key, pinned", buildPackage(t, other), key.Public(), ""},
		{"a file added", addFile(t, pkg, "extra.txt"), nil, "extra.txt"},
		// a manifest naming another key without that key's signature is
		// altered, not "signed by another key"
		{"the key named rewritten, pinned", rezip(t, pkg, ManifestName, func(b []byte) []byte {
			return bytes.Replace(b, []byte(FormatPublic(key.Public())), []byte(FormatPublic(other.Public())), 1)
		}), key.Public(), ManifestName},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := verify(tc.pkg, tc.pin)
			if err == nil {
				t.Fatal("verified")
			}
			if tc.file == "" {
				if !errors.Is(err, ErrOtherKey) {
					t.Fatalf("err %v, want ErrOtherKey", err)
				}
				return
			}
			var ae *AlteredError
			if !errors.As(err, &ae) || ae.File != tc.file {
				t.Fatalf("err %v, want one naming %s", err, tc.file)
			}
		})
	}
	// a package signed by another key is fine without a pin: it is
	// self-consistent, and its key id tells whose it is
	m, err = verify(buildPackage(t, other), nil)
	if err != nil || m.KeyID != KeyID(other.Public()) {
		t.Fatalf("unpinned other key: %v %s", err, m.KeyID)
	}
}

func TestAddRefusesBadNames(t *testing.T) {
	pw := NewWriter(io.Discard, testKey(t))
	for _, name := range []string{"", ManifestName, SignatureName, "../x.mp4", "a/b.mp4", `a\b`} {
		if _, err := pw.Add(name, strings.NewReader("x"), time.Now()); err == nil {
			t.Errorf("Add(%q) accepted", name)
		}
	}
	if _, err := pw.Add("a.mp4", strings.NewReader("x"), time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Add("a.mp4", strings.NewReader("x"), time.Now()); err == nil {
		t.Error("a repeated name was accepted")
	}
}

func TestLoadKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), KeyFile)
	k1, created, err := LoadKey(path)
	if err != nil || !created {
		t.Fatalf("first start: created %v err %v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("key file mode %v, want 0600", st.Mode().Perm())
	}
	k2, created, err := LoadKey(path)
	if err != nil || created {
		t.Fatalf("restart: created %v err %v", created, err)
	}
	if !k1.Public().Equal(k2.Public()) {
		t.Fatal("the key changed across restarts")
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a key readable by others: %v", err)
	}
	bad := filepath.Join(t.TempDir(), KeyFile)
	os.WriteFile(bad, []byte("not a key\n"), 0o600)
	if _, _, err := LoadKey(bad); err == nil {
		t.Fatal("a garbled key file was accepted")
	}
}

func TestParsePublic(t *testing.T) {
	k := testKey(t)
	for _, s := range []string{FormatPublic(k.Public()), FormatPublic(k.Public()) + "  key id " + KeyID(k.Public()) + "\n"} {
		p, err := ParsePublic(s)
		if err != nil || !p.Equal(k.Public()) {
			t.Fatalf("ParsePublic(%q): %v", s, err)
		}
	}
	for _, s := range []string{"", "zz", "abcd"} {
		if _, err := ParsePublic(s); err == nil {
			t.Errorf("ParsePublic(%q) accepted", s)
		}
	}
}

// FuzzVerify: no package, however broken, panics Verify or verifies
// without being the signed package.
func FuzzVerify(f *testing.F) {
	key := NewKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize)))
	var buf bytes.Buffer
	pw := NewWriter(&buf, key)
	pw.Add("a.mp4", strings.NewReader("clip"), time.Unix(0, 0))
	if _, err := pw.Close(Manifest{Exporter: "x", Exported: time.Unix(0, 0)}); err != nil {
		f.Fatal(err)
	}
	good := buf.Bytes()
	f.Add(good)
	f.Add([]byte("PK\x05\x06" + strings.Repeat("\x00", 18)))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Verify(bytes.NewReader(b), int64(len(b)), key.Public())
		if err != nil {
			return
		}
		// what verifies holds exactly the signed files
		if len(m.Files) != 1 || m.Files[0].Name != "a.mp4" || m.Files[0].Size != 4 {
			t.Fatalf("verified a different package: %+v", m)
		}
	})
}
