package ps

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

// synthFrames makes n H.264 access units of about size bytes, a keyframe
// every gop, with slice bodies free of start codes.
func synthFrames(n, gop, size int, seed uint64) []Unit {
	r := rand.New(rand.NewPCG(seed, 7))
	body := func(hdr []byte) []byte {
		b := append([]byte(nil), hdr...)
		for len(b) < size {
			v := byte(r.IntN(256))
			if v <= 3 && b[len(b)-1] == 0 && b[len(b)-2] == 0 {
				v = 0x80
			}
			b = append(b, v)
		}
		return b
	}
	units := make([]Unit, n)
	for i := range units {
		key := i%gop == 0
		var p []byte
		if key {
			p = cat(h264SPS, h264PPS, body(h264IDR[:6]))
		} else {
			p = body(h264P[:6])
		}
		units[i] = Unit{StreamID: 0xE0, Type: TypeH264, PTS: int64(3600 * (i + 1)), DTS: int64(3600 * (i + 1)), Keyframe: key, Payload: p}
	}
	return units
}

// packs muxes each unit into its own pack.
func packs(t testing.TB, m *Muxer, units []Unit) [][]byte {
	out := make([][]byte, len(units))
	for i := range units {
		b, err := m.AppendUnit(nil, &units[i])
		if err != nil {
			t.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// synthPacks makes synthFrames(n, gop, size, seed) and muxes each into its
// own pack.
func synthPacks(t testing.TB, n, gop, size int, seed uint64) ([]Unit, [][]byte) {
	frames := synthFrames(n, gop, size, seed)
	return frames, packs(t, &Muxer{VideoType: TypeH264}, frames)
}

func TestDemuxLossInsideAFrame(t *testing.T) {
	frames, pk := synthPacks(t, 12, 5, 3000, 1)
	var stream []byte
	for _, p := range pk {
		stream = append(stream, p...)
	}
	payloads := Payloads(nil, stream, 1400)
	// Lose the payload holding byte 300 of frame 6's pack.
	off := 0
	for _, p := range pk[:6] {
		off += len(p)
	}
	lost := (off + 300) / 1400

	var c collector
	d := c.demuxer()
	for i, p := range payloads {
		if i == lost {
			d.Lost()
			continue
		}
		d.Write(p)
	}
	d.Flush()

	var sawResync bool
	for _, e := range c.errs {
		sawResync = sawResync || bytes.Contains([]byte(e), []byte("skipped to the next pack header"))
	}
	if !sawResync {
		t.Errorf("errors %q: want a resync report", c.errs)
	}
	// Every unit is one of the frames, unchanged; frame 6 is gone, and the
	// first unit after the loss carries Discontinuity.
	next := 0
	gotDisc := false
	for _, u := range c.units {
		for next < len(frames) && !bytes.Equal(frames[next].Payload, u.Payload) {
			next++
		}
		if next == len(frames) {
			t.Fatalf("unit pts %d is not one of the frames (corrupt)", u.PTS)
		}
		if next == 6 {
			t.Errorf("frame 6, cut by the loss, was emitted")
		}
		if u.PTS != frames[next].PTS || u.Keyframe != frames[next].Keyframe {
			t.Errorf("frame %d: pts %d key %v, want %d %v", next, u.PTS, u.Keyframe, frames[next].PTS, frames[next].Keyframe)
		}
		if u.Discontinuity != (next > 6 && !gotDisc) {
			t.Errorf("frame %d: discontinuity %v", next, u.Discontinuity)
		}
		gotDisc = gotDisc || next > 6
	}
	if last := c.units[len(c.units)-1]; last.PTS != frames[11].PTS {
		t.Errorf("last unit pts %d, want %d", last.PTS, frames[11].PTS)
	}
	if len(c.units) < 10 {
		t.Errorf("%d units after one lost packet, want at least 10 of 12", len(c.units))
	}
}

func TestDemuxLossBetweenFrames(t *testing.T) {
	frames, pk := synthPacks(t, 8, 4, 2000, 2)
	var c collector
	d := c.demuxer()
	for i, p := range pk {
		if i == 3 { // every RTP packet of frame 3 is lost
			d.Lost()
			continue
		}
		writeRTP(d, p)
	}
	d.Flush()
	want := []int{0, 1, 2, 4, 5, 6, 7} // frame 2 was complete: kept
	if len(c.units) != len(want) {
		t.Fatalf("%d units, want %d", len(c.units), len(want))
	}
	for i, w := range want {
		u := c.units[i]
		if !bytes.Equal(u.Payload, frames[w].Payload) || u.PTS != frames[w].PTS {
			t.Errorf("unit %d is not frame %d", i, w)
		}
		if u.Discontinuity != (w == 4) {
			t.Errorf("unit %d (frame %d): discontinuity %v", i, w, u.Discontinuity)
		}
	}
	if len(c.errs) != 0 {
		t.Errorf("errors %q", c.errs)
	}
}

func TestDemuxMaxUnitSize(t *testing.T) {
	frames := synthFrames(6, 3, 1000, 3)
	frames[1].Payload = append(frames[1].Payload, bytes.Repeat([]byte{0x42}, 4000)...)
	pk := packs(t, &Muxer{VideoType: TypeH264}, frames)
	var errs []error
	var got []Unit
	d := &Demuxer{
		MaxUnitSize: 2000,
		OnUnit:      func(u *Unit) { v := *u; v.Payload = bytes.Clone(u.Payload); got = append(got, v) },
		OnError:     func(err error) { errs = append(errs, err) },
	}
	for _, p := range pk {
		writeRTP(d, p)
	}
	d.Flush()
	var tooLarge *UnitTooLargeError
	if len(errs) != 1 || !errors.As(errs[0], &tooLarge) || tooLarge.Max != 2000 || tooLarge.StreamID != 0xE0 {
		t.Fatalf("errors %v, want one UnitTooLargeError{0xE0, 2000}", errs)
	}
	var pts []int64
	for _, u := range got {
		if len(u.Payload) > 2000 {
			t.Errorf("unit of %d bytes over the cap", len(u.Payload))
		}
		pts = append(pts, u.PTS)
	}
	// Frame 1 is dropped; frame 2 (a P frame) follows a dropped unit.
	want := []int64{3600, 10800, 14400, 18000, 21600}
	if len(pts) != len(want) {
		t.Fatalf("pts %v, want %v", pts, want)
	}
	for i := range want {
		if pts[i] != want[i] {
			t.Fatalf("pts %v, want %v", pts, want)
		}
	}
	if !got[1].Discontinuity || got[2].Discontinuity {
		t.Errorf("discontinuity flags %v %v, want true false", got[1].Discontinuity, got[2].Discontinuity)
	}
}

func TestDemuxBoundedBuffers(t *testing.T) {
	// An endless PES_packet_length 0 video packet with no start codes, and an
	// endless run of zero bytes, stay within MaxUnitSize.
	d := &Demuxer{MaxUnitSize: 1 << 16}
	d.Write(cat(packHdr(0, 0), pesPkt(0xE0, zeroLen(0), h264Key)))
	chunk := bytes.Repeat([]byte{0x11}, 1400)
	for range 1000 {
		d.Write(chunk)
	}
	zeros := make([]byte, 1400)
	for range 1000 {
		d.Write(zeros)
	}
	if n := d.buffered(); n > 1<<16+1400+65541 {
		t.Errorf("%d bytes buffered", n)
	}
}

// TestDemuxFlushOnMarker: a caller that calls Flush on the RTP marker bit
// (the last packet of a picture) gets each picture without waiting for the
// next one, and nothing changes in what comes out.
func TestDemuxFlushOnMarker(t *testing.T) {
	frames, pk := synthPacks(t, 6, 3, 2500, 4)
	var c collector
	d := c.demuxer()
	for i, p := range pk {
		writeRTP(d, p)
		if len(c.units) != i {
			t.Fatalf("before the marker of frame %d: %d units", i, len(c.units))
		}
		d.Flush()
		if len(c.units) != i+1 {
			t.Fatalf("after the marker of frame %d: %d units", i, len(c.units))
		}
	}
	diffUnits(t, c.units, frames)
}

// writeRTP writes a pack to d as the RTP payloads of at most 1400 bytes that
// a sender makes of it.
func writeRTP(d *Demuxer, pack []byte) {
	for _, q := range Payloads(nil, pack, 1400) {
		d.Write(q)
	}
}
