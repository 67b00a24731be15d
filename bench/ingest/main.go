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
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/benchkit"
	"github.com/vigil-vms/vigil/internal/procstat"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/ingest:", err)
		os.Exit(1)
	}
}

func run() error {
	cameras := flag.Int("cameras", 50, "number of simulated cameras")
	duration := flag.Duration("duration", 30*time.Second, "measuring time, after every camera is online")
	transport := flag.String("transport", "tcp", "RTSP transport: auto, tcp or udp")
	codec := flag.String("codec", "h264", "camsim codec: h264 or h265")
	bitrate := flag.String("bitrate", "high", "camsim main stream bitrate: high (~2 Mbit/s, h264 only) or normal (~1.1 Mbit/s)")
	sub := flag.Bool("sub", false, "also pull every camera's sub-stream")
	vigilBin := flag.String("vigil", "", "vigil binary to run camsim with (default: go build ./cmd/vigil into a temporary directory)")
	flag.Parse()
	if *cameras < 1 || *duration <= 0 {
		return errors.New("-cameras and -duration must be positive")
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	bin := *vigilBin
	if bin == "" {
		dir, err := os.MkdirTemp("", "vigil-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if bin, err = benchkit.BuildVigil(ctx, dir); err != nil {
			return err
		}
	}

	sim, urls, err := benchkit.StartCamsim(ctx, bin, *cameras, "--codec", *codec, "--bitrate", *bitrate)
	if err != nil {
		return err
	}
	defer func() {
		sim.Process.Kill()
		sim.Wait()
	}()

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
				for {
					if _, _, err := s.Next(mctx); err != nil {
						return
					}
				}
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
	fmt.Printf("%d cameras online after %s; measuring for %s\n", len(urls), took.Round(time.Millisecond), *duration)

	w, err := benchkit.Measure(ctx, *duration, sim.Process.Pid)
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
	fmt.Printf("ingest memory: RSS %.1f MiB (%.1f MiB before the fleet started; peak %.1f MiB), %.0f KiB per camera; Go heap in use %.1f MiB\n",
		float64(w.RSSKB)/1024, float64(baseRSS)/1024, float64(w.PeakRSSKB)/1024, float64(w.RSSKB-baseRSS)/n, float64(w.HeapInuse)/(1<<20))
	fmt.Printf("camsim (separate process, not counted above): CPU %.1f %% of one core\n", simPct)
	return nil
}
