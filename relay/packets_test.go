package relay

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/vigil-vms/vigil/ingest"
)

// TestPacketCacheSharesPayloads checks that a unit is packetized once for all
// viewers (the same payload bytes), that payloads fit maxPayload with the
// marker on the last, and that units older than the previous GOP are dropped.
func TestPacketCacheSharesPayloads(t *testing.T) {
	vt := &ingest.Track{Video: true, Codec: ingest.CodecH264}
	big := bytes.Repeat([]byte{0x41, 0x9a}, 2000) // a 4000-byte slice: fragmented
	unit := func(seq uint64, key bool) *ingest.Unit {
		if key {
			return &ingest.Unit{Track: vt, Seq: seq, Keyframe: true, Data: [][]byte{{0x67, 0x42}, {0x68, 0xce}, append([]byte{0x65}, big...)}}
		}
		return &ingest.Unit{Track: vt, Seq: seq, Data: [][]byte{append([]byte{0x41}, big...)}}
	}
	c := newPacketCache()
	k1 := unit(1, true)
	a, err := c.get(k1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.get(k1)
	if err != nil {
		t.Fatal(err)
	}
	if len(a) < 4 || len(a) != len(b) {
		t.Fatalf("%d and %d payloads, want the same number, at least 4", len(a), len(b))
	}
	for i := range a {
		if &a[i].data[0] != &b[i].data[0] {
			t.Fatalf("payload %d packetized twice", i)
		}
		if len(a[i].data) > maxPayload {
			t.Fatalf("payload %d has %d bytes, more than %d", i, len(a[i].data), maxPayload)
		}
		if a[i].marker != (i == len(a)-1) {
			t.Fatalf("payload %d: marker %v", i, a[i].marker)
		}
	}
	if a[0].data[0]&0x1f != 24 { // STAP-A with SPS and PPS
		t.Fatalf("first payload has NAL type %d, want a STAP-A (24)", a[0].data[0]&0x1f)
	}
	if _, err := c.get(unit(2, false)); err != nil {
		t.Fatal(err)
	}
	for _, seq := range []uint64{3, 5} {
		if _, err := c.get(unit(seq, true)); err != nil {
			t.Fatal(err)
		}
	}
	// two GOPs later the first GOP is gone; the previous one (from 3) is kept
	if _, ok := c.units[k1]; ok {
		t.Fatal("unit of an old GOP still cached")
	}
	if len(c.units) != 2 {
		t.Fatalf("%d units cached, want 2 (the keyframes 3 and 5)", len(c.units))
	}
	// an old unit is not packetized: its viewer resumes at a newer keyframe
	if p, err := c.get(unit(2, false)); !errors.Is(err, errTooOld) {
		t.Fatalf("old unit: %d payloads, %v", len(p), err)
	}
	if len(c.units) != 2 {
		t.Fatalf("an old unit was cached")
	}
	if _, err := c.get(&ingest.Unit{Track: &ingest.Track{Codec: ingest.CodecAAC}, Seq: 9, Data: [][]byte{{1}}}); err == nil {
		t.Fatal("an AAC unit was packetized as video")
	}
}

// TestHistoryFindsPacketsOfRecentUnits: the NACK history finds a packet by
// its sequence number among the last nackUnits units, across the 16-bit
// wrap, and forgets older units.
func TestHistoryFindsPacketsOfRecentUnits(t *testing.T) {
	var h history
	pls := func(n int, tag byte) []payload {
		out := make([]payload, n)
		for i := range out {
			out[i] = payload{data: []byte{tag, byte(i)}, marker: i == n-1}
		}
		return out
	}
	seq := uint16(65535 - 3*nackUnits) // wraps during the test
	first := seq
	for u := range 2 * nackUnits {
		h.add(seq, uint32(u)*3000, pls(3, byte(u)))
		seq += 3
	}
	if got := h.lookup([]uint16{first}, nil); len(got) != 0 {
		t.Fatalf("packet of a unit older than %d units found: %+v", nackUnits, got)
	}
	last := seq - 1
	got := h.lookup([]uint16{last, last - 4, seq}, nil)
	if len(got) != 2 {
		t.Fatalf("%d packets found, want 2 (the one not sent yet is not): %+v", len(got), got)
	}
	if got[0].seq != last || !got[0].marker || got[0].data[1] != 2 || got[0].ts != uint32(2*nackUnits-1)*3000 {
		t.Fatalf("last packet: %+v", got[0])
	}
	if got[1].seq != last-4 || got[1].marker || got[1].data[1] != 1 || got[1].data[0] != byte(2*nackUnits-2) {
		t.Fatalf("packet of the unit before: %+v", got[1])
	}
}

// TestResendBudget: a viewer is sent again at most resendBurst packets at
// once and resendRate a second.
func TestResendBudget(t *testing.T) {
	var h history
	t0 := time.Now()
	if n := h.budget(1000, t0); n != resendBurst {
		t.Fatalf("first NACKs: %d packets may be resent, want %d", n, resendBurst)
	}
	if n := h.budget(10, t0); n != 0 {
		t.Fatalf("budget spent: %d packets may be resent, want 0", n)
	}
	if n := h.budget(1000, t0.Add(100*time.Millisecond)); n != resendRate/10 {
		t.Fatalf("after 100 ms: %d packets may be resent, want %d", n, resendRate/10)
	}
	if n := h.budget(3, t0.Add(time.Hour)); n != 3 {
		t.Fatalf("after an hour: %d of 3 packets may be resent", n)
	}
}
