package gbsim

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/camsim"
	gbsip "github.com/vigil-vms/vigil/gb28181/sip"
)

// BenchmarkPacketize measures what a device spends on one second of its
// video (25 pictures of camsim's 2 Mbit/s H.264 clip): PS muxing and RTP
// packetizing, without pacing or sockets.
//
//	go test -run XXX -bench Packetize -benchtime 200x ./gb28181/gbsim
func BenchmarkPacketize(b *testing.B) {
	clips, err := LoadClips(camsim.CodecH264, camsim.BitrateHigh, "")
	if err != nil {
		b.Fatal(err)
	}
	p := newPacketizer(clips, 1, false)
	never := func() bool { return false }
	var bytes int64
	b.ResetTimer()
	for b.Loop() {
		for range 25 {
			pkts, _, err := p.next(never)
			if err != nil {
				b.Fatal(err)
			}
			for _, x := range pkts {
				bytes += int64(len(x))
			}
		}
	}
	b.ReportMetric(float64(bytes*8)/float64(b.N)/1e6, "Mbit/camera-s")
}

// BenchmarkDevices registers 200 devices to Vigil's registrar (UDP, one
// socket each) and reports the memory and goroutines one device costs while
// registered and idle (no INVITE).
//
//	go test -run XXX -bench Devices -benchtime 1x ./gb28181/gbsim
func BenchmarkDevices(b *testing.B) {
	const n = 200
	srv := &gbsip.Server{
		Realm: testRealm, ID: "44011300002000000001", Password: "secret1",
		Lookup:         func(string) (string, bool, error) { return "", true, nil },
		CatalogRefresh: -1,
		Log:            slog.New(slog.DiscardHandler),
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc, ln) }()
	defer func() { cancel(); <-done }()

	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		g0 := runtime.NumGoroutine()
		devs := make([]*Device, n)
		for i := range devs {
			id := fmt.Sprintf("4401130000132%07d", i+1)
			d, err := Start(context.Background(), Config{ID: id, Password: "secret1", Server: pc.LocalAddr().String(),
				Channels: []Channel{{ID: ChannelID(id, 1)}}, Log: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			devs[i] = d
		}
		for _, d := range devs {
			select {
			case <-d.Registered():
			case <-time.After(30 * time.Second):
				b.Fatal("a device did not register in 30s")
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapInuse-before.HeapInuse)/n/1024, "KB-heap/device")
		b.ReportMetric(float64(runtime.NumGoroutine()-g0)/n, "goroutines/device")
		for _, d := range devs {
			d.Close()
		}
	}
}

// BenchmarkStreams: one device sends 10 channels of camsim's 2 Mbit/s H.264
// clip as PS over RTP/UDP at real-time pace for 5 s, into a socket of the
// same process that reads and counts them; it reports the CPU of the whole
// process (device, reader, SIP) per stream.
//
//	go test -run XXX -bench Streams -benchtime 1x ./gb28181/gbsim
func BenchmarkStreams(b *testing.B) {
	const streams = 10
	const period = 5 * time.Second
	srv := &gbsip.Server{
		Realm: testRealm, ID: "44011300002000000001", Password: "secret1",
		Lookup:         func(string) (string, bool, error) { return "", true, nil },
		CatalogRefresh: -1,
		Log:            slog.New(slog.DiscardHandler),
	}
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, pc, ln) }()
	defer func() { cancel(); <-done }()
	var chs []Channel
	for i := range streams {
		chs = append(chs, Channel{ID: ChannelID(testDevice, i+1)})
	}
	d, err := Start(context.Background(), Config{ID: testDevice, Password: "secret1", Server: pc.LocalAddr().String(),
		Channels: chs, Bitrate: camsim.BitrateHigh, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	defer d.Close()
	<-d.Registered()
	sink, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	var bytes atomic.Int64
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := sink.ReadFrom(buf)
			if err != nil {
				return
			}
			bytes.Add(int64(n))
		}
	}()
	for b.Loop() {
		var calls []*gbsip.Call
		for i, ch := range chs {
			call, err := srv.Invite(ctx, gbsip.InviteRequest{Device: testDevice, Channel: ch.ID, SSRC: fmt.Sprintf("01000003%02d", i),
				Transport: TransportUDP, MediaIP: "127.0.0.1", MediaPort: sink.LocalAddr().(*net.UDPAddr).Port})
			if err != nil {
				b.Fatal(err)
			}
			calls = append(calls, call)
		}
		time.Sleep(time.Second) // past the start
		bytes.Store(0)
		var r0, r1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &r0)
		time.Sleep(period)
		syscall.Getrusage(syscall.RUSAGE_SELF, &r1)
		cpu := time.Duration(r1.Utime.Nano() + r1.Stime.Nano() - r0.Utime.Nano() - r0.Stime.Nano())
		b.ReportMetric(100*cpu.Seconds()/period.Seconds()/streams, "%core/stream")
		b.ReportMetric(float64(bytes.Load()*8)/period.Seconds()/streams/1e6, "Mbit/s/stream")
		for _, c := range calls {
			c.Bye(ctx)
		}
	}
}
