package camsim

import (
	"syscall"
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
)

// BenchmarkFleet50 serves 50 cameras to 50 in-process TCP readers of the main streams;
// one iteration is one second of streaming. It reports the CPU of the whole process
// (server and readers) in percent of one core and the media rate received:
//
//	go test -run XXX -bench Fleet50 -benchtime 10x ./camsim
func BenchmarkFleet50(b *testing.B) {
	const cams = 50
	s, err := New(Options{Addr: "127.0.0.1:0", Count: cams})
	if err != nil {
		b.Fatal(err)
	}
	if err := s.Start(); err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	readers := make([]*testReader, 0, cams)
	defer func() {
		for _, r := range readers {
			r.Close()
		}
	}()
	for i := 1; i <= cams; i++ {
		r, err := play(s.URL(i, false), gortsplib.TransportTCP)
		if err != nil {
			b.Fatal(err)
		}
		readers = append(readers, r)
	}
	bytesNow := func() int {
		n := 0
		for _, r := range readers {
			r.mu.Lock()
			for _, a := range r.video {
				for _, nalu := range a.au {
					n += len(nalu)
				}
			}
			r.video = r.video[:0] // keep memory flat
			r.mu.Unlock()
		}
		return n
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			b.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	bytesNow()
	c0, t0 := cpu(), time.Now()
	total := 0
	for b.Loop() {
		time.Sleep(time.Second)
		total += bytesNow()
	}
	el := time.Since(t0)
	b.ReportMetric(float64(cpu()-c0)/float64(el)*100, "cpu-%")
	b.ReportMetric(float64(total)*8/el.Seconds()/1e6, "Mbit/s")
}
