package testkit

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

// SharedS3 starts one server for the test binary and gives each caller a
// bucket name of its own; a bucket's directory goes with the test that
// asked for it, and StopSharedS3 stops the server and removes the rest.
func TestSharedS3(t *testing.T) {
	var first, second string
	var endpoint string
	t.Run("a", func(t *testing.T) {
		endpoint, _, _, first = SharedS3(t)
		// what the posix backend makes of a bucket the store creates
		if err := os.Mkdir(filepath.Join(sharedS3.dir, "data", first), 0o755); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := os.Stat(filepath.Join(sharedS3.dir, "data", first)); !os.IsNotExist(err) {
		t.Fatalf("bucket %s left behind by its test: %v", first, err)
	}
	t.Run("b", func(t *testing.T) {
		var ep string
		ep, _, _, second = SharedS3(t)
		if ep != endpoint {
			t.Fatalf("a second server: %s, then %s", endpoint, ep)
		}
	})
	if first == second || first == "" {
		t.Fatalf("buckets %q and %q", first, second)
	}
	resp, err := http.Get("http://" + endpoint + "/")
	if err != nil {
		t.Fatalf("the shared server does not answer: %v", err)
	}
	resp.Body.Close()
	dir := sharedS3.dir
	StopSharedS3()
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("directory %s left after StopSharedS3: %v", dir, err)
	}
	if _, err := http.Get("http://" + endpoint + "/"); err == nil {
		t.Fatal("the shared server still answers after StopSharedS3")
	}
}
