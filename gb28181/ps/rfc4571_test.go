package ps

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

var frameCases = []struct {
	name    string
	wire    []byte
	packets [][]byte
	err     error // after the packets
}{
	{"two packets", []byte{0, 3, 0x80, 0x60, 0x01, 0, 1, 0xAA}, [][]byte{{0x80, 0x60, 0x01}, {0xAA}}, io.EOF},
	{"empty frame skipped", []byte{0, 0, 0, 2, 1, 2}, [][]byte{{1, 2}}, io.EOF},
	{"cut inside a frame", []byte{0, 5, 1, 2}, nil, io.ErrUnexpectedEOF},
	{"cut inside a length", []byte{0, 1, 9, 0}, [][]byte{{9}}, io.ErrUnexpectedEOF},
	{"nothing", nil, nil, io.EOF},
}

func TestFrameReader(t *testing.T) {
	for _, ca := range frameCases {
		t.Run(ca.name, func(t *testing.T) {
			r := NewFrameReader(bytes.NewReader(ca.wire))
			for i, want := range ca.packets {
				got, err := r.ReadFrame()
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("packet %d: % X, %v; want % X", i, got, err, want)
				}
			}
			if _, err := r.ReadFrame(); !errors.Is(err, ca.err) {
				t.Errorf("then %v, want %v", err, ca.err)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	for _, ca := range frameCases {
		if ca.err != io.EOF || ca.name == "empty frame skipped" {
			continue
		}
		t.Run(ca.name, func(t *testing.T) {
			var wire []byte
			for _, p := range ca.packets {
				var err error
				if wire, err = AppendFrame(wire, p); err != nil {
					t.Fatal(err)
				}
			}
			if !bytes.Equal(wire, ca.wire) {
				t.Errorf("% X, want % X", wire, ca.wire)
			}
		})
	}
	if _, err := AppendFrame(nil, make([]byte, MaxFrameSize+1)); !errors.Is(err, ErrFrameTooLarge) {
		t.Errorf("a 65536-byte packet: %v, want ErrFrameTooLarge", err)
	}
	big := bytes.Repeat([]byte{7}, MaxFrameSize)
	wire, err := AppendFrame(nil, big)
	if err != nil {
		t.Fatal(err)
	}
	got, err := NewFrameReader(bytes.NewReader(wire)).ReadFrame()
	if err != nil || !bytes.Equal(got, big) {
		t.Errorf("a 65535-byte packet did not come back: %v", err)
	}
}

func FuzzFrameReader(f *testing.F) {
	for _, ca := range frameCases {
		f.Add(ca.wire)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r := NewFrameReader(bytes.NewReader(b))
		var again []byte
		for {
			p, err := r.ReadFrame()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("unexpected error %v", err)
				}
				break
			}
			if len(p) == 0 {
				t.Fatal("empty packet returned")
			}
			again, _ = AppendFrame(again, p)
		}
		// Re-framing what was read gives the input minus empty frames and a cut tail.
		if len(again) > len(b) {
			t.Fatalf("%d bytes re-framed from %d", len(again), len(b))
		}
	})
}
