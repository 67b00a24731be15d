package archive_test

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder/archive"
	"github.com/vigil-vms/vigil/recorder/internal/rectest"
)

func TestLocalStore(t *testing.T) {
	s, err := archive.NewLocalStore(filepath.Join(t.TempDir(), "store"))
	if err != nil {
		t.Fatal(err)
	}
	testStoreContract(t, s)
	ctx := context.Background()
	for _, key := range []string{"", "/abs.mp4", "a/../b.mp4", "a//b.mp4", "a/./b", "dir/", `a\\b`, "a/.tmp-x"} {
		if err := s.Put(ctx, key, strings.NewReader("x"), 1, nil); err == nil {
			t.Errorf("put %q: no error", key)
		}
	}
	if err := s.Put(ctx, "short.mp4", strings.NewReader("abc"), 5, nil); err == nil {
		t.Error("put with a wrong size: no error")
	}
	if _, err := s.Get(ctx, "short.mp4", 0, -1); !errors.Is(err, archive.ErrObjectNotFound) {
		t.Errorf("a failed put left an object: %v", err)
	}
}

// testStoreContract checks what the recorder and the read side expect of a
// Store: put of a known size, ranged get, listing in key order by prefix,
// not-found errors, idempotent delete.
func testStoreContract(t *testing.T, s archive.Store) {
	t.Helper()
	ctx := context.Background()
	keys := []string{"cam-b/2026/11/26/10-00-00.000.mp4", "cam-a/2026/11/26/10-00-04.000.mp4",
		"cam-a/2026/11/26/10-00-00.000.mp4", "cam-a-2/2026/11/26/10-00-00.000.mp4"}
	for i, k := range keys {
		body := strings.Repeat(string(rune('a'+i)), 100+i)
		if err := s.Put(ctx, k, strings.NewReader(body), int64(len(body)), map[string]string{"start": "x"}); err != nil {
			t.Fatal(err)
		}
	}
	list := func(prefix string) []string {
		var got []string
		if err := s.List(ctx, prefix, func(o archive.ObjectInfo) error { got = append(got, o.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		return got
	}
	if got := strings.Join(list("cam-a/"), " "); got != keys[2]+" "+keys[1] {
		t.Errorf("list cam-a/: %s", got)
	}
	if got := list(""); len(got) != 4 || got[0] != keys[3] || got[3] != keys[0] {
		t.Errorf("list all: %v", got)
	}
	stop := errors.New("stop")
	if err := s.List(ctx, "", func(archive.ObjectInfo) error { return stop }); !errors.Is(err, stop) {
		t.Errorf("list stopped by fn: %v", err)
	}
	for _, tc := range []struct {
		off, n int64
		want   string
	}{
		{0, -1, strings.Repeat("b", 101)},
		{10, 5, "bbbbb"},
		{100, -1, "b"},
		{95, 50, "bbbbbb"},
	} {
		rc, err := s.Get(ctx, keys[1], tc.off, tc.n)
		if err != nil {
			t.Fatalf("get %d+%d: %v", tc.off, tc.n, err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || string(b) != tc.want {
			t.Errorf("get %d+%d: %q, %v", tc.off, tc.n, b, err)
		}
	}
	if _, err := s.Get(ctx, "cam-a/nope.mp4", 0, -1); !errors.Is(err, archive.ErrObjectNotFound) {
		t.Errorf("missing key: %v", err)
	}
	if err := s.Delete(ctx, keys[1]); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(ctx, keys[1]); err != nil {
		t.Errorf("second delete: %v", err)
	}
	if _, err := s.Get(ctx, keys[1], 0, -1); !errors.Is(err, archive.ErrObjectNotFound) {
		t.Errorf("deleted key: %v", err)
	}
}

func TestS3Store(t *testing.T) {
	testkit.CheckLeaks(t)
	endpoint, access, secret, bucket, _, _ := testkit.StartS3(t)
	testStoreContract(t, rectest.NewS3Store(t, endpoint, access, secret, bucket))
}

func TestParseSegmentKey(t *testing.T) {
	for _, tc := range []struct {
		key string
		ok  bool
	}{
		{"police-007/2026/11/26/08-00-00.000.mp4", true},
		{"cam/2026/11/26/23-59-59.999.mp4", true},
		{"Cam/2026/11/26/08-00-00.000.mp4", false},
		{"cam/2026/11/26/08-00-00.mp4", false},
		{"cam/2026/13/26/08-00-00.000.mp4", false},
		{"../2026/11/26/08-00-00.000.mp4", false},
		{"cam/2026/11/26/08-00-00.000.mp4.tmp", false},
	} {
		cam, start, err := archive.ParseSegmentKey(tc.key)
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.key, err)
			continue
		}
		if tc.ok && archive.SegmentKey(cam, start) != tc.key {
			t.Errorf("%s: round trip gives %s", tc.key, archive.SegmentKey(cam, start))
		}
	}
}

// TestLocalStorePutFile: a file on the store's file system is linked into
// place, not copied, and stays where it was; one on another file system
// (/dev/shm, where it is a tmpfs) is copied; a wrong size or a missing file
// fails, the latter with ErrSourceFile.
func TestLocalStorePutFile(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := archive.NewLocalStore(filepath.Join(dir, "store"))
	if err != nil {
		t.Fatal(err)
	}
	src := filepath.Join(dir, "seg.mp4")
	if err := os.WriteFile(src, []byte("fragments"), 0o600); err != nil {
		t.Fatal(err)
	}
	const key = "cam-a/2026/11/26/10-00-00.000.mp4"
	for range 2 { // the second replaces the first
		if err := s.PutFile(ctx, key, src, 9, nil); err != nil {
			t.Fatal(err)
		}
	}
	a, err := os.Stat(src)
	if err != nil {
		t.Fatalf("the source went: %v", err)
	}
	b, err := os.Stat(filepath.Join(s.Dir(), filepath.FromSlash(key)))
	if err != nil || !os.SameFile(a, b) {
		t.Errorf("stored %v (%v), not the source file itself", b, err)
	}
	if got := readAll(t, s, key); got != "fragments" {
		t.Errorf("got %q", got)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(storedPath(t, s, key)), ".tmp-*")); len(left) > 0 {
		t.Errorf("temporary names left: %v", left)
	}
	if err := s.PutFile(ctx, key, src, 5, nil); err == nil {
		t.Error("a wrong size: no error")
	}
	if err := s.PutFile(ctx, key, filepath.Join(dir, "gone.mp4"), 5, nil); !errors.Is(err, archive.ErrSourceFile) || !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("a missing file: %v", err)
	}

	shm, err := os.MkdirTemp("/dev/shm", "putfile-")
	if err != nil {
		t.Skip("no /dev/shm")
	}
	t.Cleanup(func() { os.RemoveAll(shm) })
	other := filepath.Join(shm, "seg.mp4")
	if err := os.WriteFile(other, []byte("elsewhere"), 0o600); err != nil {
		t.Fatal(err)
	}
	const key2 = "cam-b/2026/11/26/10-00-00.000.mp4"
	if err := s.PutFile(ctx, key2, other, 9, nil); err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, key2); got != "elsewhere" {
		t.Errorf("copied %q", got)
	}
}

func readAll(t *testing.T, s archive.Store, key string) string {
	t.Helper()
	rc, err := s.Get(context.Background(), key, 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func storedPath(t *testing.T, s *archive.LocalStore, key string) string {
	t.Helper()
	return filepath.Join(s.Dir(), filepath.FromSlash(key))
}
