package benchkit

import (
	"context"
	"fmt"
	"runtime"
	"strconv"
	"time"

	"github.com/vigil-vms/vigil/internal/procstat"
)

// AwaitCount polls count every 200 ms until it reaches want, and returns how
// long that took. It gives up after limit with an error saying how many of
// want were what ("online", "recording"), or when ctx ends.
func AwaitCount(ctx context.Context, want int, limit time.Duration, what string, count func() int) (time.Duration, error) {
	start := time.Now()
	for {
		n := count()
		if n >= want {
			return time.Since(start), nil
		}
		if time.Since(start) > limit {
			return 0, fmt.Errorf("only %d of %d cameras %s after %s", n, want, what, limit)
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Window is what one measuring window saw of this process (and of the
// processes measured apart).
type Window struct {
	Wall  time.Duration   // the window's length on the wall clock
	CPU   time.Duration   // this process's CPU time in the window
	Apart []time.Duration // CPU time of each process measured apart, in the order given
	// at the end of the window
	RSSKB, PeakRSSKB int64  // resident and peak resident memory (VmRSS, VmHWM)
	HeapInuse        uint64 // Go heap in use, bytes
}

// Percent is d as a percentage of one core over the window.
func (w Window) Percent(d time.Duration) float64 {
	return d.Seconds() / w.Wall.Seconds() * 100
}

// Measure waits for d (or ctx's end, an error) and returns the CPU time this
// process and each of the pids (processes measured apart; 0 is none) used
// meanwhile, and the memory at the end.
func Measure(ctx context.Context, d time.Duration, pids ...int) (Window, error) {
	var w Window
	cpu0, err := procstat.CPU("self")
	if err != nil {
		return w, err
	}
	apart0 := make([]time.Duration, len(pids))
	for i, pid := range pids {
		apart0[i], _ = procstat.CPU(strconv.Itoa(pid))
	}
	t0 := time.Now()
	select {
	case <-ctx.Done():
		return w, ctx.Err()
	case <-time.After(d):
	}
	w.Wall = time.Since(t0)
	cpu1, err := procstat.CPU("self")
	if err != nil {
		return w, err
	}
	w.CPU = cpu1 - cpu0
	w.Apart = make([]time.Duration, len(pids))
	for i, pid := range pids {
		c, _ := procstat.CPU(strconv.Itoa(pid))
		w.Apart[i] = c - apart0[i]
	}
	w.RSSKB, _ = procstat.StatusKB("VmRSS")
	w.PeakRSSKB, _ = procstat.StatusKB("VmHWM")
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	w.HeapInuse = ms.HeapInuse
	return w, nil
}

// Memory describes the window's memory against baseRSSKB, the resident
// memory before the system under test started, for n cameras.
func (w Window) Memory(baseRSSKB int64, n int) string {
	return fmt.Sprintf("RSS %.1f MiB (%.1f MiB before; peak %.1f MiB), %.0f KiB per camera; Go heap in use %.1f MiB",
		float64(w.RSSKB)/1024, float64(baseRSSKB)/1024, float64(w.PeakRSSKB)/1024, float64(w.RSSKB-baseRSSKB)/float64(n), float64(w.HeapInuse)/(1<<20))
}
