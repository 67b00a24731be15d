package ingest

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
)

// NAL unit types used here (H.264: ITU-T H.264 table 7-1, H.265: table 7-1).
const (
	h264NALIDR = 5
	h264NALSPS = 7
	h264NALPPS = 8
	h264NALAUD = 9

	h265NALBLAWLP  = 16 // first IRAP type
	h265NALRSVIRAP = 23 // last IRAP type
	h265NALVPS     = 32
	h265NALSPS     = 33
	h265NALPPS     = 34
	h265NALAUD     = 35
)

// maxParamSetSize bounds a cached parameter set: a real SPS is well under 1 KiB.
const maxParamSetSize = 64 << 10

// paramSets keeps the current parameter sets of a video track, from the SDP
// and from the NAL units in band, and makes every keyframe unit start with
// them. It is used by one goroutine (the RTP callback of one track).
type paramSets struct {
	codec         string // CodecH264 or CodecH265
	vps, sps, pps []byte
	width, height int
	spsErr        error // why the current SPS could not be parsed, nil when it could
}

func newParamSets(codec string, vps, sps, pps []byte) *paramSets {
	p := &paramSets{codec: codec}
	if codec == CodecH265 {
		p.setVPS(vps)
	}
	p.setSPS(sps)
	p.setPPS(pps)
	return p
}

func (p *paramSets) setVPS(b []byte) {
	if len(b) == 0 || len(b) > maxParamSetSize || bytes.Equal(b, p.vps) {
		return
	}
	p.vps = bytes.Clone(b)
}

func (p *paramSets) setPPS(b []byte) {
	if len(b) == 0 || len(b) > maxParamSetSize || bytes.Equal(b, p.pps) {
		return
	}
	p.pps = bytes.Clone(b)
}

// setSPS caches an SPS and takes the picture size from it. An SPS that does
// not parse is remembered with its error: the track then has no usable
// parameter sets until a good one arrives.
func (p *paramSets) setSPS(b []byte) {
	if len(b) == 0 || len(b) > maxParamSetSize || bytes.Equal(b, p.sps) {
		return
	}
	p.sps = bytes.Clone(b)
	w, h, err := spsSize(p.codec, p.sps)
	p.width, p.height, p.spsErr = w, h, err
}

// spsSize parses an SPS NAL unit and returns the picture size.
func spsSize(codec string, sps []byte) (width, height int, err error) {
	defer func() {
		// the SPS parsers are third-party code fed with bytes from the network
		if r := recover(); r != nil {
			width, height, err = 0, 0, fmt.Errorf("parse %s SPS: %v", codec, r)
		}
	}()
	switch codec {
	case CodecH264:
		var s h264.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, fmt.Errorf("parse H264 SPS: %w", err)
		}
		width, height = s.Width(), s.Height()
	case CodecH265:
		var s h265.SPS
		if err := s.Unmarshal(sps); err != nil {
			return 0, 0, fmt.Errorf("parse H265 SPS: %w", err)
		}
		width, height = s.Width(), s.Height()
	default:
		return 0, 0, fmt.Errorf("no SPS in codec %q", codec)
	}
	if width <= 0 || height <= 0 || width > 16384 || height > 16384 {
		return 0, 0, fmt.Errorf("parse %s SPS: implausible picture size %dx%d", codec, width, height)
	}
	return width, height, nil
}

// ready reports whether the parameter sets needed to decode a keyframe are known.
func (p *paramSets) ready() bool {
	if p.sps == nil || p.pps == nil || p.spsErr != nil {
		return false
	}
	return p.codec != CodecH265 || p.vps != nil
}

// errNoParams explains why a keyframe cannot be used.
func (p *paramSets) errNoParams() error {
	switch {
	case p.spsErr != nil:
		return p.spsErr
	case p.sps == nil:
		return errors.New("no SPS received")
	case p.pps == nil:
		return errors.New("no PPS received")
	default:
		return errors.New("no VPS received")
	}
}

// naluType returns the NAL unit type, or -1 for an empty NAL unit.
func naluType(codec string, nalu []byte) int {
	if len(nalu) == 0 {
		return -1
	}
	if codec == CodecH265 {
		return int(nalu[0]>>1) & 0x3f
	}
	return int(nalu[0]) & 0x1f
}

// isParamSet tells VPS, SPS and PPS NAL units (and access unit delimiters,
// which must precede them and are therefore dropped from rebuilt keyframes).
func isParamSet(codec string, typ int) bool {
	if codec == CodecH265 {
		return typ == h265NALVPS || typ == h265NALSPS || typ == h265NALPPS || typ == h265NALAUD
	}
	return typ == h264NALSPS || typ == h264NALPPS || typ == h264NALAUD
}

// isKeyNALU tells the NAL units of a picture that decodes on its own (IDR, or IRAP for H.265).
func isKeyNALU(codec string, typ int) bool {
	if codec == CodecH265 {
		return typ >= h265NALBLAWLP && typ <= h265NALRSVIRAP
	}
	return typ == h264NALIDR
}

// accessUnit processes one video access unit: it caches the parameter sets it
// carries, and when it is a keyframe returns it with the current parameter sets
// in front. key is false for a keyframe whose parameter sets are unknown (it
// cannot be decoded on its own). Empty NAL units are removed; out is nil when
// nothing is left.
func (p *paramSets) accessUnit(au [][]byte) (out [][]byte, key bool) {
	hasKey := false
	empty := 0
	for _, n := range au {
		typ := naluType(p.codec, n)
		switch {
		case typ < 0:
			empty++
		case p.codec == CodecH265 && typ == h265NALVPS:
			p.setVPS(n)
		case (p.codec == CodecH265 && typ == h265NALSPS) || (p.codec == CodecH264 && typ == h264NALSPS):
			p.setSPS(n)
		case (p.codec == CodecH265 && typ == h265NALPPS) || (p.codec == CodecH264 && typ == h264NALPPS):
			p.setPPS(n)
		case isKeyNALU(p.codec, typ):
			hasKey = true
		}
	}
	if !hasKey || !p.ready() {
		if empty == 0 {
			return au, false
		}
		out = make([][]byte, 0, len(au)-empty)
		for _, n := range au {
			if len(n) > 0 {
				out = append(out, n)
			}
		}
		if len(out) == 0 {
			return nil, false
		}
		return out, false
	}
	out = make([][]byte, 0, len(au)+3)
	if p.codec == CodecH265 {
		out = append(out, p.vps)
	}
	out = append(out, p.sps, p.pps)
	for _, n := range au {
		typ := naluType(p.codec, n)
		if typ < 0 || isParamSet(p.codec, typ) {
			continue
		}
		out = append(out, n)
	}
	return out, true
}
