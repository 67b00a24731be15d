package app_test

import (
	"context"
	"fmt"
	"os"
	"sort"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/app/config"
	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/internal/testkit/simcam"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// TestSoakFlappingCamerasAndStorageOutage is a bounded run of what an operator
// lives with: cameras that drop their connections every few seconds and an S3
// bucket that goes away for a while. Nothing recorded may be lost: every
// segment ends up in the store and the index, gaps in recording are only the
// seconds of each reconnection, and no goroutine is left behind.
// It lasts about 45 s; VIGIL_SOAK=5m makes it longer.
func TestSoakFlappingCamerasAndStorageOutage(t *testing.T) {
	testkit.SkipShort(t, "soak test")
	run := 40 * time.Second
	if d, err := time.ParseDuration(os.Getenv("VIGIL_SOAK")); err == nil && d > run {
		run = d
	}
	// checked after every cleanup, the S3 server's included (cleanups run last-in first-out)
	testkit.CheckLeaks(t)

	endpoint, ak, sk, bucket, stopS3, restartS3 := testkit.StartS3(t)
	const cams = 3
	const drop = 15 * time.Second
	sim := simcam.Start(t, camsim.Options{Count: cams, Codec: "h264", Audio: true, DropEvery: drop})

	cfg := testConfig(t, t.TempDir())
	cfg.Storage.Backend = "s3"
	cfg.Storage.S3 = config.S3{Endpoint: endpoint, Bucket: bucket, AccessKey: ak, SecretKey: sk, Region: "us-east-1"}
	a, ctx, cancel := newApp(t, cfg)
	for i := 1; i <= cams; i++ {
		c := ingest.Camera{ID: fmt.Sprintf("cam-%d", i), Name: "Soak", Department: "police",
			MainURL: sim.URL(i, false), SubURL: sim.URL(i, true), Transport: "tcp", Record: true, Enabled: true}
		if _, err := a.Registry.CreateCamera(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	done := runApp(ctx, a)

	// the bucket is away for the middle third of the run
	time.Sleep(run / 3) // the run's own clock: content is recorded meanwhile
	stopS3()
	outageAt := time.Now()
	time.Sleep(run / 3)
	st := a.Recorder.Status()
	if st.LastUploadError == "" || st.Waiting == 0 {
		t.Errorf("during the outage the recorder reports no upload error or nothing waiting: %+v", st)
	}
	restartS3()
	t.Logf("S3 away for %s; %d segments waited in the spool", time.Since(outageAt).Round(time.Second), st.Waiting)
	time.Sleep(run - time.Since(start))
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	end := time.Now()
	if st := a.Recorder.Status(); st.Dropped != 0 || st.Waiting != 0 {
		t.Errorf("after the stop: %+v (want nothing dropped, nothing waiting)", st)
	}

	for i := 1; i <= cams; i++ {
		id := fmt.Sprintf("cam-%d", i)
		segs, err := a.Index.Segments(context.Background(), id, start.Add(-time.Minute), end.Add(time.Minute), false)
		if err != nil {
			t.Fatal(err)
		}
		keys := map[string]bool{}
		a.Store.List(context.Background(), id+"/", func(o archive.ObjectInfo) error { keys[o.Key] = true; return nil })
		if len(keys) != len(segs) {
			t.Errorf("%s: %d objects in the store, %d rows in the index", id, len(keys), len(segs))
		}
		sort.Slice(segs, func(i, j int) bool { return segs[i].Start.Before(segs[j].Start) })
		var covered time.Duration
		for j, s := range segs {
			if !keys[s.Key] {
				t.Errorf("%s: %s indexed but not stored", id, s.Key)
			}
			covered += s.End.Sub(s.Start)
			if j > 0 {
				// a reconnection costs the backoff (1 s), the session set-up and
				// up to a GOP (2 s) waiting for a keyframe
				if gap := s.Start.Sub(segs[j-1].End); gap > 6*time.Second {
					t.Errorf("%s: %s without recording before %s", id, gap.Round(time.Millisecond), s.Key)
				}
			}
		}
		reconnects := int(end.Sub(start) / drop)
		// the first second or two is the first connection; each drop costs a few seconds
		if min := end.Sub(start) - 3*time.Second - time.Duration(reconnects)*5*time.Second; covered < min {
			t.Errorf("%s: %s recorded of %s (want at least %s)", id, covered.Round(time.Second), end.Sub(start).Round(time.Second), min.Round(time.Second))
		}
		t.Logf("%s: %d segments, %s recorded of %s", id, len(segs), covered.Round(time.Second), end.Sub(start).Round(time.Second))
	}
}
