package replay

import (
	"context"
	"io"
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user and system CPU time so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// benchRecording records 20 s of 1280x720 H.264 at 2 Mbit/s with AAC.
func benchRecording(b *testing.B) (*fixture, time.Time, time.Time) {
	f := newFixture(b)
	segs := f.record(b, "cam-bench", t0, encodeSegments(b, "h264", "1280x720", "2M", 20, 4))
	return f, t0, segs[len(segs)-1].End
}

// BenchmarkDownloadPS measures the CPU that one recorded second costs when
// it is read from the store, re-muxed to MPEG-PS and cut into RTP packets
// (a Download session into a sink that discards): cpu-ms/rec-s. Compare
// BenchmarkReadUnits for the reading alone.
func BenchmarkDownloadPS(b *testing.B) {
	f, start, end := benchRecording(b)
	var bytes int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for range b.N {
		s, err := f.p.NewSession(context.Background(), SessionConfig{Camera: "cam-bench", Start: start, End: end,
			Download: true, SSRC: 1, Write: func(p []byte) error { bytes += int64(len(p)); return nil }})
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Run(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	cpu := cpuTime(b) - cpu0
	rec := end.Sub(start).Seconds() * float64(b.N)
	b.ReportMetric(cpu.Seconds()*1000/rec, "cpu-ms/rec-s")
	b.ReportMetric(float64(bytes)*8/rec/1e6, "Mbit/rec-s")
}

// BenchmarkReadUnits measures the reading alone (store, fMP4 parse, Annex-B
// and ADTS conversion), without PS muxing and RTP.
func BenchmarkReadUnits(b *testing.B) {
	f, start, end := benchRecording(b)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime(b)
	for range b.N {
		r, err := f.p.Open(context.Background(), "cam-bench", start, end)
		if err != nil {
			b.Fatal(err)
		}
		for {
			if _, err := r.Next(); err == io.EOF {
				break
			} else if err != nil {
				b.Fatal(err)
			}
		}
		r.Close()
	}
	cpu := cpuTime(b) - cpu0
	b.ReportMetric(cpu.Seconds()*1000/(end.Sub(start).Seconds()*float64(b.N)), "cpu-ms/rec-s")
}
