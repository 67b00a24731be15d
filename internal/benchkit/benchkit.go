// Package benchkit holds what the benchmark harnesses (bench/ingest,
// recorder/internal/benchrec) share: building the vigil binary and running
// its camera simulator as a separate process, so that the simulator's CPU is
// not counted as the system's under test.
package benchkit

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
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
