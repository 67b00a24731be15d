package relay

import (
	"bytes"
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// annexBDevice is an ingest.Source that sends a fixture's access units in
// real time, as a GB/T 28181 device pushes its video once invited.
type annexBDevice struct {
	aus   []accessUnit
	plays atomic.Int32
}

func (d *annexBDevice) Play(ctx context.Context, cam ingest.Camera, kind ingest.StreamKind, sink *ingest.Sink) error {
	d.plays.Add(1)
	tick := time.NewTicker(40 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		au := d.aus[i%len(d.aus)]
		annexB := bytes.Join(append([][]byte{nil}, au.nalus...), []byte{0, 0, 0, 1})
		if err := sink.WriteVideo(ingest.CodecH264, int64(i)*3600, annexB, au.key); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// TestPushedCameraStartsForViewer: a pushed camera nothing needed (idle, no
// tracks yet) is played when a viewer asks for it, in time for its offer.
func TestPushedCameraStartsForViewer(t *testing.T) {
	dev := &annexBDevice{aus: readFixture(t, "cam.h264", ingest.CodecH264)}
	fleet := ingest.NewFleet(ingest.FleetOptions{Log: quietLog(),
		Sources: map[string]ingest.Source{ingest.SourceGB28181: dev}, PushLinger: 300 * time.Millisecond})
	fleet.Set(ingest.Camera{ID: "gb-1", Enabled: true, Source: ingest.SourceGB28181,
		GB28181: &ingest.GBChannel{Device: "34020000001320000001", Channel: "34020000001310000001"}})
	stop := testkit.Run(t, fleet.Run)
	defer stop()
	e := startEnv(t, Options{TrackWait: 10 * time.Second}, nil)
	e.src.set("gb-1", ingest.Main, fleet.Stream("gb-1", ingest.Main))
	if st, _ := fleet.Status("gb-1"); st.State != ingest.StateIdle || dev.plays.Load() != 0 {
		t.Fatalf("state %q after %d plays before a viewer, want idle and none", st.State, dev.plays.Load())
	}
	c := e.watch(t, ingest.CodecH264, "/whep/gb-1", 10)
	c.close()
	testkit.WaitFor(t, 10*time.Second, "idle after the viewer left", func() bool {
		st, _ := fleet.Status("gb-1")
		return st.State == ingest.StateIdle
	})
	if n := dev.plays.Load(); n != 1 {
		t.Errorf("%d plays, want 1", n)
	}
	// idle with the tracks of the last session: played again for the next viewer
	c = e.watch(t, ingest.CodecH264, "/whep/gb-1", 10)
	c.close()
	if n := dev.plays.Load(); n != 2 {
		t.Errorf("%d plays, want 2", n)
	}
}
