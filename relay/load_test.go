package relay

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pion/webrtc/v4"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// The CPU benchmark keeps the viewers out of the relay's process: it runs this
// test binary again as a load process (TestLoadViewers with the environment
// below), so that the relay's CPU time is measured alone.
const (
	loadURLEnv   = "VIGIL_RELAY_LOAD_URL"
	loadCountEnv = "VIGIL_RELAY_LOAD_VIEWERS"
	// profileEnv, when set, is a path prefix: each sub-benchmark writes a CPU
	// profile of its measurement window to PREFIX-<viewers>.prof.
	profileEnv = "VIGIL_RELAY_BENCH_PROFILE"
)

// TestLoadViewers is the load process of BenchmarkViewersCPU; it is skipped
// in a normal run. It connects the viewers, prints "ready", counts RTP
// packets until its stdin closes, and prints the count.
func TestLoadViewers(t *testing.T) {
	url := os.Getenv(loadURLEnv)
	if url == "" {
		t.Skip("load process of BenchmarkViewersCPU only")
	}
	n, err := strconv.Atoi(os.Getenv(loadCountEnv))
	if err != nil || n <= 0 {
		t.Fatalf("%s: %v", loadCountEnv, err)
	}
	var packets atomic.Int64
	clients := make([]*webrtc.PeerConnection, 0, n)
	for range n {
		c := newClient(t, "H264", false)
		c.pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Read(buf); err != nil {
					return
				}
				packets.Add(1)
			}
		})
		status, body := c.post(t, url, "/whep/cam1")
		if status != http.StatusCreated {
			t.Fatalf("POST: %d %s", status, body)
		}
		clients = append(clients, c.pc)
	}
	testkit.WaitFor(t, 120*time.Second, "every viewer connected", func() bool {
		for _, pc := range clients {
			if pc.ConnectionState() != webrtc.PeerConnectionStateConnected {
				return false
			}
		}
		return true
	})
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
	fmt.Println("packets", packets.Load())
	http.DefaultClient.CloseIdleConnections()
}

// BenchmarkViewersCPU measures the relay's CPU per viewer of one 2 Mbit/s
// 1280x720 H.264 camera (made with ffmpeg at run time), with the viewers in
// a separate process. Run it alone:
//
//	go test -run '^$' -bench BenchmarkViewersCPU -benchtime 1x ./relay/
func BenchmarkViewersCPU(b *testing.B) {
	testkit.Tool(b, "ffmpeg", "") // makes the 2 Mbit/s clip
	clip := filepath.Join(b.TempDir(), "cam2m.h264")
	cmd := exec.Command("ffmpeg", "-loglevel", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=1280x720:rate=25", "-t", "10",
		"-c:v", "libx264", "-preset", "veryfast", "-tune", "zerolatency", "-profile:v", "baseline", "-pix_fmt", "yuv420p",
		"-g", "50", "-keyint_min", "50", "-sc_threshold", "0", "-bf", "0", "-b:v", "2M", "-maxrate", "2M", "-bufsize", "2M",
		"-x264-params", "repeat-headers=1", "-f", "h264", clip)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	for _, n := range []int{50, 100, 200} {
		if testing.Short() && n > 50 {
			break
		}
		b.Run(strconv.Itoa(n)+"viewers", func(b *testing.B) {
			for b.Loop() {
				measureViewersCPU(b, clip, n)
			}
		})
	}
}

func measureViewersCPU(b *testing.B, clip string, n int) {
	e := startEnv(b, Options{SessionTimeout: time.Minute}, nil)
	data, err := os.ReadFile(clip)
	if err != nil {
		b.Fatal(err)
	}
	aus, err := splitAccessUnits(data, ingest.CodecH264)
	if err != nil {
		b.Fatal(err)
	}
	f := &feeder{stream: ingest.NewStream("cam1/main"), aus: aus, codec: ingest.CodecH264}
	f.media = f.stream.SetTracks(f.tracks(b))
	e.src.set("cam1", ingest.Main, f.stream)
	ctx, cancel := context.WithCancel(context.Background())
	fed := make(chan struct{})
	go func() { defer close(fed); f.run(ctx) }()
	defer func() { cancel(); <-fed }()

	if os.Getenv(profileEnv) != "" {
		runtime.MemProfileRate = 4096 // the heap profile of the viewers, finely sampled
	}
	g0, ms0 := runtime.NumGoroutine(), memStats() // before any viewer
	load := exec.Command(os.Args[0], "-test.run=^TestLoadViewers$", "-test.v")
	load.Env = append(os.Environ(), loadURLEnv+"="+e.server.URL, loadCountEnv+"="+strconv.Itoa(n))
	stdin, err := load.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout := testkit.StartPiped(b, load)
	defer func() { _ = load.Process.Kill(); _ = load.Wait() }()
	lines := bufio.NewScanner(stdout)
	ready := false
	for lines.Scan() {
		if strings.TrimSpace(lines.Text()) == "ready" {
			ready = true
			break
		}
	}
	if !ready {
		b.Fatal("the load process did not connect its viewers")
	}
	if got := e.relay.Sessions(); got != n {
		b.Fatalf("%d sessions, want %d", got, n)
	}
	dropped0, nacked0 := f.stream.Stats().Dropped, e.relay.nacked.Load()
	if prefix := os.Getenv(profileEnv); prefix != "" {
		stop := profileWindow(b, fmt.Sprintf("%s-%d.prof", prefix, n))
		defer stop()
	}
	var a0, a1 runtime.MemStats
	runtime.ReadMemStats(&a0)
	cpu0, wall0 := processCPU(), time.Now()
	const window = 5 * time.Second
	testkit.WaitFor(b, 2*window, "the measurement window", func() bool { return time.Since(wall0) >= window })
	cpu, wall := processCPU()-cpu0, time.Since(wall0)
	runtime.ReadMemStats(&a1)
	g1, ms1 := runtime.NumGoroutine(), memStats()
	if prefix := os.Getenv(profileEnv); prefix != "" {
		writeHeapProfile(b, fmt.Sprintf("%s-%d.heap", prefix, n))
		writeGoroutineProfile(b, fmt.Sprintf("%s-%d.goroutines", prefix, n))
	}
	nacked := e.relay.nacked.Load() - nacked0
	_ = stdin.Close()
	packets := int64(0)
	for lines.Scan() {
		if v, ok := strings.CutPrefix(lines.Text(), "packets "); ok {
			packets, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	share := cpu.Seconds() / wall.Seconds() // cores busy
	b.ReportMetric(100*share/float64(n), "%core/viewer")
	b.ReportMetric(float64(n)/share, "viewers/core")
	b.ReportMetric(float64(packets)/float64(n), "packets/viewer")
	b.ReportMetric(float64(f.stream.Stats().Dropped-dropped0), "dropped-units")
	b.ReportMetric(float64(nacked)/float64(n), "nacked/viewer")
	// allocation in the window (the feeder's included): what makes the GC run
	b.ReportMetric(float64(a1.TotalAlloc-a0.TotalAlloc)/1024/float64(n)/wall.Seconds(), "alloc-KB/viewer-s")
	b.ReportMetric(float64(a1.Mallocs-a0.Mallocs)/float64(packets), "allocs/packet")
	// what each viewer holds, against the relay before any viewer
	b.ReportMetric(float64(g1-g0)/float64(n), "goroutines/viewer")
	b.ReportMetric(float64(int64(ms1.StackInuse)-int64(ms0.StackInuse))/1024/float64(n), "stack-KB/viewer")
	b.ReportMetric(float64(int64(ms1.HeapInuse)-int64(ms0.HeapInuse))/1024/float64(n), "heap-KB/viewer")
}

// profileWindow writes a CPU profile of the measurement window only (the
// benchmark's -cpuprofile also covers ffmpeg, set-up and the handshakes).
func profileWindow(b *testing.B, path string) (stop func()) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		_ = f.Close()
		b.Fatal(err)
	}
	return func() {
		pprof.StopCPUProfile()
		_ = f.Close()
	}
}

// writeHeapProfile writes the live heap (after a collection) to path.
func writeHeapProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatal(err)
	}
}

// writeGoroutineProfile writes the goroutines, counted by stack, to path.
func writeGoroutineProfile(b *testing.B, path string) {
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.Lookup("goroutine").WriteTo(f, 1); err != nil {
		b.Fatal(err)
	}
}

// memStats returns the runtime's memory figures after a collection.
func memStats() runtime.MemStats {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms
}

// processCPU returns the CPU time (user + system) used by this process so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
