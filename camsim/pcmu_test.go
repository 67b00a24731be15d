package camsim

import (
	"testing"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/g711"

	"github.com/vigil-vms/vigil/internal/testkit"
)

// TestPCMUAudio: AudioCodec AudioPCMU offers G.711 µ-law at 8 kHz (payload
// type 0) and sends it in real time, 50 packets of 20 ms a second, whose
// samples decode to a tone (not silence); an unknown codec is refused.
func TestPCMUAudio(t *testing.T) {
	if _, err := New(Options{Audio: true, AudioCodec: "mp3"}); err == nil {
		t.Fatal("an unknown audio codec was accepted")
	}
	tone, err := pcmuTone()
	if err != nil {
		t.Fatal(err)
	}
	var lpcm g711.Mulaw
	lpcm.Unmarshal(tone.frames[3].payloads[0].data)
	peak := 0
	for i := 0; i+1 < len(lpcm); i += 2 {
		v := int(int16(uint16(lpcm[i])<<8 | uint16(lpcm[i+1])))
		peak = max(peak, v, -v)
	}
	if len(lpcm) != 2*160 || peak < 7000 || peak > 9000 {
		t.Fatalf("a packet decodes to %d samples peaking at %d, want 160 of a tone at 8000", len(lpcm)/2, peak)
	}

	s := startServer(t, Options{Count: 1, Audio: true, AudioCodec: AudioPCMU})
	r := mustPlay(t, s.URL(1, false), gortsplib.TransportTCP)
	var g *format.G711
	for _, m := range r.desc.Medias {
		if f, ok := m.Formats[0].(*format.G711); ok {
			g = f
		}
	}
	if g == nil || !g.MULaw || g.ClockRate() != 8000 || g.PayloadType() != 0 {
		t.Fatalf("the stream offers %+v, want G.711 µ-law at 8 kHz, payload type 0", g)
	}
	_, _, first := r.snapshot()
	start := time.Now()
	testkit.WaitFor(t, 10*time.Second, "2 s of audio", func() bool { return time.Since(start) >= 2*time.Second })
	_, _, last := r.snapshot()
	if rate := float64(last-first) / time.Since(start).Seconds(); rate < 40 || rate > 60 {
		t.Fatalf("%.1f audio packets a second, want 50", rate)
	}
}
