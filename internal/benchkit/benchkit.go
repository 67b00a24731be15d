// Package benchkit holds what the benchmark harnesses (bench/ingest,
// recorder/internal/benchrec) share: building the vigil binary and running
// its camera simulator as a separate process, so that the simulator's CPU is
// not counted as the system's under test.
package benchkit

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// BuildVigil builds ./cmd/vigil into dir and returns the binary's path.
func BuildVigil(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "vigil")
	fmt.Println("building ./cmd/vigil ...")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/vigil")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		return "", fmt.Errorf("build vigil: %w", err)
	}
	return bin, nil
}

// StartCamsim runs `bin camsim` with n cameras on a free port (plus the
// extra camsim flags) and returns the process and every camera's main and
// sub-stream URL, read from its output. Kill the process when done.
func StartCamsim(ctx context.Context, bin string, n int, flags ...string) (*exec.Cmd, [][2]string, error) {
	args := append([]string{"camsim", "--addr", "127.0.0.1:0", "--count", strconv.Itoa(n)}, flags...)
	cmd := exec.CommandContext(ctx, bin, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("start camsim: %w", err)
	}
	urls := make([][2]string, 0, n)
	sc := bufio.NewScanner(out)
	for len(urls) < n && sc.Scan() {
		if main, sub, ok := ParseCamsimLine(sc.Text()); ok {
			urls = append(urls, [2]string{main, sub})
		}
	}
	if len(urls) < n {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, nil, fmt.Errorf("camsim printed %d of %d camera URLs", len(urls), n)
	}
	go io.Copy(io.Discard, out) // keep its output flowing
	return cmd, urls, nil
}

// ParseCamsimLine reads one camera line of camsim's output:
// "camN  main rtsp://...  sub rtsp://...".
func ParseCamsimLine(line string) (main, sub string, ok bool) {
	f := strings.Fields(line)
	if len(f) == 5 && f[1] == "main" && f[3] == "sub" {
		return f[2], f[4], true
	}
	return "", "", false
}

// Main runs a harness's run; an error is printed after the harness's name
// and the process exits 1.
func Main(name string, run func() error) {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, name+":", err)
		os.Exit(1)
	}
}

// Flags are the flags of every harness: how many cameras, how long to
// measure, and which vigil binary runs the camera simulator.
type Flags struct {
	Cameras  *int
	Duration *time.Duration
	Vigil    *string
}

// CommonFlags defines -cameras, -duration (measure, after every camera is
// ready: "online", "recording") and -vigil on the command line.
func CommonFlags(measure time.Duration, ready string) Flags {
	return Flags{
		Cameras:  flag.Int("cameras", 50, "number of simulated cameras"),
		Duration: flag.Duration("duration", measure, "measuring time, after every camera is "+ready),
		Vigil:    flag.String("vigil", "", "vigil binary to run camsim with (default: go build ./cmd/vigil into a temporary directory)"),
	}
}

// Start checks the flags (after flag.Parse) and begins a run: a context that
// an interrupt cancels and a temporary directory, both ended by done.
func (f Flags) Start() (ctx context.Context, dir string, done func(), err error) {
	if *f.Cameras < 1 || *f.Duration <= 0 {
		return nil, "", nil, errors.New("-cameras and -duration must be positive")
	}
	if dir, err = os.MkdirTemp("", "vigil-bench-"); err != nil {
		return nil, "", nil, err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	return ctx, dir, func() { stop(); os.RemoveAll(dir) }, nil
}

// StartSim starts the camera simulator of the run (StartSim) with the
// flags' cameras and vigil binary.
func (f Flags) StartSim(ctx context.Context, dir string, flags ...string) (*Sim, error) {
	return StartSim(ctx, *f.Vigil, dir, *f.Cameras, flags...)
}

// Sim is the camera simulator of a harness, running in its own process.
type Sim struct {
	Cmd  *exec.Cmd
	URLs [][2]string // each camera's main and sub-stream URL
}

// StartSim runs `vigil camsim` with n cameras (and the extra camsim flags)
// from the binary vigil, or, when vigil is "", from ./cmd/vigil built into
// dir. Stop it when done.
func StartSim(ctx context.Context, vigil, dir string, n int, flags ...string) (*Sim, error) {
	if vigil == "" {
		var err error
		if vigil, err = BuildVigil(ctx, dir); err != nil {
			return nil, err
		}
	}
	cmd, urls, err := StartCamsim(ctx, vigil, n, flags...)
	if err != nil {
		return nil, err
	}
	return &Sim{Cmd: cmd, URLs: urls}, nil
}

// Stop kills the simulator and waits for it.
func (s *Sim) Stop() {
	s.Cmd.Process.Kill()
	s.Cmd.Wait()
}
