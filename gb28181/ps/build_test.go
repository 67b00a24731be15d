package ps

import "encoding/binary"

// The builders here write MPEG-PS structures bit by bit from ISO/IEC
// 13818-1 §2.5.3, independently of the muxer's byte arithmetic.

type bitWriter struct {
	b    []byte
	nbit int
}

func (w *bitWriter) put(n int, v uint64) {
	for i := n - 1; i >= 0; i-- {
		if w.nbit%8 == 0 {
			w.b = append(w.b, 0)
		}
		if v>>uint(i)&1 != 0 {
			w.b[len(w.b)-1] |= 0x80 >> uint(w.nbit%8)
		}
		w.nbit++
	}
}

// timestamp puts a 33-bit clock value (SCR base, PTS, DTS) as the three
// marker-separated parts of ISO/IEC 13818-1 §2.5.3.4 and §2.4.3.7, each
// followed by a marker bit.
func (w *bitWriter) timestamp(v int64) {
	w.put(3, uint64(v>>30))
	w.put(1, 1)
	w.put(15, uint64(v>>15))
	w.put(1, 1)
	w.put(15, uint64(v))
	w.put(1, 1)
}

// packHdr is an MPEG-2 pack header with the muxer's mux rate (50000) and
// stuffing bytes.
func packHdr(scr int64, stuffing int) []byte {
	w := &bitWriter{b: []byte{0, 0, 1, 0xBA}, nbit: 32}
	w.put(2, 1)
	w.timestamp(scr)
	w.put(9, 0) // SCR extension
	w.put(1, 1)
	w.put(22, 50000)
	w.put(2, 3)
	w.put(5, 31)
	w.put(3, uint64(stuffing))
	for range stuffing {
		w.put(8, 0xFF)
	}
	return w.b
}

// mpeg1Pack is an MPEG-1 pack header (ISO/IEC 11172-1), as ffmpeg's "mpeg" muxer writes.
func mpeg1Pack(scr int64) []byte {
	w := &bitWriter{b: []byte{0, 0, 1, 0xBA}, nbit: 32}
	w.put(4, 2)
	w.timestamp(scr)
	w.put(1, 1)
	w.put(22, 50000)
	w.put(1, 1)
	return w.b
}

type sysStream struct {
	id    uint8
	scale uint64
	size  uint64
}

// sysHdr is a system header with the muxer's field choices.
func sysHdr(streams ...sysStream) []byte {
	w := &bitWriter{}
	w.put(1, 1)
	w.put(22, 50000)
	w.put(1, 1)
	audio, video := 0, 0
	for _, s := range streams {
		if s.id >= 0xE0 {
			video++
		} else {
			audio++
		}
	}
	w.put(6, uint64(audio))
	w.put(1, 1) // fixed
	w.put(1, 0) // CSPS
	w.put(1, 1) // audio lock
	w.put(1, 1) // video lock
	w.put(1, 1)
	w.put(5, uint64(video))
	w.put(1, 0) // packet rate restriction
	w.put(7, 0x7F)
	for _, s := range streams {
		w.put(8, uint64(s.id))
		w.put(2, 3)
		w.put(1, s.scale)
		w.put(13, s.size)
	}
	out := []byte{0, 0, 1, 0xBB, 0, 0}
	binary.BigEndian.PutUint16(out[4:], uint16(len(w.b)))
	return append(out, w.b...)
}

var (
	sysVideo = sysStream{0xE0, 1, 1024}
	sysAudio = sysStream{0xC0, 0, 512}
)

type psmEntry struct {
	typ  StreamType
	id   uint8
	info []byte
}

// psmPkt is a program stream map; a wrong CRC when badCRC.
func psmPkt(badCRC bool, entries ...psmEntry) []byte {
	var m []byte
	for _, e := range entries {
		m = append(m, byte(e.typ), e.id, byte(len(e.info)>>8), byte(len(e.info)))
		m = append(m, e.info...)
	}
	b := []byte{0, 0, 1, 0xBC, 0, 0, 0xA0, 0xFF, 0, 0, byte(len(m) >> 8), byte(len(m))}
	b = append(b, m...)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-6+4))
	crc := crc32MPEG(b)
	if badCRC {
		crc ^= 0xDEADBEEF
	}
	return binary.BigEndian.AppendUint32(b, crc)
}

func tsField(prefix int, ts int64) []byte {
	w := &bitWriter{}
	w.put(4, uint64(prefix))
	w.timestamp(ts)
	return w.b
}

type pesOpt struct {
	pts, dts int64 // -1: none
	zeroLen  bool  // PES_packet_length 0 (video only)
	noAlign  bool
	stuffing int
}

// pesPkt is an MPEG-2 PES packet.
func pesPkt(id uint8, o pesOpt, payload []byte) []byte {
	var opt []byte
	flags := byte(0)
	if o.pts >= 0 {
		if o.dts >= 0 && o.dts != o.pts {
			flags = 0xC0
			opt = append(tsField(3, o.pts), tsField(1, o.dts)...)
		} else {
			flags = 0x80
			opt = tsField(2, o.pts)
		}
	}
	for range o.stuffing {
		opt = append(opt, 0xFF)
	}
	first := byte(0x80)
	if o.pts >= 0 && !o.noAlign {
		first |= 0x04
	}
	b := []byte{0, 0, 1, id, 0, 0, first, flags, byte(len(opt))}
	b = append(b, opt...)
	b = append(b, payload...)
	if !o.zeroLen {
		binary.BigEndian.PutUint16(b[4:], uint16(len(b)-6))
	}
	return b
}

// mpeg1PES is an MPEG-1 PES packet with a PTS.
func mpeg1PES(id uint8, pts int64, payload []byte) []byte {
	b := []byte{0, 0, 1, id, 0, 0, 0xFF, 0x40, 0x20} // one stuffing byte, STD buffer
	b = append(b, tsField(2, pts)...)
	b = append(b, payload...)
	binary.BigEndian.PutUint16(b[4:], uint16(len(b)-6))
	return b
}

func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func ts(pts int64) pesOpt       { return pesOpt{pts: pts, dts: -1} }
func tsd(pts, dts int64) pesOpt { return pesOpt{pts: pts, dts: dts} }
func noTS() pesOpt              { return pesOpt{pts: -1, dts: -1} }
func zeroLen(pts int64) pesOpt  { return pesOpt{pts: pts, dts: -1, zeroLen: true} }

// Elementary stream samples. Slices have first_mb_in_slice = 0 (H.264) or
// first_slice_segment_in_pic_flag = 1 (H.265): the byte after the header has
// its top bit set.
var (
	h264SPS  = []byte{0, 0, 0, 1, 0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80, 0xBF, 0xE5, 0xC0, 0x44}
	h264PPS  = []byte{0, 0, 0, 1, 0x68, 0xCE, 0x3C, 0x80}
	h264IDR  = []byte{0, 0, 0, 1, 0x65, 0x88, 0x84, 0x00, 0x33, 0xFF, 0x10, 0x00, 0x00, 0x03, 0x01, 0x22}
	h264Key  = cat(h264SPS, h264PPS, h264IDR)
	h264P    = []byte{0, 0, 0, 1, 0x41, 0x9A, 0x21, 0x6C, 0x42, 0xBF, 0x00, 0x01}
	h264P2   = []byte{0, 0, 0, 1, 0x41, 0x9A, 0x42, 0x3C, 0x21, 0x7F, 0xAA}
	h265VPS  = []byte{0, 0, 0, 1, 0x40, 0x01, 0x0C, 0x01, 0xFF, 0xFF, 0x01, 0x60, 0x00}
	h265SPS  = []byte{0, 0, 0, 1, 0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90}
	h265PPS  = []byte{0, 0, 0, 1, 0x44, 0x01, 0xC1, 0x72, 0xB4, 0x62, 0x40}
	h265IDR  = []byte{0, 0, 0, 1, 0x26, 0x01, 0xAF, 0x06, 0xB8, 0x63, 0xEF, 0x3A, 0x7E}
	h265Key  = cat(h265VPS, h265SPS, h265PPS, h265IDR)
	h265P    = []byte{0, 0, 0, 1, 0x02, 0x01, 0xD0, 0x09, 0x7E, 0x10, 0xC2}
	aacFrame = []byte{0xFF, 0xF1, 0x60, 0x40, 0x03, 0x7F, 0xFC, 0x21, 0x10, 0x05, 0x20, 0xA4, 0x1B, 0xFF, 0xC0}
	alaw     = []byte{0xD5, 0x55, 0xD5, 0x54, 0xD4, 0x57, 0xD6, 0x51, 0xD5, 0x55}
)
