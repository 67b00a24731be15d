// Command benchrec measures ingest plus recording: it starts `vigil camsim`
// with N cameras as a separate process (and versitygw for -store s3, also
// apart), pulls every camera through an ingest.Fleet and records it with a
// Recorder in this process, and reports this process's CPU and memory per
// camera, its OS threads, the bytes it wrote to and read from the disk
// (/proc/self/io) against the bytes received, the bytes stored against the
// bytes received, and how long the stop takes (the recorder's part of a
// SIGTERM: close every open segment and upload what waits, within -grace).
//
//	go run ./recorder/internal/benchrec -cameras 50 -duration 60s -store local
//	go run ./recorder/internal/benchrec -cameras 50 -duration 60s -store s3
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"time"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/benchkit"
	"github.com/vigil-vms/vigil/internal/procstat"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/internal/testkit"
	"github.com/vigil-vms/vigil/recorder"
	"github.com/vigil-vms/vigil/recorder/archive"
)

func main() { benchkit.Main("benchrec", run) }

func run() error {
	common := benchkit.CommonFlags(60*time.Second, "recording")
	segment := flag.Duration("segment", 10*time.Second, "segment length")
	stagger := flag.Bool("stagger", true, "stagger the cameras' segment boundaries, as the server does")
	staggerGOPs := flag.Bool("stagger-gops", true, "camsim --stagger: the cameras' keyframes apart, as with real cameras (false: all at the same instant)")
	storeKind := flag.String("store", "local", "local or s3 (versitygw, started apart)")
	audio := flag.Bool("audio", false, "cameras with AAC audio")
	bitrate := flag.String("bitrate", "high", "camsim main stream bitrate: high (~2 Mbit/s) or normal (~1.1 Mbit/s)")
	sub := flag.Bool("sub", false, "record each camera's sub-stream (640x360, ~0.34 Mbit/s) instead of its main stream")
	keep := flag.String("keep", "", "after the run, copy the stored segments (local store only) into this directory")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile of the measuring window to this file")
	memProfile := flag.String("memprofile", "", "write a heap profile at the end of the measuring window to this file")
	grace := flag.Duration("grace", 7*time.Second, "the recorder's shutdown grace (vigil serve gives it its 8 s grace less 1 s)")
	flag.Parse()
	ctx, dir, done, err := common.Start()
	if err != nil {
		return err
	}
	defer done()

	if *keep != "" && *storeKind != "local" {
		return errors.New("-keep needs -store local")
	}
	simFlags := []string{"--codec", "h264", "--bitrate", *bitrate}
	if *audio {
		simFlags = append(simFlags, "--audio")
	}
	if *staggerGOPs {
		simFlags = append(simFlags, "--stagger")
	}
	sim, err := common.StartSim(ctx, dir, simFlags...)
	if err != nil {
		return err
	}
	defer sim.Stop()
	urls := make([]string, len(sim.URLs))
	for i, p := range sim.URLs {
		urls[i] = p[0]
		if *sub {
			urls[i] = p[1]
		}
	}

	var store archive.Store
	var gwPid int
	switch *storeKind {
	case "local":
		if store, err = archive.NewLocalStore(filepath.Join(dir, "store")); err != nil {
			return err
		}
	case "s3":
		gw, endpoint, err := startVersitygw(ctx, filepath.Join(dir, "s3"))
		if err != nil {
			return err
		}
		defer func() { gw.Process.Kill(); gw.Wait() }()
		gwPid = gw.Process.Pid
		if store, err = archive.NewS3Store(ctx, archive.S3Options{Endpoint: endpoint, Bucket: "bench",
			Region: "us-east-1", AccessKey: testkit.S3AccessKey, SecretKey: testkit.S3SecretKey}); err != nil {
			return err
		}
	default:
		return fmt.Errorf("-store %q is not local or s3", *storeKind)
	}
	db, err := sqldb.Open(ctx, sqldb.Config{Path: filepath.Join(dir, "vigil.db")})
	if err != nil {
		return err
	}
	defer db.Close()
	ix, err := archive.OpenIndex(ctx, db)
	if err != nil {
		return err
	}

	runtime.GC()
	baseRSS, _ := procstat.StatusKB("VmRSS")
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	m := ingest.NewFleet(ingest.FleetOptions{Log: quiet})
	rec, err := recorder.New(recorder.Options{Store: store, Index: ix, SegmentDuration: *segment, StaggerSegments: *stagger,
		SpoolDir: filepath.Join(dir, "spool"), ShutdownGrace: *grace, Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))}, m)
	if err != nil {
		return err
	}
	rctx, rcancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { m.Run(rctx) })
	wg.Go(func() {
		if err := rec.Run(rctx); err != nil {
			fmt.Fprintln(os.Stderr, "recorder:", err)
		}
	})
	defer func() { rcancel(); wg.Wait() }() // on early return; a second wait is harmless
	for i, u := range urls {
		c := ingest.Camera{ID: fmt.Sprintf("cam%d", i+1), MainURL: u, Transport: "tcp", Enabled: true, Record: true}
		m.Set(c)
		rec.Set(c)
	}
	took, err := benchkit.AwaitCount(ctx, len(urls), 90*time.Second, "recording", func() int { return rec.Status().Recording })
	if err != nil {
		return err
	}
	stream := "main streams at bitrate " + *bitrate
	if *sub {
		stream = "sub-streams"
	}
	fmt.Printf("%d cameras recording after %s; measuring for %s (%s, segments of %s, store %s)\n",
		len(urls), took.Round(time.Millisecond), *common.Duration, stream, *segment, *storeKind)

	st0 := rec.Status()
	io0, err := readIO()
	if err != nil {
		return err
	}
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
	}
	w, err := benchkit.Measure(ctx, *common.Duration, sim.Cmd.Process.Pid, gwPid)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return err
	}
	st1 := rec.Status()
	if *memProfile != "" {
		f, err := os.Create(*memProfile)
		if err != nil {
			return err
		}
		err = pprof.Lookup("heap").WriteTo(f, 0)
		f.Close()
		if err != nil {
			return err
		}
	}
	io1, err := readIO()
	if err != nil {
		return err
	}
	threads, _ := procstat.StatusKB("Threads")
	wall := w.Wall

	var dropped uint64
	var reconnects int
	for _, s := range m.Statuses() {
		dropped += s.Dropped
		reconnects += s.Reconnects
	}
	n := float64(len(urls))
	camSeconds := n * wall.Seconds()
	cpu := w.CPU
	fmt.Printf("CPU (ingest + recording, this process): %.1f %% of one core; %.2f CPU-ms per camera-second\n",
		cpu.Seconds()/wall.Seconds()*100, float64(cpu.Milliseconds())/camSeconds)
	fmt.Printf("memory: %s\n", w.Memory(baseRSS, len(urls)))
	recv := st1.ReceivedBytes - st0.ReceivedBytes
	stored := st1.StoredBytes - st0.StoredBytes
	fmt.Printf("recorder: received %.1f MB of media (%.0f kbit/s per camera), uploaded %d segments / %.1f MB in the window; totals: received %d B, stored %d B (%.2f %% of received), spool %d B, waiting %d, dropped %d, upload errors %d\n",
		float64(recv)/1e6, float64(recv)*8/1000/camSeconds, st1.Uploaded-st0.Uploaded, float64(stored)/1e6,
		st1.ReceivedBytes, st1.StoredBytes, float64(st1.StoredBytes)/float64(max(st1.ReceivedBytes, 1))*100,
		st1.SpoolBytes, st1.Waiting, st1.Dropped, st1.UploadErrors)
	fmt.Printf("ingest: reconnects %d, units dropped by slow subscribers %d\n", reconnects, dropped)
	wrote, read := io1.write-io0.write, io1.read-io0.read
	fmt.Printf("disk (this process, /proc/self/io): wrote %.1f MB = %.2f× the media received, read %.1f MB (%.1f Mbit/s); OS threads %d\n",
		float64(wrote)/1e6, float64(wrote)/float64(max(recv, 1)), float64(read)/1e6, float64(read)*8/1e6/wall.Seconds(), threads)
	fmt.Printf("apart (not counted above): camsim %.1f %% of one core", w.Percent(w.Apart[0]))
	if gwPid != 0 {
		fmt.Printf(", versitygw %.1f %%", w.Percent(w.Apart[1]))
	}
	fmt.Println()

	// stop: the open segments are closed and uploaded; then compare totals
	stopAt := time.Now()
	rcancel()
	wg.Wait()
	stopTook := time.Since(stopAt)
	fin := rec.Status()
	fmt.Printf("stop (ingest and recorder, as on SIGTERM): %s, grace %s; segments left waiting %d\n",
		stopTook.Round(time.Millisecond), *grace, fin.Waiting)
	fmt.Printf("after stop: received %d B of media, stored %d B in %d segments: %.2f %% of received (waiting %d, dropped %d)\n",
		fin.ReceivedBytes, fin.StoredBytes, fin.Uploaded, float64(fin.StoredBytes)/float64(max(fin.ReceivedBytes, 1))*100,
		fin.Waiting, fin.Dropped)
	if *keep != "" {
		if err := os.CopyFS(*keep, os.DirFS(filepath.Join(dir, "store"))); err != nil {
			return fmt.Errorf("keep segments: %w", err)
		}
		fmt.Printf("segments copied to %s\n", *keep)
	}
	return nil
}

// ioCounts are the bytes this process caused to be read from and written
// to the storage (read_bytes, write_bytes of /proc/self/io).
type ioCounts struct{ read, write int64 }

func readIO() (ioCounts, error) {
	b, err := os.ReadFile("/proc/self/io")
	if err != nil {
		return ioCounts{}, err
	}
	r, err1 := procstat.ParseStatusKB(string(b), "read_bytes")
	w, err2 := procstat.ParseStatusKB(string(b), "write_bytes")
	return ioCounts{r, w}, errors.Join(err1, err2)
}

// startVersitygw runs versitygw on a free port with a data directory.
func startVersitygw(ctx context.Context, dir string) (*exec.Cmd, string, error) {
	bin := testkit.VersitygwBinary()
	if bin == "" {
		return nil, "", errors.New("versitygw not found (VIGIL_VERSITYGW or PATH)")
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, "", err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, "", err
	}
	endpoint := ln.Addr().String()
	ln.Close()
	cmd := exec.CommandContext(ctx, bin, "--port", endpoint, "--region", "us-east-1", "--quiet", "posix", dir)
	cmd.Env = append(os.Environ(), "ROOT_ACCESS_KEY="+testkit.S3AccessKey, "ROOT_SECRET_KEY="+testkit.S3SecretKey)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, "", err
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		resp, err := http.Get("http://" + endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return cmd, endpoint, nil
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			cmd.Wait()
			return nil, "", fmt.Errorf("versitygw did not answer: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
