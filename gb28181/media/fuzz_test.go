package media

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/vigil-vms/vigil/gb28181/ps"
)

// FuzzReceive feeds bytes through what a receiver does with a TCP stream
// (RFC 4571 frames, RTP checks, sequencing, PS demuxing) or, with udp, with
// datagrams (each prefixed by one length byte here): no panic, the counters
// add up, the reorder window is bounded and every unit has bytes.
//
//	go test -run '^$' -fuzz FuzzReceive -fuzztime 20s -fuzzminimizetime 1s ./gb28181/media
//
// (its inputs are large: without a short minimizing time, minimizing a new
// input takes the whole run).
func FuzzReceive(f *testing.F) {
	b := readTestdata(f, "gst_h264_aac.ps")
	pkts := rtpPackets(f, b, 1, 65533)
	f.Add(frame(f, pkts[:6]), false)
	swapped := append([][]byte{pkts[0], pkts[2], pkts[1]}, pkts[3:6]...)
	f.Add(frame(f, swapped), false)
	f.Add([]byte{0xFF, 0xFF, 0x80}, false)
	f.Add(append([]byte{0, 12}, pkts[0][:12]...), false)
	var dgrams []byte
	for _, p := range pkts[:6] {
		p = p[:min(len(p), 255)]
		dgrams = append(append(dgrams, byte(len(p))), p...)
	}
	f.Add(dgrams, true)
	f.Fuzz(func(t *testing.T, data []byte, udp bool) {
		transport := TransportTCPPassive
		if udp {
			transport = TransportUDP
		}
		s := &Server{ReorderWindow: 4, Log: slog.New(slog.DiscardHandler)}
		r := newReceiver(s, 1, "", transport)
		units := 0
		r.onUnit = func(u *ps.Unit) { // as arm sets it; no goroutine here
			units++
			if len(u.Payload) == 0 {
				t.Fatal("empty unit")
			}
		}
		var taken [][]byte
		if udp {
			for len(data) > 0 {
				l := min(int(data[0]), len(data)-1)
				pkt := data[1 : 1+l]
				data = data[1+l:]
				if ssrc, ok := rtpSSRC(pkt); ok && ssrc == 1 {
					taken = append(taken, pkt)
				}
			}
		} else {
			fr := ps.NewFrameReader(bytes.NewReader(data))
			for {
				pkt, err := fr.ReadFrame()
				if err != nil {
					break
				}
				if r.acceptFrame(pkt) {
					taken = append(taken, bytes.Clone(pkt))
				}
			}
		}
		garbage := s.garbage.Load()
		for _, pkt := range taken {
			r.take(getBuf(pkt))
			if r.seq.held >= len(r.seq.slots) && len(r.seq.slots) > 1 {
				t.Fatalf("%d held", r.seq.held)
			}
		}
		n := len(taken)
		r.seq.flush()
		r.demux.Flush()
		st := r.Stats()
		if st.Packets+st.Duplicates+s.garbage.Load()-garbage != uint64(n) || st.Units != uint64(units) {
			t.Fatalf("%d packets in, stats %+v, %d units", n, st, units)
		}
	})
}
