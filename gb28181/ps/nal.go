package ps

// isAUStart reports whether the NAL unit whose header starts at nal begins a
// new access unit once the current unit already holds a picture (H.264 7.4.1.2.3,
// H.265 7.4.2.4.4). need reports that more bytes are required to decide.
func isAUStart(t StreamType, nal []byte) (start, vcl, key, need bool) {
	if t == TypeH265 {
		if len(nal) < 3 {
			return false, false, false, true
		}
		typ := (nal[0] >> 1) & 0x3f
		switch {
		case typ <= 31: // VCL
			return nal[2]&0x80 != 0, true, typ >= 16 && typ <= 23, false
		case typ >= 32 && typ <= 35, typ == 39, typ >= 41 && typ <= 44, typ >= 48 && typ <= 55:
			return true, false, false, false
		}
		return false, false, false, false
	}
	if len(nal) < 2 {
		return false, false, false, true
	}
	typ := nal[0] & 0x1f
	switch {
	case typ >= 1 && typ <= 5: // VCL; first_mb_in_slice == 0 is ue(v) "1"
		return nal[1]&0x80 != 0, true, typ == 5, false
	case typ == 6, typ >= 7 && typ <= 9, typ >= 14 && typ <= 18:
		return true, false, false, false
	}
	return false, false, false, false
}

// sniffVideo infers the codec of an Annex-B payload from its parameter sets
// or IDR/IRAP NAL units. It returns 0 when it cannot tell yet.
func sniffVideo(b []byte) StreamType {
	for i := 0; i+4 < len(b); i++ {
		if b[i] != 0 || b[i+1] != 0 || b[i+2] != 1 {
			continue
		}
		h0, h1 := b[i+3], b[i+4]
		if h0&0x80 != 0 {
			continue
		}
		// H.265: two-byte header, layer 0, temporal id 1 => second byte 0x01.
		if h1 == 0x01 {
			switch (h0 >> 1) & 0x3f {
			case 32, 33, 34, 19, 20, 21:
				return TypeH265
			}
		}
		switch h0 & 0x1f {
		case 7:
			switch h1 { // profile_idc
			case 66, 77, 88, 100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135:
				return TypeH264
			}
		case 5:
			if h0&0x60 != 0 {
				return TypeH264
			}
		}
	}
	return 0
}

// sniffAudio tells AAC in ADTS from G.711 (the GB/T 28181 default audio).
// MPEG-1 audio (same sync word, layer ≠ 0) is returned as its stream type so
// the caller reports it as unsupported.
func sniffAudio(b []byte) StreamType {
	if len(b) >= 2 && b[0] == 0xFF && b[1]&0xE0 == 0xE0 {
		if b[1]&0xF6 == 0xF0 { // 12-bit sync, layer 0: ADTS
			return TypeAAC
		}
		return 0x03 // MPEG audio (MP1/MP2/MP3)
	}
	return TypeG711A
}
