package media

import (
	"context"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/gb28181/ps"
	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestUDPReorderAndDuplicates: packets swapped within the window and sent
// twice give exactly the units of the file.
func TestUDPReorderAndDuplicates(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	b := readTestdata(t, "gst_h264_aac.ps")
	want := direct(b)
	c := &collector{}
	r := expect(t, s, 31, TransportUDP, c)
	pkts := rtpPackets(t, b, 31, 65530)
	var sent [][]byte
	dups := 0
	for i := 0; i < len(pkts); i += 3 {
		// 0 1 2 → 2 0 1 (the first packets too: the receiver holds the
		// first ones until its window fills), and every 4th group's first
		// packet twice.
		grp := pkts[i:min(i+3, len(pkts))]
		if len(grp) == 3 {
			grp = [][]byte{grp[2], grp[0], grp[1]}
		}
		sent = append(sent, grp...)
		if i%12 == 0 {
			sent = append(sent, grp[0])
			dups++
		}
	}
	sendUDP(t, s.udp, r, sent)
	waitUnits(t, c, len(want))
	diff(t, c.snapshot(), want)
	st := r.Stats()
	if st.Lost != 0 || st.Duplicates != uint64(dups) || st.Reordered == 0 || st.Packets != uint64(len(pkts)) {
		t.Errorf("stats %+v, want %d duplicates, %d packets, some reordered", st, dups, len(pkts))
	}
}

// TestUDPLoss: lost packets drop the units they cut, later units come whole
// and flagged Discontinuity, and the loss is counted.
func TestUDPLoss(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	b := readTestdata(t, "gst_h264_aac.ps")
	want := direct(b)
	whole := map[[8]byte]bool{}
	for _, u := range want {
		whole[u.Sum] = true
	}
	c := &collector{}
	r := expect(t, s, 32, TransportUDP, c)
	pkts := rtpPackets(t, b, 32, 0)
	var sent [][]byte
	for i, p := range pkts {
		if i != 10 && i != 11 && i != 25 {
			sent = append(sent, p)
		}
	}
	sendUDP(t, s.udp, r, sent)
	testkit.WaitFor(t, 10*time.Second, "all packets taken", func() bool {
		st := r.Stats()
		return st.Packets == uint64(len(sent)) && st.Lost == 3
	})
	// The last packet has the marker: everything is out once it is taken.
	testkit.WaitFor(t, 10*time.Second, "the last unit", func() bool {
		got := c.snapshot()
		return len(got) > 0 && got[len(got)-1].Sum == want[len(want)-1].Sum
	})
	got := c.snapshot()
	disc := 0
	for i, u := range got {
		if !whole[u.Sum] {
			t.Errorf("unit %d (%v) is not a unit of the file: a cut unit was passed on", i, u)
		}
		if u.Disc {
			disc++
		}
	}
	if len(got) >= len(want) || len(got) < len(want)/2 || disc == 0 {
		t.Errorf("%d units (%d with Discontinuity) of %d", len(got), disc, len(want))
	}
	if st := r.Stats(); st.Lost != 3 {
		t.Errorf("lost %d, want 3", st.Lost)
	}
}

// TestUDPStopped: a started UDP stream that goes silent is reported.
func TestUDPStopped(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{IdleTimeout: 300 * time.Millisecond})
	b := readTestdata(t, "gst_h264_aac.ps")
	r := expect(t, s, 33, TransportUDP, &collector{})
	sendUDP(t, s.udp, r, rtpPackets(t, b, 33, 0)[:5])
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := r.WaitStart(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.Err():
		if me, ok := err.(*MediaError); !ok || me.Kind != MediaStopped {
			t.Fatalf("Err = %v", err)
		}
	case <-ctx.Done():
		t.Fatal("no MediaStopped")
	}
}

// TestMarkerOnEveryPacket: a device that sets the RTP marker bit on every
// packet does not get its pictures cut.
func TestMarkerOnEveryPacket(t *testing.T) {
	testkit.CheckLeaks(t)
	s := startServer(t, &Server{})
	// Camera-style PS (a pack per unit, one PES per picture) of the
	// GStreamer file's units.
	var units []ps.Unit
	d := &ps.Demuxer{OnUnit: func(u *ps.Unit) {
		c := *u
		c.Payload = append([]byte(nil), u.Payload...)
		units = append(units, c)
	}}
	d.Write(readTestdata(t, "gst_h264_aac.ps"))
	d.Flush()
	m := &ps.Muxer{VideoType: ps.TypeH264, AudioType: ps.TypeAAC}
	var b []byte
	for i := range units {
		var err error
		if b, err = m.AppendUnit(b, &units[i]); err != nil {
			t.Fatal(err)
		}
	}
	want := direct(b)
	c := &collector{}
	r := expect(t, s, 48, TransportUDP, c)
	pkts := rtpPackets(t, b, 48, 0)
	for _, p := range pkts {
		p[1] |= 0x80 // marker
	}
	sendUDP(t, s.udp, r, pkts)
	waitUnits(t, c, len(want))
	got := c.snapshot()
	for _, id := range []uint8{0xE0, 0xC0} {
		diff(t, sumsOf(got, id), sumsOf(want, id))
	}
}

func sumsOf(us []unitSum, id uint8) []unitSum {
	var out []unitSum
	for _, u := range us {
		if u.StreamID == id {
			out = append(out, u)
		}
	}
	return out
}
