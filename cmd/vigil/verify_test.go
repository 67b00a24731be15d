package main

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/evidence"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
)

// exportPackage records a few seconds of a simulated camera on a real
// server and downloads them as an evidence package; it returns the
// package and the configuration file.
func exportPackage(t *testing.T, dir string) (pkg []byte, cfgPath string) {
	t.Helper()
	sim := simcam.Start(t, camsim.Options{Count: 1, Codec: "h264"})
	cfgPath = writeLocalConfig(t, dir, "2s")
	cfg, err := config.Load(cfgPath, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	a, err := app.New(ctx, cfg, app.Options{AdminPassword: "verify-test-pw"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.Registry.CreateCamera(ctx, ingest.Camera{ID: "cam-1", Name: "Gate", Department: "police",
		MainURL: sim.URL(1, false), Transport: "tcp", Record: true, Enabled: true}); err != nil {
		t.Fatal(err)
	}
	_, secret, err := a.Registry.CreateToken(ctx, "admin", "verify-test")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	far := time.Now().Add(time.Hour)
	testkit.WaitFor(t, 30*time.Second, "2 segments recorded", func() bool {
		segs, _ := a.Index.Segments(context.Background(), "cam-1", time.Time{}, far, false)
		return len(segs) >= 2
	})
	<-a.Ready()
	segs, _ := a.Index.Segments(context.Background(), "cam-1", time.Time{}, far, false)
	start, end := segs[0].Start, segs[len(segs)-1].End
	req, _ := http.NewRequest("GET", a.URL()+"/api/v1/cameras/cam-1/export?format=package&start="+
		start.UTC().Format(time.RFC3339Nano)+"&end="+end.UTC().Format(time.RFC3339Nano), nil)
	req.Header.Set("Authorization", "Bearer "+secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	pkg, err = io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("export: %d %q %v %.300s", resp.StatusCode, resp.Header.Get("Content-Type"), err, pkg)
	}
	return pkg, cfgPath
}

// vigil verify passes on a package the server exported, and fails naming
// the file when one byte of the video or of the manifest changes, or when
// the package is signed by another key than the one pinned.
func TestVerifyCommand(t *testing.T) {
	dir := t.TempDir()
	pkg, cfgPath := exportPackage(t, dir)
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	verify := func(args ...string) (string, error) {
		var out bytes.Buffer
		err := run(context.Background(), append([]string{"verify"}, args...), &out, io.Discard, nil)
		return out.String(), err
	}

	// the server's key, printed and saved to pin it
	keyOut, err := verify("--key", "--config", cfgPath)
	if err != nil {
		t.Fatalf("verify --key: %v", err)
	}
	serverPub, err := evidence.ParsePublic(keyOut)
	if err != nil {
		t.Fatalf("verify --key printed %q: %v", keyOut, err)
	}
	pubFile := write("server.pub", []byte(keyOut))

	good := write("good.zip", pkg)
	out, err := verify(good)
	if err != nil || !strings.Contains(out, "valid") || !strings.Contains(out, evidence.KeyID(serverPub)) {
		t.Fatalf("verify of the exported package: %v\n%s", err, out)
	}
	for _, pin := range []string{pubFile, evidence.FormatPublic(serverPub)} {
		if out, err := verify(good, "--pubkey", pin); err != nil || !strings.Contains(out, "the key pinned") {
			t.Fatalf("verify --pubkey %s: %v\n%s", pin, err, out)
		}
	}

	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		t.Fatal(err)
	}
	var clip, manifest *zip.File
	for _, f := range zr.File {
		switch {
		case strings.HasSuffix(f.Name, ".mp4"):
			clip = f
		case f.Name == evidence.ManifestName:
			manifest = f
		}
	}
	if clip == nil || manifest == nil || clip.UncompressedSize64 < 1000 {
		t.Fatalf("package entries: %+v", zr.File)
	}
	flipIn := func(f *zip.File) []byte {
		off, err := f.DataOffset()
		if err != nil {
			t.Fatal(err)
		}
		b := bytes.Clone(pkg)
		b[off+int64(f.CompressedSize64)/2] ^= 0x01
		return b
	}

	// another key signs a package with the same clip and manifest
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	var forged bytes.Buffer
	pw := evidence.NewWriter(&forged, evidence.NewKey(otherPriv))
	rc, _ := clip.Open()
	if _, err := pw.Add(clip.Name, rc, time.Now()); err != nil {
		t.Fatal(err)
	}
	rc.Close()
	m, err := evidence.Verify(bytes.NewReader(pkg), int64(len(pkg)), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := pw.Close(m); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, file string
		pkg        []byte
		args       []string
	}{
		{"one byte of the video", clip.Name, flipIn(clip), nil},
		{"one byte of the manifest", evidence.ManifestName, flipIn(manifest), nil},
		{"signed by another key", "signed by another key", forged.Bytes(), []string{"--pubkey", pubFile}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := write("altered.zip", tc.pkg)
			_, err := verify(append([]string{path}, tc.args...)...)
			if err == nil {
				t.Fatal("verify passed")
			}
			t.Log(err)
			if !strings.Contains(err.Error(), tc.file) || !strings.Contains(err.Error(), "NOT VALID") {
				t.Fatalf("error %q does not name %s", err, tc.file)
			}
		})
	}
	// unpinned, the forged package is consistent but names another key id
	if out, err := verify(write("other.zip", forged.Bytes())); err != nil || strings.Contains(out, evidence.KeyID(serverPub)) {
		t.Fatalf("unpinned verify of another key's package: %v\n%s", err, out)
	}

	// usage errors
	for _, args := range [][]string{{}, {"--pubkey"}, {good, "--pubkey", "nonsense"}, {"--key", good}, {filepath.Join(dir, "missing.zip")}} {
		if _, err := verify(args...); err == nil {
			t.Errorf("verify %q passed", args)
		}
	}
	if _, err := verify("--key", "--config", writeLocalConfig(t, t.TempDir(), "2s")); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Errorf("verify --key without a key file: %v", err)
	}
}
