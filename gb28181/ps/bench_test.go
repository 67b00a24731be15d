package ps

import "testing"

// BenchmarkDemux demuxes the GStreamer H.264+AAC file in RTP-sized chunks.
// The units/op metric lets allocations be read per access unit.
func BenchmarkDemux(b *testing.B) {
	data := readFixture(b, "gst_h264_aac.ps")
	payloads := Payloads(nil, data, 1400)
	units := 0
	d := &Demuxer{OnUnit: func(*Unit) { units++ }}
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range payloads {
			d.Write(p)
		}
	}
	d.Flush()
	b.ReportMetric(float64(units)/float64(b.N), "units/op")
}

// BenchmarkMux muxes the same units (50 H.264 pictures, 33 AAC frames) into
// a reused buffer and cuts it into RTP payloads.
func BenchmarkMux(b *testing.B) {
	c := demuxRTP(readFixture(b, "gst_h264_aac.ps"))
	units := c.units
	sortByDTS(units)
	size := 0
	for _, u := range units {
		size += len(u.Payload)
	}
	m := &Muxer{VideoType: TypeH264, AudioType: TypeAAC}
	var out []byte
	var pieces [][]byte
	b.SetBytes(int64(size))
	b.ReportAllocs()
	for b.Loop() {
		for i := range units {
			out, _ = m.AppendUnit(out[:0], &units[i])
			pieces = Payloads(pieces[:0], out, 1400)
		}
	}
	b.ReportMetric(float64(len(units)), "units/op")
}
