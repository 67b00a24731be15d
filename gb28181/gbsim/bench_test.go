package gbsim

import (
	"testing"

	"github.com/vigil-vms/vigil/camsim"
)

// BenchmarkPacketize measures what a device spends on one second of its
// video (25 pictures of camsim's 2 Mbit/s H.264 clip): PS muxing and RTP
// packetizing, without pacing or sockets.
//
//	go test -run XXX -bench Packetize -benchtime 200x ./gb28181/gbsim
func BenchmarkPacketize(b *testing.B) {
	clips, err := LoadClips(camsim.CodecH264, camsim.BitrateHigh, false)
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
