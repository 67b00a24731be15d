package recorder

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/mpeg4audio"
	"github.com/bluenviron/mediacommon/v2/pkg/formats/fmp4"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/recorder/archive"
)

// recFixture is the test clip: H.264 access units at 25 fps and AAC frames.
type recFixture struct {
	aus      [][][]byte // NAL units of each picture
	keyframe []bool
	sps, pps []byte
	aac      [][]byte // AAC frames (1024 samples each)
	aacConf  []byte
	rate     int // AAC sample rate
}

const recFPS = 25

var recFixtureOnce struct {
	sync.Once
	fx  *recFixture
	err error
}

// loadRecFixture reads testdata/cam.h264 (AUD-delimited) and testdata/audio.aac (ADTS).
func loadRecFixture(t testing.TB) *recFixture {
	t.Helper()
	recFixtureOnce.Do(func() {
		recFixtureOnce.fx, recFixtureOnce.err = readRecFixture()
	})
	if recFixtureOnce.err != nil {
		t.Fatalf("fixture: %v", recFixtureOnce.err)
	}
	return recFixtureOnce.fx
}

func readRecFixture() (*recFixture, error) {
	raw, err := os.ReadFile(filepath.Join("testdata", "cam.h264"))
	if err != nil {
		return nil, err
	}
	var nalus h264.AnnexB
	if err := nalus.Unmarshal(raw); err != nil {
		return nil, err
	}
	fx := &recFixture{}
	var cur [][]byte
	key := false
	push := func() {
		if len(cur) > 0 {
			fx.aus = append(fx.aus, cur)
			fx.keyframe = append(fx.keyframe, key)
		}
		cur, key = nil, false
	}
	for _, n := range nalus {
		switch h264.NALUType(n[0] & 0x1f) {
		case h264.NALUTypeAccessUnitDelimiter:
			push()
			continue
		case h264.NALUTypeSPS:
			fx.sps = n
		case h264.NALUTypePPS:
			fx.pps = n
		case h264.NALUTypeIDR:
			key = true
		}
		cur = append(cur, n)
	}
	push()
	raw, err = os.ReadFile(filepath.Join("testdata", "audio.aac"))
	if err != nil {
		return nil, err
	}
	var pkts mpeg4audio.ADTSPackets
	if err := pkts.Unmarshal(raw); err != nil {
		return nil, err
	}
	conf := mpeg4audio.AudioSpecificConfig{Type: pkts[0].Type, SampleRate: pkts[0].SampleRate, ChannelCount: pkts[0].ChannelCount}
	if fx.aacConf, err = conf.Marshal(); err != nil {
		return nil, err
	}
	fx.rate = pkts[0].SampleRate
	for _, p := range pkts {
		fx.aac = append(fx.aac, p.AU)
	}
	return fx, nil
}

func (fx *recFixture) tracks(audio bool) []*ingest.Track {
	ts := []*ingest.Track{{Video: true, Codec: ingest.CodecH264, ClockRate: 90000, SPS: fx.sps, PPS: fx.pps, Width: 320, Height: 240}}
	if audio {
		ts = append(ts, &ingest.Track{Codec: ingest.CodecAAC, ClockRate: fx.rate, SampleRate: fx.rate, ChannelCount: 1, AACConfig: fx.aacConf})
	}
	return ts
}

// recClip generates the units of a looping camera: video and audio in PTS order,
// Time = base + PTS.
type recClip struct {
	fx     *recFixture
	media  *ingest.Media
	base   time.Time
	vi, ai int
}

func newRecClip(fx *recFixture, media *ingest.Media, base time.Time) *recClip {
	return &recClip{fx: fx, media: media, base: base}
}

func (c *recClip) videoPTS() time.Duration { return time.Duration(c.vi) * time.Second / recFPS }
func (c *recClip) audioPTS() time.Duration {
	return time.Duration(int64(c.ai) * 1024 * int64(time.Second) / int64(c.fx.rate))
}

// next returns the next unit.
func (c *recClip) next() *ingest.Unit {
	a := c.media.Audio()
	if a != nil && c.audioPTS() < c.videoPTS() {
		pts := c.audioPTS()
		u := &ingest.Unit{Media: c.media, Track: a, PTS: pts, Time: c.base.Add(pts), Data: [][]byte{c.fx.aac[c.ai%len(c.fx.aac)]}}
		c.ai++
		return u
	}
	pts := c.videoPTS()
	i := c.vi % len(c.fx.aus)
	u := &ingest.Unit{Media: c.media, Track: c.media.Video(), PTS: pts, Time: c.base.Add(pts), Data: c.fx.aus[i], Keyframe: c.fx.keyframe[i]}
	c.vi++
	return u
}

// feedUntil writes units with PTS < end into st, without pacing.
func (c *recClip) feedUntil(st *ingest.Stream, end time.Duration) {
	for {
		if c.videoPTS() >= end && (c.media.Audio() == nil || c.audioPTS() >= end) {
			return
		}
		st.Write(c.next())
	}
}

// feedPaced writes units with PTS < end into st at the camera's real-time pace.
func (c *recClip) feedPaced(st *ingest.Stream, end time.Duration) {
	t0, p0 := time.Now(), c.videoPTS()
	for {
		if c.videoPTS() >= end && (c.media.Audio() == nil || c.audioPTS() >= end) {
			return
		}
		u := c.next()
		if d := time.Until(t0.Add(u.PTS - p0)); d > 0 {
			time.Sleep(d) // pacing like a camera, not waiting for a condition
		}
		st.Write(u)
	}
}

// recStreams is a Source over hub recStreams that the test feeds itself.
type recStreams struct {
	mu      sync.Mutex
	m       map[string]*ingest.Stream
	changed chan struct{} // closed and replaced by add
}

func (s *recStreams) StreamsChanged() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.changed == nil {
		s.changed = make(chan struct{})
	}
	return s.changed
}

func (s *recStreams) Stream(id string, kind ingest.StreamKind) *ingest.Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	if kind != ingest.Main {
		return nil
	}
	return s.m[id]
}

func (s *recStreams) add(id string) *ingest.Stream {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*ingest.Stream{}
	}
	st := ingest.NewStream(id + "/main")
	s.m[id] = st
	if s.changed != nil {
		close(s.changed)
		s.changed = nil
	}
	return st
}

// checkRecStored verifies every indexed segment of the cameras: the object
// exists, parses as fMP4 with mediacommon, starts with a keyframe, and its
// size, times and fragment positions match the index row. exact checks the
// timing of the test clip too (25 fps, a keyframe every 2 s from the start);
// codec is the video codec expected (h264, h265).
// It returns the rows.
func checkRecStored(t *testing.T, store archive.Store, ix *archive.Index, cameras []string, exact bool, codec string) map[string][]archive.Segment {
	t.Helper()
	ctx := context.Background()
	out := map[string][]archive.Segment{}
	for _, cam := range cameras {
		segs, err := ix.Segments(ctx, cam, time.Unix(0, 0), time.Unix(1<<32, 0), true)
		if err != nil {
			t.Fatal(err)
		}
		out[cam] = segs
		for _, s := range segs {
			rc, err := store.Get(ctx, s.Key, 0, -1)
			if err != nil {
				t.Fatalf("get %s: %v", s.Key, err)
			}
			var buf bytes.Buffer
			_, err = buf.ReadFrom(rc)
			rc.Close()
			if err != nil {
				t.Fatal(err)
			}
			data := buf.Bytes()
			if int64(len(data)) != s.Bytes {
				t.Errorf("%s: %d bytes stored, index says %d", s.Key, len(data), s.Bytes)
			}
			var init fmp4.Init
			if err := init.Unmarshal(bytes.NewReader(data[:s.InitSize])); err != nil {
				t.Fatalf("%s: init: %v", s.Key, err)
			}
			ok := false
			switch init.Tracks[0].Codec.(type) {
			case *fmp4.CodecH264:
				ok = codec == "h264"
			case *fmp4.CodecH265:
				ok = codec == "h265"
			}
			if !ok {
				t.Errorf("%s: first track is %T", s.Key, init.Tracks[0].Codec)
			}
			var parts fmp4.Parts
			if err := parts.Unmarshal(data[s.InitSize:]); err != nil {
				t.Fatalf("%s: fragments: %v", s.Key, err)
			}
			if len(parts) != len(s.Fragments) {
				t.Fatalf("%s: %d fragments in the file, %d in the index", s.Key, len(parts), len(s.Fragments))
			}
			if v := parts[0].Tracks[0]; v.ID != 1 || len(v.Samples) == 0 || v.Samples[0].IsNonSyncSample {
				t.Errorf("%s: does not start with a video keyframe", s.Key)
			}
			pos := s.InitSize
			var dur uint64
			for i, f := range s.Fragments {
				if f.Pos != pos {
					t.Errorf("%s fragment %d: pos %d, want %d", s.Key, i, f.Pos, pos)
				}
				pos += f.Size
				v := parts[i].Tracks[0]
				if want := scaleDuration(v.BaseTime, 90000); f.Offset != want {
					t.Errorf("%s fragment %d: offset %v, want %v", s.Key, i, f.Offset, want)
				}
				if f.Keyframe != !v.Samples[0].IsNonSyncSample {
					t.Errorf("%s fragment %d: keyframe flag %v", s.Key, i, f.Keyframe)
				}
				var fdur uint64
				for _, smp := range v.Samples {
					fdur += uint64(smp.Duration)
				}
				dur += fdur
				if d := scaleDuration(fdur, 90000); d > time.Second+100*time.Millisecond {
					t.Errorf("%s fragment %d lasts %v", s.Key, i, d)
				}
				if exact && f.Keyframe != (i == 0 || scaleDuration(v.BaseTime, 90000)%(2*time.Second) == 0) {
					t.Errorf("%s fragment %d at %v: keyframe %v", s.Key, i, f.Offset, f.Keyframe)
				}
			}
			if pos != s.Bytes {
				t.Errorf("%s: fragments end at %d of %d bytes", s.Key, pos, s.Bytes)
			}
			if got := s.Start.Add(scaleDuration(dur, 90000)); !got.Equal(s.End) {
				t.Errorf("%s: samples end at %v, index says %v", s.Key, got, s.End)
			}
		}
	}
	return out
}
