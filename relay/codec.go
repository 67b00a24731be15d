package relay

import (
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h265"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"

	"github.com/vigil-vms/vigil/ingest"
	"github.com/vigil-vms/vigil/internal/apierr"
)

// maxOfferBytes bounds an SDP offer; real offers are a few kilobytes.
const maxOfferBytes = 64 << 10

// offerCodec is one payload type of an offer's media section.
type offerCodec struct {
	PT       uint8
	Name     string // as in a=rtpmap, e.g. "H264", "opus"
	Clock    uint32
	Channels uint16
	Fmtp     string
	Feedback []webrtc.RTCPFeedback
}

// fmtpParam returns the value of key in the codec's fmtp line.
func (c offerCodec) fmtpParam(key string) (string, bool) {
	for p := range strings.SplitSeq(c.Fmtp, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if ok && strings.EqualFold(k, key) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// offer is what the relay needs of an SDP offer.
type offer struct {
	Video []offerCodec // of the first video section that can receive
	Audio []offerCodec // of the first audio section that can receive
	// HasAudio is true when the offer has an audio section that can receive.
	HasAudio bool
}

// parseOffer checks an SDP offer and extracts the codecs its first video and
// audio sections can receive. Malformed SDP or no video → ErrInvalid.
func parseOffer(s string) (*offer, error) {
	if len(s) > maxOfferBytes {
		return nil, apierr.New(apierr.ErrInvalid, "SDP offer too large (%d bytes, at most %d)", len(s), maxOfferBytes)
	}
	if strings.TrimSpace(s) == "" {
		return nil, apierr.New(apierr.ErrInvalid, "empty SDP offer")
	}
	var d sdp.SessionDescription
	if err := d.UnmarshalString(s); err != nil {
		return nil, apierr.New(apierr.ErrInvalid, "malformed SDP offer: %v", err)
	}
	o := &offer{}
	videoSeen := false
	for _, m := range d.MediaDescriptions {
		kind := strings.ToLower(m.MediaName.Media)
		if kind != "video" && kind != "audio" {
			continue
		}
		if _, sendonly := m.Attribute("sendonly"); sendonly {
			continue
		}
		if _, inactive := m.Attribute("inactive"); inactive {
			continue
		}
		if m.MediaName.Port.Value == 0 && !bundleOnly(m) {
			continue
		}
		codecs, err := mediaCodecs(m)
		if err != nil {
			return nil, err
		}
		switch {
		case kind == "video" && !videoSeen:
			videoSeen = true
			o.Video = codecs
		case kind == "audio" && !o.HasAudio:
			o.HasAudio = true
			o.Audio = codecs
		}
	}
	if !videoSeen {
		return nil, apierr.New(apierr.ErrInvalid, "the SDP offer has no video section that can receive (add a recvonly video transceiver)")
	}
	if len(o.Video) == 0 {
		return nil, apierr.New(apierr.ErrInvalid, "the SDP offer's video section lists no codec")
	}
	return o, nil
}

func bundleOnly(m *sdp.MediaDescription) bool {
	_, ok := m.Attribute("bundle-only")
	return ok
}

// mediaCodecs reads the payload types of a media section with their rtpmap,
// fmtp and rtcp-fb attributes.
func mediaCodecs(m *sdp.MediaDescription) ([]offerCodec, error) {
	var out []offerCodec
	index := map[uint8]int{}
	for _, f := range m.MediaName.Formats {
		pt, err := strconv.ParseUint(f, 10, 8)
		if err != nil || pt > 127 {
			return nil, apierr.New(apierr.ErrInvalid, "malformed SDP offer: payload type %q is not a number 0-127", f)
		}
		index[uint8(pt)] = len(out)
		out = append(out, offerCodec{PT: uint8(pt)})
	}
	lookup := func(v string) (*offerCodec, string, bool) {
		num, rest, _ := strings.Cut(v, " ")
		pt, err := strconv.ParseUint(num, 10, 8)
		if err != nil {
			return nil, "", false
		}
		i, ok := index[uint8(pt)]
		if !ok {
			return nil, "", false
		}
		return &out[i], strings.TrimSpace(rest), true
	}
	for _, a := range m.Attributes {
		switch a.Key {
		case "rtpmap":
			c, rest, ok := lookup(a.Value)
			if !ok {
				continue
			}
			parts := strings.Split(rest, "/")
			if len(parts) < 2 || parts[0] == "" {
				return nil, apierr.New(apierr.ErrInvalid, "malformed SDP offer: bad rtpmap %q", a.Value)
			}
			clock, err := strconv.ParseUint(parts[1], 10, 32)
			if err != nil || clock == 0 {
				return nil, apierr.New(apierr.ErrInvalid, "malformed SDP offer: bad clock rate in rtpmap %q", a.Value)
			}
			c.Name, c.Clock = parts[0], uint32(clock)
			if len(parts) > 2 {
				ch, err := strconv.ParseUint(parts[2], 10, 16)
				if err != nil {
					return nil, apierr.New(apierr.ErrInvalid, "malformed SDP offer: bad channel count in rtpmap %q", a.Value)
				}
				c.Channels = uint16(ch)
			}
		case "fmtp":
			if c, rest, ok := lookup(a.Value); ok {
				c.Fmtp = rest
			}
		case "rtcp-fb":
			if c, rest, ok := lookup(a.Value); ok {
				typ, param, _ := strings.Cut(rest, " ")
				c.Feedback = append(c.Feedback, webrtc.RTCPFeedback{Type: typ, Parameter: param})
			}
		}
	}
	// static payload types without rtpmap (RFC 3551)
	for i := range out {
		if out[i].Name != "" {
			continue
		}
		switch out[i].PT {
		case 0:
			out[i].Name, out[i].Clock = "PCMU", 8000
		case 8:
			out[i].Name, out[i].Clock = "PCMA", 8000
		}
	}
	return out, nil
}

// plan is what a session sends: the video codec chosen from the offer, and
// the audio codec when the camera's audio can be carried.
type plan struct {
	Video      webrtc.RTPCodecParameters
	VideoTrack *ingest.Track
	Audio      *webrtc.RTPCodecParameters // nil: no audio sent
	AudioTrack *ingest.Track
	// AudioSkipped says why the camera's audio is not sent ("" when it is or there is none).
	AudioSkipped string
}

// codecLabel is how a codec is named in messages to users.
func codecLabel(c string) string {
	switch c {
	case ingest.CodecH264:
		return "H.264"
	case ingest.CodecH265:
		return "H.265"
	}
	return c
}

// planTracks matches the camera's tracks with the offer.
func planTracks(m *ingest.Media, o *offer) (*plan, error) {
	vt := m.Video()
	if vt == nil {
		return nil, apierr.New(apierr.ErrUnsupported, "the camera sends no video")
	}
	if n := reorderFrames(vt); n > 0 {
		return nil, apierr.New(apierr.ErrUnsupported,
			"the camera sends %s with B-frames (up to %d reordered pictures), which WebRTC cannot carry; "+
				"turn B-frames off in the camera's encoder settings or use a stream without them", codecLabel(vt.Codec), n)
	}
	p := &plan{VideoTrack: vt}
	var ok bool
	switch vt.Codec {
	case ingest.CodecH264:
		p.Video, ok = chooseH264(vt, o.Video)
	case ingest.CodecH265:
		p.Video, ok = chooseByName(o.Video, "H265", webrtc.MimeTypeH265)
	default:
		return nil, apierr.New(apierr.ErrUnsupported, "the camera sends %s video, which the live relay cannot carry", vt.Codec)
	}
	if !ok {
		var names []string
		seen := map[string]bool{}
		for _, c := range o.Video {
			n := strings.ToUpper(c.Name)
			if n != "" && n != "RTX" && n != "RED" && n != "ULPFEC" && n != "FLEXFEC-03" && !seen[n] {
				seen[n] = true
				names = append(names, n)
			}
		}
		hint := "use a browser with H.264 WebRTC support"
		if vt.Codec == ingest.CodecH265 {
			hint = "use a browser with H.265 WebRTC support or set the camera's sub-stream to H.264"
		}
		return nil, apierr.New(apierr.ErrUnsupported,
			"camera sends %s, which this browser does not offer (it offers %s); %s",
			codecLabel(vt.Codec), describeCodecs(names), hint)
	}
	at := m.Audio()
	switch {
	case at == nil:
	case !o.HasAudio:
		p.AudioSkipped = "the browser asked for no audio"
	case at.Codec == ingest.CodecOpus:
		p.Audio = chooseAudio(o.Audio, "opus", webrtc.MimeTypeOpus, 48000)
	case at.Codec == ingest.CodecPCMU:
		p.Audio = chooseAudio(o.Audio, "PCMU", webrtc.MimeTypePCMU, 8000)
	case at.Codec == ingest.CodecPCMA:
		p.Audio = chooseAudio(o.Audio, "PCMA", webrtc.MimeTypePCMA, 8000)
	default:
		p.AudioSkipped = at.Codec + " audio cannot be carried by WebRTC"
	}
	if at != nil && p.Audio == nil && p.AudioSkipped == "" {
		p.AudioSkipped = "the browser does not offer " + at.Codec
	}
	if p.Audio != nil {
		p.AudioTrack = at
	}
	return p, nil
}

func params(c offerCodec, mime string) webrtc.RTPCodecParameters {
	clock := c.Clock
	return webrtc.RTPCodecParameters{
		RTPCodecCapability: webrtc.RTPCodecCapability{
			MimeType: mime, ClockRate: clock, Channels: c.Channels, SDPFmtpLine: c.Fmtp,
			RTCPFeedback: videoFeedback(mime),
		},
		PayloadType: webrtc.PayloadType(c.PT),
	}
}

func videoFeedback(mime string) []webrtc.RTCPFeedback {
	if !strings.HasPrefix(mime, "video/") {
		return nil
	}
	return []webrtc.RTCPFeedback{{Type: "nack"}, {Type: "nack", Parameter: "pli"}, {Type: "ccm", Parameter: "fir"}}
}

// chooseH264 picks the offered H.264 payload type with packetization-mode=1
// whose profile best matches the camera's SPS.
func chooseH264(t *ingest.Track, offered []offerCodec) (webrtc.RTPCodecParameters, bool) {
	var profile, constraints byte
	var s h264.SPS
	if len(t.SPS) > 0 && s.Unmarshal(t.SPS) == nil {
		profile = s.ProfileIdc
		constraints = t.SPS[2]
	}
	best, bestScore := -1, -1
	for i, c := range offered {
		if !strings.EqualFold(c.Name, "H264") || c.Clock != 90000 {
			continue
		}
		if mode, _ := c.fmtpParam("packetization-mode"); mode != "1" {
			continue
		}
		score := 0
		if plid, ok := c.fmtpParam("profile-level-id"); ok {
			if b, err := hex.DecodeString(plid); err == nil && len(b) == 3 {
				switch {
				case profile != 0 && b[0] == profile && b[1] == constraints:
					score = 3
				case profile != 0 && b[0] == profile:
					score = 2
				case profile == 66 && b[0] == 0x42:
					score = 2
				case b[0] == 0x42 && b[1]&0x40 != 0: // constrained baseline: every browser decodes it
					score = 1
				}
			}
		}
		if score > bestScore {
			best, bestScore = i, score
		}
	}
	if best < 0 {
		return webrtc.RTPCodecParameters{}, false
	}
	return params(offered[best], webrtc.MimeTypeH264), true
}

func chooseByName(offered []offerCodec, name, mime string) (webrtc.RTPCodecParameters, bool) {
	for _, c := range offered {
		if strings.EqualFold(c.Name, name) && c.Clock == 90000 {
			return params(c, mime), true
		}
	}
	return webrtc.RTPCodecParameters{}, false
}

func chooseAudio(offered []offerCodec, name, mime string, clock uint32) *webrtc.RTPCodecParameters {
	for _, c := range offered {
		if strings.EqualFold(c.Name, name) && c.Clock == clock {
			p := params(c, mime)
			return &p
		}
	}
	return nil
}

// reorderFrames returns how many pictures the stream may reorder (B-frames),
// as its SPS declares it: 0 for none, -1 when the SPS does not say.
func reorderFrames(t *ingest.Track) int {
	switch t.Codec {
	case ingest.CodecH264:
		var s h264.SPS
		if len(t.SPS) == 0 || s.Unmarshal(t.SPS) != nil {
			return -1
		}
		if s.VUI != nil && s.VUI.BitstreamRestriction != nil {
			return int(s.VUI.BitstreamRestriction.MaxNumReorderFrames)
		}
		if s.ProfileIdc == 66 { // baseline has no B slices
			return 0
		}
		return -1
	case ingest.CodecH265:
		var s h265.SPS
		if len(t.SPS) == 0 || s.Unmarshal(t.SPS) != nil {
			return -1
		}
		if n := len(s.MaxNumReorderPics); n > 0 {
			return int(s.MaxNumReorderPics[n-1])
		}
		return -1
	}
	return -1
}

// registerCodecs puts the codecs the relay can send into the process's media engine.
func registerCodecs(me *webrtc.MediaEngine) error {
	type reg struct {
		c   webrtc.RTPCodecParameters
		typ webrtc.RTPCodecType
	}
	var regs []reg
	pt := webrtc.PayloadType(96)
	for _, plid := range []string{"42001f", "42e01f", "4d001f", "64001f"} {
		regs = append(regs, reg{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH264, ClockRate: 90000,
				SDPFmtpLine:  "level-asymmetry-allowed=1;packetization-mode=1;profile-level-id=" + plid,
				RTCPFeedback: videoFeedback(webrtc.MimeTypeH264),
			},
			PayloadType: pt,
		}, webrtc.RTPCodecTypeVideo})
		pt++
	}
	regs = append(regs,
		reg{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{
				MimeType: webrtc.MimeTypeH265, ClockRate: 90000, RTCPFeedback: videoFeedback(webrtc.MimeTypeH265),
			},
			PayloadType: pt,
		}, webrtc.RTPCodecTypeVideo},
		reg{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2, SDPFmtpLine: "minptime=10;useinbandfec=1"},
			PayloadType:        111,
		}, webrtc.RTPCodecTypeAudio},
		reg{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMU, ClockRate: 8000},
			PayloadType:        0,
		}, webrtc.RTPCodecTypeAudio},
		reg{webrtc.RTPCodecParameters{
			RTPCodecCapability: webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypePCMA, ClockRate: 8000},
			PayloadType:        8,
		}, webrtc.RTPCodecTypeAudio},
	)
	for _, r := range regs {
		if err := me.RegisterCodec(r.c, r.typ); err != nil {
			return fmt.Errorf("%s: %w", r.c.MimeType, err)
		}
	}
	return nil
}

// sdpFragment is a trickle-ICE SDP fragment (RFC 8840) as WHEP PATCH sends it.
type sdpFragment struct {
	Ufrag, Pwd string
	Candidates []fragCandidate
	End        bool // a=end-of-candidates
}

type fragCandidate struct {
	Mid       string
	Candidate string // "candidate:..." without "a="
}

// parseSDPFragment reads the lines of a trickle-ICE fragment. Lines it does not
// need are ignored; a candidate line that is not one is ErrInvalid.
func parseSDPFragment(s string) (*sdpFragment, error) {
	if len(s) > maxOfferBytes {
		return nil, apierr.New(apierr.ErrInvalid, "SDP fragment too large (%d bytes, at most %d)", len(s), maxOfferBytes)
	}
	f := &sdpFragment{}
	mid := ""
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.TrimRight(line, "\r")
		if line == "" {
			continue
		}
		if len(line) < 2 || line[1] != '=' {
			return nil, apierr.New(apierr.ErrInvalid, "malformed SDP fragment line %q", truncate(line))
		}
		if line[0] != 'a' {
			continue
		}
		key, val, _ := strings.Cut(line[2:], ":")
		switch key {
		case "ice-ufrag":
			f.Ufrag = val
		case "ice-pwd":
			f.Pwd = val
		case "mid":
			mid = val
		case "end-of-candidates":
			f.End = true
		case "candidate":
			if len(strings.Fields(val)) < 8 {
				return nil, apierr.New(apierr.ErrInvalid, "malformed ICE candidate %q", truncate(line))
			}
			f.Candidates = append(f.Candidates, fragCandidate{Mid: mid, Candidate: line[2:]})
		}
	}
	if f.Ufrag == "" && len(f.Candidates) == 0 && !f.End {
		return nil, apierr.New(apierr.ErrInvalid, "the SDP fragment has no ICE candidate")
	}
	return f, nil
}

func truncate(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
