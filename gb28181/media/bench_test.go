package media

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"

	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// benchClip is camsim's 2 Mbit/s 1280x720 H.264 clip (2 s, 25 fps) as
// access units, read through ffmpeg's PS muxer and our demuxer.
func benchClip(b *testing.B) ([]ps.Unit, float64) {
	testkit.Tool(b, "ffmpeg", "VIGIL_REQUIRE_FFMPEG")
	out := filepath.Join(b.TempDir(), "clip.ps")
	if o, err := exec.Command("ffmpeg", "-v", "error", "-i", "../../camsim/media/h264_main_high.ts", "-c", "copy", "-f", "vob", out).CombinedOutput(); err != nil {
		b.Fatalf("ffmpeg: %v %s", err, o)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		b.Fatal(err)
	}
	var units []ps.Unit
	d := &ps.Demuxer{OnUnit: func(u *ps.Unit) {
		c := *u
		c.Payload = append([]byte(nil), u.Payload...)
		units = append(units, c)
	}}
	d.Write(data)
	d.Flush()
	return units, float64(len(units)) / 25
}

// BenchmarkReceivePS: what a GB/T 28181 camera costs the receiving side per
// second of 2 Mbit/s video: RTP packets of camera-style PS (ps.Muxer) through
// the receiver's RTP check, sequencing and demuxing into access units.
// Compare BenchmarkDepacketizeRTSP: gortsplib's RTP/H.264 depacketizer on
// the same video, what an RTSP camera costs at the same step.
func BenchmarkReceivePS(b *testing.B) {
	units, secs := benchClip(b)
	m := &ps.Muxer{VideoType: ps.TypeH264}
	var psb []byte
	for i := range units {
		var err error
		if psb, err = m.AppendUnit(psb, &units[i]); err != nil {
			b.Fatal(err)
		}
	}
	pkts := rtpPackets(b, psb, 1, 0)
	s := &Server{}
	r := newReceiver(s, 1, "", TransportUDP)
	n := 0
	r.onUnit = func(*ps.Unit) { n++ }
	b.SetBytes(int64(len(psb)))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for j, p := range pkts {
			// sequence numbers continue across loops of the clip
			p[2], p[3] = byte((i*len(pkts)+j)>>8), byte(i*len(pkts)+j)
			if ssrc, ok := rtpSSRC(p); !ok || ssrc != 1 {
				b.Fatal("not routed")
			}
			r.take(getBuf(p))
		}
	}
	b.StopTimer()
	if n < b.N*len(units)-1 || r.Stats().Lost != 0 {
		b.Fatalf("%d units for %d loops of %d; stats %+v", n, b.N, len(units), r.Stats())
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/secs, "µs/camera-s")
}

func BenchmarkDepacketizeRTSP(b *testing.B) {
	units, secs := benchClip(b)
	enc := &rtph264.Encoder{PayloadType: 96, PayloadMaxSize: 1400}
	if err := enc.Init(); err != nil {
		b.Fatal(err)
	}
	var pkts []*rtp.Packet
	bytes := 0
	for _, u := range units {
		var au h264.AnnexB
		if err := au.Unmarshal(u.Payload); err != nil {
			b.Fatal(err)
		}
		ps, err := enc.Encode(au)
		if err != nil {
			b.Fatal(err)
		}
		for _, p := range ps {
			bytes += len(p.Payload)
		}
		pkts = append(pkts, ps...)
	}
	raw := make([][]byte, len(pkts))
	for i, p := range pkts {
		var err error
		if raw[i], err = p.Marshal(); err != nil {
			b.Fatal(err)
		}
	}
	dec := &rtph264.Decoder{}
	if err := dec.Init(); err != nil {
		b.Fatal(err)
	}
	n := 0
	b.SetBytes(int64(bytes))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, p := range raw {
			// as gortsplib's client does per packet: parse, then depacketize
			var pkt rtp.Packet
			if err := pkt.Unmarshal(p); err != nil {
				b.Fatal(err)
			}
			if _, err := dec.Decode(&pkt); err == nil {
				n++
			}
		}
	}
	b.StopTimer()
	if n < b.N*len(units) {
		b.Fatalf("%d units for %d loops of %d", n, b.N, len(units))
	}
	b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N)/secs, "µs/camera-s")
}
