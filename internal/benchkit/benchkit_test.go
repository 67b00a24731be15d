package benchkit

import (
	"context"
	"os"
	"testing"
	"time"
)

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

func TestAwaitCount(t *testing.T) {
	n := 0
	if _, err := AwaitCount(context.Background(), 3, 5*time.Second, "online", func() int { n++; return n }); err != nil || n != 3 {
		t.Fatalf("err %v after %d calls, want nil after 3", err, n)
	}
	_, err := AwaitCount(context.Background(), 2, 0, "recording", func() int { return 1 })
	if err == nil || err.Error() != "only 1 of 2 cameras recording after 0s" {
		t.Fatalf("err %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := AwaitCount(ctx, 2, time.Minute, "online", func() int { return 0 }); err != context.Canceled {
		t.Fatalf("err %v, want context.Canceled", err)
	}
}

func TestMeasureCountsCPU(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { // keep a core busy for the window
		for ctx.Err() == nil {
		}
	}()
	w, err := Measure(ctx, 300*time.Millisecond, os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if w.Wall < 300*time.Millisecond || w.CPU <= 0 || len(w.Apart) != 1 || w.Apart[0] <= 0 || w.RSSKB <= 0 || w.HeapInuse == 0 {
		t.Fatalf("window %+v", w)
	}
	if p := w.Percent(w.Wall); p != 100 {
		t.Fatalf("Percent(Wall) = %v", p)
	}
	cancel()
	if _, err := Measure(ctx, time.Minute); err != context.Canceled {
		t.Fatalf("after cancel: %v", err)
	}
}
