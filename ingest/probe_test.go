package ingest

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestProbeIsNoPortScanner: "test connection" answers alike for a closed
// port, a port that accepts and stays silent, and a port where another
// service greets with its banner; the banner is never echoed. What an RTSP
// server says (here: wrong password) is still told.
func TestProbeIsNoPortScanner(t *testing.T) {
	listen := func(serve func(net.Conn)) string {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ln.Close() })
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() { defer c.Close(); serve(c) }()
			}
		}()
		return ln.Addr().String()
	}
	const banner = "SSH-2.0-OpenSSH_9.2p1 SECRET-BANNER"
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	silent := listen(func(c net.Conn) { io.Copy(io.Discard, c) })
	ssh := listen(func(c net.Conn) { io.WriteString(c, banner+"\r\n"); io.Copy(io.Discard, c) })
	http := listen(func(c net.Conn) {
		buf := make([]byte, 512)
		c.Read(buf)
		io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nServer: SECRET-BANNER\r\n\r\n")
	})
	hangup := listen(func(c net.Conn) {})

	var msgs []string
	for name, addr := range map[string]string{"closed": closed, "silent": silent, "ssh": ssh, "http": http, "hangup": hangup} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := Probe(ctx, "rtsp://u:p@"+addr+"/x", "tcp")
		cancel()
		if !errors.Is(err, ErrUnreachable) {
			t.Errorf("%s: %v, want ErrUnreachable", name, err)
			continue
		}
		if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "SSH") {
			t.Errorf("%s: the banner is echoed: %v", name, err)
		}
		msgs = append(msgs, strings.ReplaceAll(err.Error(), addr, "ADDR"))
	}
	for _, m := range msgs {
		if m != msgs[0] {
			t.Errorf("the answers differ: %q and %q", msgs[0], m)
		}
	}

	srv := startTestServer(t, testServerOptions{User: "u", Pass: "p"})
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Probe(ctx, strings.Replace(srv.url("cam1"), ":p@", ":nope@", 1), "tcp"); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("wrong password at an RTSP server: %v", err)
	}
}
