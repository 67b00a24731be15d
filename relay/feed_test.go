package relay

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"

	"github.com/vigil-vms/vigil/ingest"
)

// accessUnit is one picture of a fixture.
type accessUnit struct {
	nalus [][]byte
	key   bool
}

// readFixture splits an Annex-B file (testdata/, made by gen.sh) into access units.
func readFixture(t testing.TB, name, codec string) []accessUnit {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	aus, err := splitAccessUnits(data, codec)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return aus
}

func splitAccessUnits(data []byte, codec string) ([]accessUnit, error) {
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(data); err != nil {
		return nil, err
	}
	var out []accessUnit
	var cur accessUnit
	hasVCL := false
	flush := func() {
		if len(cur.nalus) > 0 && hasVCL {
			out = append(out, cur)
		}
		cur, hasVCL = accessUnit{}, false
	}
	for _, n := range nalus {
		if len(n) < 3 {
			continue
		}
		var vcl, first, key bool
		if codec == ingest.CodecH265 {
			typ := h265.NALUType((n[0] >> 1) & 0x3f)
			vcl = typ < 32
			first = vcl && n[2]&0x80 != 0 // first_slice_segment_in_pic_flag
			key = typ >= 16 && typ <= 21
		} else {
			typ := h264.NALUType(n[0] & 0x1f)
			vcl = typ >= 1 && typ <= 5
			first = vcl && n[1]&0x80 != 0 // first_mb_in_slice == 0
			key = typ == h264.NALUTypeIDR
		}
		if hasVCL && (first || !vcl) {
			flush()
		}
		cur.nalus = append(cur.nalus, n)
		if vcl {
			hasVCL = true
		}
		if key {
			cur.key = true
		}
	}
	flush()
	if len(out) == 0 || !out[0].key {
		return nil, fmt.Errorf("no access unit starting with a keyframe")
	}
	return out, nil
}

// videoTrack describes a fixture's video as the puller would publish it.
func videoTrack(t testing.TB, codec string, first accessUnit) *ingest.Track {
	t.Helper()
	tr := &ingest.Track{Video: true, Codec: codec, ClockRate: 90000}
	for _, n := range first.nalus {
		if codec == ingest.CodecH265 {
			switch h265.NALUType((n[0] >> 1) & 0x3f) {
			case h265.NALUType_VPS_NUT:
				tr.VPS = n
			case h265.NALUType_SPS_NUT:
				tr.SPS = n
				tr.Width, tr.Height = pictureSize[h265.SPS](t, n)
			case h265.NALUType_PPS_NUT:
				tr.PPS = n
			}
			continue
		}
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeSPS:
			tr.SPS = n
			tr.Width, tr.Height = pictureSize[h264.SPS](t, n)
		case h264.NALUTypePPS:
			tr.PPS = n
		}
	}
	if tr.SPS == nil {
		t.Fatal("fixture's first access unit has no SPS")
	}
	return tr
}

// pictureSize is the width and height an SPS (h264.SPS or h265.SPS) gives.
func pictureSize[S any, P interface {
	*S
	Unmarshal([]byte) error
	Width() int
	Height() int
}](t testing.TB, sps []byte) (width, height int) {
	t.Helper()
	p := P(new(S))
	if err := p.Unmarshal(sps); err != nil {
		t.Fatal(err)
	}
	return p.Width(), p.Height()
}

// feeder plays a fixture into a hub stream at 25 fps, looping, as the RTSP
// puller would: continuous PTS, optional G.711 or Opus audio.
type feeder struct {
	stream *ingest.Stream
	aus    []accessUnit
	codec  string
	audio  string // "", ingest.CodecPCMU or ingest.CodecOpus
	video  *ingest.Track

	mu      sync.Mutex
	paused  bool
	media   *ingest.Media
	written int
}

func newFeeder(t testing.TB, name, fixture, codec, audio string) *feeder {
	aus := readFixture(t, fixture, codec)
	f := &feeder{stream: ingest.NewStream(name), aus: aus, codec: codec, audio: audio}
	f.media = f.stream.SetTracks(f.tracks(t))
	return f
}

// tracks returns fresh Track values, as a reconnecting puller makes them.
func (f *feeder) tracks(t testing.TB) []*ingest.Track {
	v := videoTrack(t, f.codec, f.aus[0])
	ts := []*ingest.Track{v}
	switch f.audio {
	case ingest.CodecPCMU:
		ts = append(ts, &ingest.Track{Codec: ingest.CodecPCMU, ClockRate: 8000, SampleRate: 8000, ChannelCount: 1})
	case ingest.CodecOpus:
		ts = append(ts, &ingest.Track{Codec: ingest.CodecOpus, ClockRate: 48000, SampleRate: 48000, ChannelCount: 2})
	}
	return ts
}

// setPaused stops or resumes writing (a camera that went away and came back).
func (f *feeder) setPaused(p bool) {
	f.mu.Lock()
	f.paused = p
	f.mu.Unlock()
}

// reconnect publishes the same tracks again, as the puller does after a
// reconnection; it returns the Media now current.
func (f *feeder) reconnect(t testing.TB) *ingest.Media {
	f.stream.SetOffline()
	m := f.stream.SetTracks(f.tracks(t))
	f.mu.Lock()
	f.media = m
	f.mu.Unlock()
	return m
}

func (f *feeder) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.written
}

// run writes until ctx ends. A paused feeder keeps its clock running, so PTS
// stays continuous with wall time, as the hub promises.
func (f *feeder) run(ctx context.Context) {
	const frame = 40 * time.Millisecond
	tick := time.NewTicker(frame)
	defer tick.Stop()
	start := time.Now()
	i := 0
	pts := time.Duration(0)
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		f.mu.Lock()
		paused, media := f.paused, f.media
		f.mu.Unlock()
		au := f.aus[i%len(f.aus)]
		i++
		if !paused {
			f.stream.Write(&ingest.Unit{
				Media: media, Track: media.Tracks[0], PTS: pts, Time: start.Add(pts),
				Data: au.nalus, Keyframe: au.key,
			})
			if len(media.Tracks) > 1 {
				for k := range 2 { // two 20 ms audio frames per picture
					ap := pts + time.Duration(k)*20*time.Millisecond
					f.stream.Write(&ingest.Unit{
						Media: media, Track: media.Tracks[1], PTS: ap, Time: start.Add(ap),
						Data: [][]byte{f.audioFrame()},
					})
				}
			}
			f.mu.Lock()
			f.written++
			f.mu.Unlock()
		}
		pts += frame
	}
}

// audioFrame is 20 ms of audio: µ-law silence, or an Opus silence frame.
func (f *feeder) audioFrame() []byte {
	if f.audio == ingest.CodecOpus {
		return []byte{0xf8, 0xff, 0xfe}
	}
	b := make([]byte, 160)
	for i := range b {
		b[i] = 0xff
	}
	return b
}

// testSource is a Source over a fixed set of streams ("cam/main").
type testSource struct {
	mu      sync.Mutex
	streams map[string]*ingest.Stream
}

func (s *testSource) Stream(id string, kind ingest.StreamKind) *ingest.Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.streams[id+"/"+string(kind)]
}

func (s *testSource) set(id string, kind ingest.StreamKind, st *ingest.Stream) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.streams == nil {
		s.streams = map[string]*ingest.Stream{}
	}
	s.streams[id+"/"+string(kind)] = st
}
