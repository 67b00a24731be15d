package relay

import (
	"context"
	"net/http/httptest"
	"sort"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// simEnv is the real chain: camsim → RTSP puller (ingest.Fleet) → hub → relay → WHEP.
type simEnv struct {
	sim    *camsim.Server
	mgr    *ingest.Fleet
	relay  *Relay
	server *httptest.Server
}

func startSimEnv(t testing.TB, count int, codec string, audio bool) *simEnv {
	t.Helper()
	sim, err := camsim.New(camsim.Options{Addr: "127.0.0.1:0", Count: count, Codec: codec, Audio: audio})
	if err != nil {
		t.Fatal(err)
	}
	if err := sim.Start(); err != nil {
		t.Fatal(err)
	}
	mgr := ingest.NewFleet(ingest.FleetOptions{Log: quietLog(), BackoffMin: 100 * time.Millisecond, BackoffMax: 500 * time.Millisecond})
	for i := 1; i <= count; i++ {
		mgr.Set(ingest.Camera{ID: camName(i), MainURL: sim.URL(i, false), SubURL: sim.URL(i, true), Transport: "tcp", Enabled: true})
	}
	r, err := New(Options{ListenIP: "127.0.0.1", Log: quietLog()}, mgr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	mgrDone, relayDone := make(chan error, 1), make(chan error, 1)
	go func() { mgrDone <- mgr.Run(ctx) }()
	go func() { relayDone <- r.Run(ctx) }()
	<-r.Ready()
	srv := httptest.NewServer(whepHandler(r, nil))
	t.Cleanup(func() {
		srv.Close()
		cancel()
		<-relayDone
		<-mgrDone
		for i := 1; i <= count; i++ {
			mgr.Remove(camName(i))
		}
		sim.Close()
	})
	return &simEnv{sim: sim, mgr: mgr, relay: r, server: srv}
}

func camName(i int) string { return "cam" + string(rune('0'+i/10)) + string(rune('0'+i%10)) }

func TestCamsimThroughPullerToViewer(t *testing.T) {
	e := startSimEnv(t, 1, camsim.CodecH264, true) // AAC audio: skipped, video still plays
	c := newClient(t, "H264", true)
	c.mustPlay(t, e.server.URL, "/whep/cam01?stream=sub")
	testkit.WaitFor(t, 10*time.Second, "first frame", func() bool { return c.frameCount() > 0 })
	frames, _ := c.snapshot()
	checkFirstH264(t, frames, 0)

	// the camera's connection drops; the puller reconnects with the same parameters
	n := c.frameCount()
	e.sim.DropConnections()
	testkit.WaitFor(t, 10*time.Second, "frames after camsim dropped the connection", func() bool { return c.frameCount() >= n+50 })
	frames, errs := c.snapshot()
	if len(errs) > 0 {
		t.Fatalf("client errors: %v", errs)
	}
	checkTimestamps(t, frames)
	if e.relay.Sessions() != 1 {
		t.Fatalf("%d sessions, want 1 (no renegotiation)", e.relay.Sessions())
	}
	if c.audioCount() != 0 {
		t.Fatalf("%d audio packets: AAC cannot be carried and must be skipped", c.audioCount())
	}
}

// BenchmarkTimeToFirstFrame measures, over sessions against a camsim camera
// with a 2 s GOP, the time from the WHEP POST to the first decodable keyframe
// at the viewer. Reports p50 and p90 in ms.
func BenchmarkTimeToFirstFrame(b *testing.B) {
	e := startSimEnv(b, 1, camsim.CodecH264, false)
	warm := newClient(b, "H264", false) // the camera is connected and its GOP cached
	warm.mustPlay(b, e.server.URL, "/whep/cam01")
	testkit.WaitFor(b, 10*time.Second, "the first viewer", func() bool { return warm.frameCount() > 0 })
	warm.close()
	var lat []time.Duration
	for b.Loop() {
		c := newClient(b, "H264", false)
		c.mustPlay(b, e.server.URL, "/whep/cam01")
		testkit.WaitFor(b, 10*time.Second, "first frame", func() bool { return c.frameCount() > 0 })
		frames, _ := c.snapshot()
		checkFirstH264(b, frames, 0)
		lat = append(lat, frames[0].at.Sub(c.posted))
		c.close()
	}
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*9/10].Microseconds())/1000, "p90-ms")
}
