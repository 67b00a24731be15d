package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/app"
	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
	"github.com/vigil-vms/vigil/internal/testkit/testdb"
	"github.com/vigil-vms/vigil/registry"
)

// TestMain lets a test run this binary's main as a subprocess.
func TestMain(m *testing.M) {
	if os.Getenv("VIGIL_TEST_RUN_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// SIGTERM while recording to a real S3 server: the open segments are closed
// and uploaded, and the process exits within 10 s.
func TestSIGTERMUploadsOpenSegments(t *testing.T) {
	endpoint, ak, sk, bucket, _, _ := testkit.StartS3(t)
	sim := simcam.Start(t, camsim.Options{Count: 2, Codec: "h264"})

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "vigil.db")
	cfgPath := filepath.Join(dir, "vigil.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`
http: { listen: "127.0.0.1:0" }
webrtc: { udpPort: 0 }
storage: { backend: s3, s3: { endpoint: %q, bucket: %q, region: us-east-1, tls: false } }
recording: { spoolDir: %q, segment: 30s }
database: { path: %q }
`, endpoint, bucket, filepath.Join(dir, "spool"), dbPath)), 0o600)

	// register the cameras before the server starts
	ctx := context.Background()
	db := testdb.Open(t, dbPath)
	reg, err := registry.Open(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 2; i++ {
		c := ingest.Camera{ID: fmt.Sprintf("cam-%d", i), Name: "Cam", Department: "police",
			MainURL: sim.URL(i, false), Transport: "tcp", Record: true, Enabled: true}
		if _, err := reg.CreateCamera(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Args = append(cmd.Args[:1], "serve", "--config", cfgPath)
	cmd.Env = append(os.Environ(), "VIGIL_TEST_RUN_MAIN=1", "VIGIL_ADMIN_PASSWORD=sigterm-test-pw",
		"VIGIL_STORAGE_S3_ACCESSKEY="+ak, "VIGIL_STORAGE_S3_SECRETKEY="+sk)
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	// wait until both cameras record, then a few seconds into the 30 s segment
	online := make(chan struct{})
	var logs strings.Builder
	go func() {
		sc := bufio.NewScanner(stderr)
		n := 0
		for sc.Scan() {
			logs.WriteString(sc.Text() + "\n")
			if strings.Contains(sc.Text(), "camera stream online") {
				if n++; n == 2 {
					close(online)
				}
			}
		}
	}()
	select {
	case <-online:
	case <-time.After(30 * time.Second):
		t.Fatalf("cameras not online; logs:\n%s", logs.String())
	}
	time.Sleep(5 * time.Second) // record into the open segment: this is the content under test
	stopAt := time.Now()
	cmd.Process.Signal(syscall.SIGTERM)
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	testkit.Returned(t, waitErr, 10*time.Second, "vigil after SIGTERM")
	t.Logf("exited %s after SIGTERM", time.Since(stopAt).Round(time.Millisecond))

	// every camera's open segment reached the store and the index
	cfg, err := config.Load(cfgPath, []string{"VIGIL_STORAGE_S3_ACCESSKEY=" + ak, "VIGIL_STORAGE_S3_SECRETKEY=" + sk})
	if err != nil {
		t.Fatal(err)
	}
	db2, ix, store, err := app.OpenIndexAndStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db2.Close()
	for i := 1; i <= 2; i++ {
		id := fmt.Sprintf("cam-%d", i)
		segs, err := ix.Segments(ctx, id, stopAt.Add(-time.Hour), stopAt.Add(time.Hour), false)
		if err != nil || len(segs) == 0 {
			t.Fatalf("%s: no segment after SIGTERM (%v)", id, err)
		}
		last := segs[len(segs)-1]
		if d := last.End.Sub(last.Start); d < 3*time.Second {
			t.Errorf("%s: last segment lasts %s, want the ~5 s recorded before SIGTERM", id, d)
		}
		if gap := stopAt.Sub(last.End); gap > 3*time.Second {
			t.Errorf("%s: last segment ends %s before SIGTERM", id, gap)
		}
		rc, err := store.Get(ctx, last.Key, 0, -1)
		if err != nil {
			t.Fatalf("%s: %s not in S3: %v", id, last.Key, err)
		}
		rc.Close()
	}
}
