package ingest

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// The buffered camera connection returns every byte in order, whatever the
// sizes its reader asks for, keeps the first bytes for notRTSP, and passes
// the end of the stream and read deadlines on.
func TestSniffConnReadsInOrder(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	want := make([]byte, 300_000)
	for i := range want {
		want[i] = byte(i * 7)
	}
	want[0] = '$'
	sent := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sent <- err
			return
		}
		defer c.Close()
		for p := want; len(p) > 0; {
			n := min(len(p), 1+len(p)%5000)
			if _, err := c.Write(p[:n]); err != nil {
				sent <- err
				return
			}
			p = p[n:]
		}
		sent <- nil
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	sn := &sniffer{}
	c := newSniffConn(nc, sn)
	defer c.Close()
	var got []byte
	sizes := []int{2, 1400, 4096, 64 << 10, 3}
	for i := 0; ; i++ {
		b := make([]byte, sizes[i%len(sizes)])
		n, err := c.Read(b)
		got = append(got, b[:n]...)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := <-sent; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d sent in order", len(got), len(want))
	}
	if fb := sn.get(); !bytes.Equal(fb, want[:sniffLen]) {
		t.Fatalf("first bytes %x, want %x", fb, want[:sniffLen])
	}
	if pe := notRTSP(sn.get()); pe != nil {
		t.Fatalf("interleaved data taken for a non-RTSP answer: %v", pe)
	}
}

func TestSniffConnDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err == nil {
			c.Write([]byte("RTSP/1.0 200 OK\r\n"))
			time.Sleep(time.Second)
			c.Close()
		}
	}()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := newSniffConn(nc, &sniffer{})
	defer c.Close()
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "RTSP" {
		t.Fatalf("read %q, %v", b, err)
	}
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	rest := make([]byte, 100)
	n, err := c.Read(rest) // buffered: no wait
	if err != nil || string(rest[:n]) != "/1.0 200 OK\r\n" {
		t.Fatalf("read %q, %v", rest[:n], err)
	}
	_, err = c.Read(rest)
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("read past the deadline: %v, want a timeout", err)
	}
}
