package camsim

import (
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/bluenviron/gortsplib/v4"
	"github.com/bluenviron/gortsplib/v4/pkg/base"
	"github.com/bluenviron/gortsplib/v4/pkg/description"
	"github.com/bluenviron/gortsplib/v4/pkg/format"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v4/pkg/format/rtph265"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/rtp"
)

// videoAU is one access unit a test reader decoded from RTP.
type videoAU struct {
	at  time.Time
	ts  uint32
	key bool
	au  [][]byte
}

// testReader plays one stream with a real gortsplib client and records what arrives.
// Callbacks run on the client's goroutines, so they only record; the test goroutine
// checks.
type testReader struct {
	c     *gortsplib.Client
	desc  *description.Session
	codec string

	mu          sync.Mutex
	video       []videoAU
	videoPkts   int
	audioPkts   int
	seqGaps     int
	lastSeq     map[*description.Media]uint16
	decodeError error
}

// play connects to url over the given transport and starts playing every media.
func play(url string, transport gortsplib.Transport) (*testReader, error) {
	u, err := base.ParseURL(url)
	if err != nil {
		return nil, err
	}
	r := &testReader{lastSeq: make(map[*description.Media]uint16)}
	r.c = &gortsplib.Client{Scheme: u.Scheme, Host: u.Host, Transport: &transport}
	if err := r.c.Start2(); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			r.c.Close()
		}
	}()
	r.desc, _, err = r.c.Describe(u)
	if err != nil {
		return nil, err
	}
	var decode func(*rtp.Packet) ([][]byte, error)
	var isKey func([][]byte) bool
	var videoMedia *description.Media
	for _, m := range r.desc.Medias {
		switch f := m.Formats[0].(type) {
		case *format.H264:
			d, err := f.CreateDecoder()
			if err != nil {
				return nil, err
			}
			decode, isKey, videoMedia, r.codec = d.Decode, h264.IsRandomAccess, m, CodecH264
		case *format.H265:
			d, err := f.CreateDecoder()
			if err != nil {
				return nil, err
			}
			decode, isKey, videoMedia, r.codec = d.Decode, h265.IsRandomAccess, m, CodecH265
		}
	}
	if videoMedia == nil {
		return nil, errors.New("no video media")
	}
	if err := r.c.SetupAll(r.desc.BaseURL, r.desc.Medias); err != nil {
		return nil, err
	}
	r.c.OnPacketRTPAny(func(m *description.Media, _ format.Format, pkt *rtp.Packet) {
		r.mu.Lock()
		defer r.mu.Unlock()
		if last, seen := r.lastSeq[m]; seen && pkt.SequenceNumber != last+1 {
			r.seqGaps++
		}
		r.lastSeq[m] = pkt.SequenceNumber
		if m != videoMedia {
			r.audioPkts++
			return
		}
		r.videoPkts++
		au, err := decode(pkt)
		if err != nil {
			if !errors.Is(err, rtph264.ErrMorePacketsNeeded) && !errors.Is(err, rtph265.ErrMorePacketsNeeded) &&
				!errors.Is(err, rtph264.ErrNonStartingPacketAndNoPrevious) && !errors.Is(err, rtph265.ErrNonStartingPacketAndNoPrevious) &&
				r.decodeError == nil {
				r.decodeError = err
			}
			return
		}
		r.video = append(r.video, videoAU{at: time.Now(), ts: pkt.Timestamp, key: isKey(au), au: au})
	})
	if _, err := r.c.Play(nil); err != nil {
		return nil, err
	}
	ok = true
	return r, nil
}

func (r *testReader) Close() { r.c.Close() }

// snapshot returns a copy of the access units received so far and the packet counts.
func (r *testReader) snapshot() (aus []videoAU, videoPkts, audioPkts int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]videoAU(nil), r.video...), r.videoPkts, r.audioPkts
}

func (r *testReader) packets() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.videoPkts + r.audioPkts
}

// firstKey returns the index of the first keyframe received, or -1.
func firstKey(aus []videoAU) int {
	for i, a := range aus {
		if a.key {
			return i
		}
	}
	return -1
}

// spsSize parses the SPS at the head of a keyframe and returns the picture size.
func spsSize(codec string, au [][]byte) (int, int, error) {
	for _, nalu := range au {
		switch codec {
		case CodecH264:
			if h264.NALUType(nalu[0]&0x1f) == h264.NALUTypeSPS {
				var sps h264.SPS
				if err := sps.Unmarshal(nalu); err != nil {
					return 0, 0, err
				}
				return sps.Width(), sps.Height(), nil
			}
		case CodecH265:
			if h265.NALUType((nalu[0]>>1)&0x3f) == h265.NALUType_SPS_NUT {
				var sps h265.SPS
				if err := sps.Unmarshal(nalu); err != nil {
					return 0, 0, err
				}
				return sps.Width(), sps.Height(), nil
			}
		}
	}
	return 0, 0, fmt.Errorf("no SPS in a keyframe of %d NAL units", len(au))
}
