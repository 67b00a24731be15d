package upstream

import (
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/camsim"
	"github.com/vigil-vms/vigil/ingest"
)

// BenchmarkUpwardViewer measures what one upper platform's live view costs:
// PS muxing, RTP packetising and sending over UDP (to a socket that never
// reads, so the receiver costs nothing) of camsim's 2 Mbit/s H.264
// 1280x720 clip. One op is one clip (2 s of video); cpu-ms/viewer-s is the
// process CPU (user+system, getrusage) per second of video sent.
//
//	go test -run XXX -bench UpwardViewer -benchtime 500x ./gb28181/upstream/
func BenchmarkUpwardViewer(b *testing.B) {
	fr, err := camsim.VideoFrames(camsim.CodecH264, camsim.BitrateHigh, false)
	if err != nil {
		b.Fatal(err)
	}
	media := &ingest.Media{Tracks: []*ingest.Track{{Video: true, Codec: ingest.CodecH264, ClockRate: 90000}}}
	media.Tracks[0].Index = 0
	units := make([]*ingest.Unit, len(fr.Frames))
	bytes := 0
	for i, f := range fr.Frames {
		units[i] = &ingest.Unit{Media: media, Track: media.Tracks[0], PTS: time.Duration(f.PTS) * time.Second / 90000,
			Data: f.NALUs, Keyframe: f.Key}
		bytes += units[i].Size()
	}
	clip := time.Duration(len(fr.Frames)) * time.Second / 25
	sink, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	conn, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	snd := sender{w: &udpWriter{c: conn, to: sink.LocalAddr()}, ssrc: 113000042}
	mux, err := newMuxer(media)
	if err != nil {
		b.Fatal(err)
	}
	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	for b.Loop() {
		for _, u := range units {
			pu, _ := psUnit(u, mux, snd.annexB)
			snd.annexB = pu.Payload
			if snd.buf, err = mux.AppendUnit(snd.buf[:0], &pu); err != nil {
				b.Fatal(err)
			}
			if err := snd.send(uint32(pu.PTS)); err != nil {
				b.Fatal(err)
			}
		}
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	cpu := time.Duration(after.Utime.Nano()-before.Utime.Nano()) + time.Duration(after.Stime.Nano()-before.Stime.Nano())
	videoSeconds := clip.Seconds() * float64(b.N)
	b.ReportMetric(float64(cpu.Milliseconds())/videoSeconds, "cpu-ms/viewer-s")
	b.ReportMetric(float64(bytes*8)/clip.Seconds()/1e6, "Mbit/s")
	b.ReportMetric(float64(snd.sent)/float64(b.N), "packets/op")
}
