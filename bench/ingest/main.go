// Command ingest is the ingest load harness: it starts `vigil camsim` with N
// cameras as a separate process, pulls every camera through an
// ingest.Fleet in this process (one draining subscriber per stream, as a
// recorder would be), and reports this process's CPU and resident memory, in
// total and per camera. camsim runs in its own process, so none of its cost is
// counted in the figures (its CPU is printed apart).
//
//	go run ./bench/ingest -cameras 50 -duration 30s
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/benchkit"
	"github.com/vigil-vms/vigil/internal/procstat"
)

func main() { benchkit.Main("bench/ingest", run) }

func run() error {
	common := benchkit.CommonFlags(30*time.Second, "online")
	transport := flag.String("transport", "tcp", "RTSP transport: auto, tcp or udp")
	codec := flag.String("codec", "h264", "camsim codec: h264 or h265")
	bitrate := flag.String("bitrate", "high", "camsim main stream bitrate: high (~2 Mbit/s, h264 only) or normal (~1.1 Mbit/s)")
	sub := flag.Bool("sub", false, "also pull every camera's sub-stream")
	flag.Parse()
	ctx, dir, done, err := common.Start()
	if err != nil {
		return err
	}
	defer done()
	sim, err := common.StartSim(ctx, dir, "--codec", *codec, "--bitrate", *bitrate)
	if err != nil {
		return err
	}
	defer sim.Stop()
	urls := sim.URLs

	runtime.GC()
	baseRSS, _ := procstat.StatusKB("VmRSS")

	m := ingest.NewFleet(ingest.FleetOptions{Log: slog.New(slog.NewTextHandler(io.Discard, nil))})
	for i, u := range urls {
		c := ingest.Camera{ID: fmt.Sprintf("cam%d", i+1), MainURL: u[0], Transport: *transport, Enabled: true}
		if *sub {
			c.SubURL = u[1]
		}
		m.Set(c)
	}
	mctx, mcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		m.Run(mctx)
	}()
	defer func() {
		mcancel()
		wg.Wait()
	}()
	kinds := []ingest.StreamKind{ingest.Main}
	if *sub {
		kinds = append(kinds, ingest.Sub)
	}
	for i := range urls {
		for _, k := range kinds {
			s := m.Stream(fmt.Sprintf("cam%d", i+1), k).Subscribe(ingest.SubscribeOptions{Kind: ingest.Recorder, QueueLen: 1024})
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer s.Close()
				_ = s.Drain(mctx)
			}()
		}
	}

	took, err := benchkit.AwaitCount(ctx, len(urls), 60*time.Second, "online", func() int {
		online := 0
		for _, st := range m.Statuses() {
			if st.State == ingest.StateOnline {
				online++
			}
		}
		return online
	})
	if err != nil {
		return err
	}
	fmt.Printf("%d cameras online after %s; measuring for %s\n", len(urls), took.Round(time.Millisecond), *common.Duration)

	w, err := benchkit.Measure(ctx, *common.Duration, sim.Cmd.Process.Pid)
	if err != nil {
		return err
	}

	var fps float64
	var kbps, reconnects int
	var dropped uint64
	online := 0
	for _, st := range m.Statuses() {
		if st.State == ingest.StateOnline {
			online++
		}
		if st.Video != nil {
			fps += st.Video.FPS
			kbps += st.Video.BitrateKbps
		}
		reconnects += st.Reconnects
		dropped += st.Dropped
	}
	n := float64(len(urls))
	cpuPct := w.Percent(w.CPU)
	simPct := w.Percent(w.Apart[0])
	fmt.Printf("cameras: %d (online at the end: %d), streams per camera: %d, transport %s, codec %s, bitrate %s\n",
		len(urls), online, len(kinds), *transport, *codec, *bitrate)
	fmt.Printf("media: %.1f fps and %.1f Mbit/s in total (main streams: %.1f fps, %d kbit/s per camera); reconnects %d, dropped units %d\n",
		fps, float64(kbps)/1000, fps/n, kbps/len(urls), reconnects, dropped)
	fmt.Printf("ingest CPU: %.1f %% of one core in total, %.2f %% per camera (%d cores on this machine)\n",
		cpuPct, cpuPct/n, runtime.NumCPU())
	fmt.Printf("ingest memory: %s\n", w.Memory(baseRSS, len(urls)))
	fmt.Printf("camsim (separate process, not counted above): CPU %.1f %% of one core\n", simPct)
	return nil
}
