// Command gbps measures what a GB/T 28181 camera costs Vigil against an RTSP
// camera with the same video: N cameras ingested and recorded, CPU time of
// this process per camera-second, read from /proc (utime+stime).
//
// PS phase: a child process (this binary with -send) plays the devices: it
// loops camsim's 2 Mbit/s 1280x720 H.264 clip (camsim/media/h264_main_high.ts)
// as MPEG-PS the way GB/T 28181 cameras write it (ps.Muxer: pack header,
// system header and PSM before every keyframe), in RTP over UDP, one SSRC per
// camera, in real time. This process receives them on one media.Server port,
// demuxes, writes the units into ingest through the Sink (as the GB/T 28181
// gateway does) and records every camera with the recorder to a local store.
//
// RTSP phase: `vigil camsim --bitrate high` serves the same clip over RTSP;
// an ingest.Fleet pulls it (TCP) and the recorder records it the same way.
//
// The senders (child process, camsim) run apart and their CPU is printed
// apart, not counted.
//
//	go run ./bench/gbps -cameras 20 -duration 30s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pion/rtp"

	"github.com/vigil-vms/vigil/gb28181/media"
	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/benchkit"
	"github.com/vigil-vms/vigil/internal/procstat"
	"github.com/vigil-vms/vigil/internal/sqldb"
	"github.com/vigil-vms/vigil/recorder"
	"github.com/vigil-vms/vigil/recorder/archive"
)

const ssrcBase = 100000000

var cpuProfile *string

func main() { benchkit.Main("bench/gbps", run) }

func run() error {
	common := benchkit.CommonFlags(30*time.Second, "recording")
	clip := flag.String("clip", "camsim/media/h264_main_high.ts", "the video (MPEG-TS, H.264) both phases play")
	phases := flag.String("phases", "ps,rtsp", "phases to run: ps, rtsp or both")
	transport := flag.String("transport", "udp", "PS transport: udp or tcp (tcp-passive: the devices connect to the media port)")
	cpuProfile = flag.String("cpuprofile", "", "write a CPU profile of each measuring window to this file, suffixed with the phase")
	send := flag.String("send", "", "internal: play the devices, sending to this address")
	flag.Parse()
	if *transport != "udp" && *transport != "tcp" {
		return fmt.Errorf("-transport %q: want udp or tcp", *transport)
	}
	if *send != "" {
		return sendDevices(*send, *transport, *clip, *common.Cameras)
	}
	ctx, dir, done, err := common.Start()
	if err != nil {
		return err
	}
	defer done()
	type result struct {
		name string
		cpu  float64 // percent of one core per camera
	}
	var results []result
	for _, phase := range strings.Split(*phases, ",") {
		var pct float64
		switch phase {
		case "ps":
			pct, err = runPS(ctx, dir, *clip, *transport, *common.Cameras, *common.Duration)
		case "rtsp":
			pct, err = runRTSP(ctx, dir, common)
		default:
			err = fmt.Errorf("unknown phase %q", phase)
		}
		if err != nil {
			return fmt.Errorf("%s: %w", phase, err)
		}
		results = append(results, result{phase, pct})
	}
	cpu := map[string]float64{}
	for _, r := range results {
		cpu[r.name] = r.cpu
	}
	if cpu["ps"] > 0 && cpu["rtsp"] > 0 {
		fmt.Printf("PS/RTSP CPU ratio: %.2f\n", cpu["ps"]/cpu["rtsp"])
	}
	return nil
}

// recording runs a fleet (with sources for pushed cameras) and a recorder
// into a local store under dir, records cams, waits until every camera is
// online and measures for d; apart are the senders' pids.
func recording(ctx context.Context, dir, name string, sources map[string]ingest.Source, cams []ingest.Camera, d time.Duration, apart int) (float64, error) {
	runtime.GC()
	baseRSS, _ := procstat.StatusKB("VmRSS")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	fleet := ingest.NewFleet(ingest.FleetOptions{Log: log, Sources: sources})
	store, err := archive.NewLocalStore(filepath.Join(dir, name, "store"))
	if err != nil {
		return 0, err
	}
	db, err := sqldb.Open(ctx, sqldb.Config{Path: filepath.Join(dir, name, "vigil.db")})
	if err != nil {
		return 0, err
	}
	defer db.Close()
	ix, err := archive.OpenIndex(ctx, db)
	if err != nil {
		return 0, err
	}
	rec, err := recorder.New(recorder.Options{Store: store, Index: ix, SpoolDir: filepath.Join(dir, name, "spool"), Log: log}, fleet)
	if err != nil {
		return 0, err
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { fleet.Run(rctx) })
	wg.Go(func() { rec.Run(rctx) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	for _, c := range cams {
		fleet.Set(c)
		rec.Set(c)
	}
	took, err := benchkit.AwaitCount(ctx, len(cams), 60*time.Second, "recording", func() int {
		return rec.Status().Recording
	})
	if err != nil {
		return 0, err
	}
	fmt.Printf("%s: %d cameras recording after %s; measuring for %s\n", name, len(cams), took.Round(time.Millisecond), d)
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile + "." + name)
		if err != nil {
			return 0, err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return 0, err
		}
	}
	w, err := benchkit.Measure(ctx, d, apart)
	if *cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if err != nil {
		return 0, err
	}
	var fps float64
	var kbps, reconnects int
	var dropped uint64
	for _, st := range fleet.Statuses() {
		if st.Video != nil {
			fps += st.Video.FPS
			kbps += st.Video.BitrateKbps
		}
		reconnects += st.Reconnects
		dropped += st.Dropped
	}
	n := float64(len(cams))
	pct := w.Percent(w.CPU)
	rs := rec.Status()
	fmt.Printf("%s: %.1f fps, %d kbit/s per camera; recording %d, reconnects %d, dropped units %d, segments dropped %d\n",
		name, fps/n, kbps/len(cams), rs.Recording, reconnects, dropped, rs.Dropped)
	fmt.Printf("%s: CPU %.1f %% of one core in total, %.2f %% per camera = %.1f ms CPU per camera-second (%d cores)\n",
		name, pct, pct/n, w.CPU.Seconds()*1000/n/w.Wall.Seconds(), runtime.NumCPU())
	fmt.Printf("%s: memory %s\n", name, w.Memory(baseRSS, len(cams)))
	fmt.Printf("%s: sender (separate process, not counted): CPU %.1f %% of one core\n", name, w.Percent(w.Apart[0]))
	return pct / n, nil
}

func runRTSP(ctx context.Context, dir string, common benchkit.Flags) (float64, error) {
	sim, err := common.StartSim(ctx, dir, "--codec", "h264", "--bitrate", "high")
	if err != nil {
		return 0, err
	}
	defer sim.Stop()
	var cams []ingest.Camera
	for i, u := range sim.URLs {
		cams = append(cams, ingest.Camera{ID: fmt.Sprintf("rtsp%d", i+1), MainURL: u[0], Transport: "tcp", Enabled: true, Record: true})
	}
	return recording(ctx, dir, "rtsp", nil, cams, *common.Duration, sim.Cmd.Process.Pid)
}

// gbSource plays a pushed camera from the media server, as the GB/T 28181
// gateway does once the device accepted the INVITE.
type gbSource struct {
	srv       *media.Server
	transport string

	mu    sync.Mutex
	stats media.ReceiverStats // of the ended sessions
}

func (g *gbSource) Play(ctx context.Context, cam ingest.Camera, kind ingest.StreamKind, sink *ingest.Sink) error {
	n, _ := strconv.Atoi(strings.TrimPrefix(cam.ID, "gb"))
	r, err := g.srv.Expect(uint32(ssrcBase+n), "127.0.0.1", g.transport)
	if err != nil {
		return err
	}
	defer func() {
		r.Close()
		st := r.Stats()
		g.mu.Lock()
		g.stats.Packets += st.Packets
		g.stats.Lost += st.Lost
		g.stats.Dropped += st.Dropped
		g.stats.Units += st.Units
		g.mu.Unlock()
	}()
	var werr error
	r.OnUnit = func(u *ps.Unit) {
		if werr != nil {
			return
		}
		switch u.Type {
		case ps.TypeH264:
			werr = sink.WriteVideo(ingest.CodecH264, u.PTS, u.Payload, u.Keyframe)
		case ps.TypeH265:
			werr = sink.WriteVideo(ingest.CodecH265, u.PTS, u.Payload, u.Keyframe)
		}
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := r.WaitStart(wctx); err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func runPS(ctx context.Context, dir, clip, transport string, n int, d time.Duration) (float64, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	addr, mt := pc.LocalAddr().String(), media.TransportUDP
	if transport == "tcp" {
		addr, mt = l.Addr().String(), media.TransportTCPPassive
	}
	srv := &media.Server{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(sctx, pc, l) })
	defer func() {
		cancel()
		wg.Wait()
	}()
	self, err := os.Executable()
	if err != nil {
		return 0, err
	}
	cmd := exec.CommandContext(ctx, self, "-send", addr, "-transport", transport, "-clip", clip, "-cameras", strconv.Itoa(n))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	var cams []ingest.Camera
	for i := range n {
		cams = append(cams, ingest.Camera{ID: fmt.Sprintf("gb%d", i+1), Enabled: true, Record: true, Source: ingest.SourceGB28181,
			GB28181: &ingest.GBChannel{Device: "34020000001320000001", Channel: fmt.Sprintf("340200000013100%05d", i+1)}})
	}
	src := &gbSource{srv: srv, transport: mt}
	fmt.Printf("ps: RTP over %s\n", mt)
	pct, err := recording(ctx, dir, "ps", map[string]ingest.Source{ingest.SourceGB28181: src}, cams, d, cmd.Process.Pid)
	st := srv.Stats()
	fmt.Printf("ps: receivers: %d RTP packets, %d lost (%.2f %%), %d dropped (queue full), %d units; media server: %d unknown-SSRC packets (before each camera was invited), %d garbage\n",
		src.stats.Packets, src.stats.Lost, 100*float64(src.stats.Lost)/float64(max(1, src.stats.Packets+src.stats.Lost)), src.stats.Dropped, src.stats.Units, st.UnknownSSRC, st.Garbage)
	return pct, err
}

// loadUnits reads the clip's access units: ffmpeg copies the TS into PS
// (vob), which ps.Demuxer reads.
func loadUnits(clip string) ([]ps.Unit, int64, error) {
	tmp, err := os.CreateTemp("", "gbps-*.ps")
	if err != nil {
		return nil, 0, err
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	if out, err := exec.Command("ffmpeg", "-v", "error", "-y", "-i", clip, "-c", "copy", "-an", "-f", "vob", tmp.Name()).CombinedOutput(); err != nil {
		return nil, 0, fmt.Errorf("ffmpeg: %v: %s", err, out)
	}
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		return nil, 0, err
	}
	var units []ps.Unit
	dm := &ps.Demuxer{OnUnit: func(u *ps.Unit) {
		c := *u
		c.Payload = append([]byte(nil), u.Payload...)
		units = append(units, c)
	}}
	dm.Write(b)
	dm.Flush()
	if len(units) < 2 || !units[0].Keyframe {
		return nil, 0, errors.New("the clip does not start with a keyframe")
	}
	step := units[1].PTS - units[0].PTS
	length := units[len(units)-1].PTS - units[0].PTS + step
	return units, length, nil
}

// sendDevices plays n devices: the clip's units, looped, muxed into PS and
// sent as RTP over UDP in real time, SSRC ssrcBase+1… .
func sendDevices(addr, transport, clip string, n int) error {
	units, length, err := loadUnits(clip)
	if err != nil {
		return err
	}
	var c net.Conn // UDP: one socket for all
	if transport == "udp" {
		if c, err = net.Dial("udp", addr); err != nil {
			return err
		}
		c.(*net.UDPConn).SetWriteBuffer(8 << 20)
	}
	// Each camera plays on its own clock, its keyframes spread over the
	// GOP as real cameras' are (not all at the same instant).
	start := time.Now()
	errs := make(chan error, n)
	for cam := range n {
		go func() {
			offset := time.Duration(length) * time.Second / 90000 * time.Duration(cam) / time.Duration(n)
			var redial func() (net.Conn, error)
			if transport == "tcp" { // a connection per camera (tcp-passive)
				redial = func() (net.Conn, error) { return net.Dial("tcp", addr) }
			}
			errs <- sendCamera(c, redial, units, length, uint32(ssrcBase+cam+1), start.Add(offset))
		}()
	}
	return <-errs
}

// sendCamera plays one camera on c (UDP), or on TCP connections that redial
// opens: until the camera is invited the server closes a connection whose
// SSRC it does not expect, and the device connects again.
func sendCamera(c net.Conn, redial func() (net.Conn, error), units []ps.Unit, length int64, ssrc uint32, start time.Time) error {
	framed := redial != nil
	mux := &ps.Muxer{VideoType: units[0].Type}
	var buf, pkt []byte
	var pieces [][]byte
	var seq uint16
	base := units[0].PTS
	for i := 0; ; i++ {
		u := units[i%len(units)]
		at := u.PTS - base + int64(i/len(units))*length
		time.Sleep(time.Until(start.Add(time.Duration(at) * time.Second / 90000)))
		pts := at % (1 << 33)
		var err error
		buf, err = mux.AppendUnit(buf[:0], &ps.Unit{Type: u.Type, PTS: pts, DTS: pts, Keyframe: u.Keyframe, Payload: u.Payload})
		if err != nil {
			return err
		}
		pieces = ps.Payloads(pieces[:0], buf, 1400)
		for j, p := range pieces {
			h := rtp.Header{Version: 2, PayloadType: 96, SequenceNumber: seq, Timestamp: uint32(pts), SSRC: ssrc, Marker: j == len(pieces)-1}
			seq++
			hdr, err := h.Marshal()
			if err != nil {
				return err
			}
			pkt = append(append(pkt[:0], hdr...), p...)
			if framed {
				if pkt, err = ps.AppendFrame(nil, pkt); err != nil {
					return err
				}
			}
			if framed && c == nil {
				if c, err = redial(); err != nil {
					return err
				}
			}
			if _, err := c.Write(pkt); err != nil {
				if !framed {
					return err
				}
				c.Close()
				c = nil
			}
		}
	}
}
