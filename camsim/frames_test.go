package camsim

import "testing"

// VideoFrames and AudioFrames give the fixtures as access units: the picture
// size, a keyframe every 50 pictures at 25 fps, increasing PTS.
func TestFrames(t *testing.T) {
	for _, c := range []struct {
		codec, bitrate string
		sub            bool
		w, h, n        int
	}{
		{CodecH264, BitrateNormal, false, 1280, 720, 100},
		{CodecH264, BitrateHigh, false, 1280, 720, 50},
		{CodecH264, BitrateNormal, true, 640, 360, 100},
		{CodecH265, BitrateNormal, false, 1280, 720, 100},
	} {
		f, err := VideoFrames(c.codec, c.bitrate, c.sub)
		if err != nil {
			t.Fatalf("%s %s %v: %v", c.codec, c.bitrate, c.sub, err)
		}
		if f.Width != c.w || f.Height != c.h || len(f.Frames) != c.n || f.Duration != int64(c.n)*3600 {
			t.Fatalf("%s %s %v: %dx%d, %d frames, loop %d", c.codec, c.bitrate, c.sub, f.Width, f.Height, len(f.Frames), f.Duration)
		}
		for i, fr := range f.Frames {
			if fr.Key != (i%50 == 0) || fr.PTS != int64(i)*3600 || len(fr.NALUs) == 0 || fr.Audio != nil {
				t.Fatalf("%s frame %d: key %v pts %d, %d NAL units", c.codec, i, fr.Key, fr.PTS, len(fr.NALUs))
			}
		}
	}
	if _, err := VideoFrames("mjpeg", BitrateNormal, false); err == nil {
		t.Fatal("mjpeg accepted")
	}
	a, err := AudioFrames()
	if err != nil {
		t.Fatal(err)
	}
	if len(a.Frames) != 376 || a.Duration != 376*1920 || a.Frames[1].PTS != 1920 || a.Frames[0].Audio[0] != 0xFF {
		t.Fatalf("audio: %d frames, loop %d, second at %d", len(a.Frames), a.Duration, a.Frames[1].PTS)
	}
	for _, alaw := range []bool{true, false} {
		g, err := G711Frames(alaw)
		if err != nil {
			t.Fatal(err)
		}
		if len(g.Frames) != 400 || g.Duration != 8*90000 || g.Frames[1].PTS != 1800 || len(g.Frames[0].Audio) != 160 {
			t.Fatalf("g711 alaw=%v: %d frames, loop %d, second at %d", alaw, len(g.Frames), g.Duration, g.Frames[1].PTS)
		}
	}
}
