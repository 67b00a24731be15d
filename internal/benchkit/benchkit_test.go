package benchkit

import "testing"

func TestParseCamsimLine(t *testing.T) {
	for _, tc := range []struct {
		line, main, sub string
		ok              bool
	}{
		{"cam1  main rtsp://127.0.0.1:8554/cam1  sub rtsp://127.0.0.1:8554/cam1/sub", "rtsp://127.0.0.1:8554/cam1", "rtsp://127.0.0.1:8554/cam1/sub", true},
		{"time=... level=INFO msg=\"camsim listening\"", "", "", false},
		{"cam1 main rtsp://x", "", "", false},
		{"", "", "", false},
	} {
		m, s, ok := ParseCamsimLine(tc.line)
		if m != tc.main || s != tc.sub || ok != tc.ok {
			t.Errorf("%q: %q %q %v", tc.line, m, s, ok)
		}
	}
}
