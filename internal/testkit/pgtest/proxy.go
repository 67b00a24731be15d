package pgtest

import (
	"net"
	"net/url"
	"sync"
	"testing"
)

// Proxy forwards TCP to a PostgreSQL server, for tests of a database that
// goes away: Cut drops every connection and refuses new ones until Restore;
// Stall stops forwarding without closing anything (a network that drops
// the packets) until Restore or Cut.
type Proxy struct {
	// URL is the database URL through the proxy.
	URL string

	mu      sync.Mutex
	conns   []net.Conn
	isCut   bool
	stalled chan struct{} // non-nil while stalled: closed at Restore or Cut
}

// StartProxy starts a proxy to the server of dbURL on 127.0.0.1, stopped
// (and its connections closed) at the end of the test.
func StartProxy(t testing.TB, dbURL string) *Proxy {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	target := u.Host
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u.Host = ln.Addr().String()
	p := &Proxy{URL: u.String()}
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.mu.Lock()
			if p.isCut {
				p.mu.Unlock()
				in.Close()
				continue
			}
			out, err := net.Dial("tcp", target)
			if err != nil {
				p.mu.Unlock()
				in.Close()
				continue
			}
			p.conns = append(p.conns, in, out)
			p.mu.Unlock()
			wg.Go(func() { p.pipe(out, in) })
			wg.Go(func() { p.pipe(in, out) })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		wg.Wait()
	})
	return p
}

// pipe copies from in to out, holding what it read while stalled.
func (p *Proxy) pipe(out, in net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := in.Read(buf)
		if n > 0 {
			p.wait()
			if _, werr := out.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	out.Close()
}

func (p *Proxy) wait() {
	p.mu.Lock()
	ch := p.stalled
	p.mu.Unlock()
	if ch != nil {
		<-ch
	}
}

// Stall holds everything sent either way until Restore or Cut.
func (p *Proxy) Stall() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stalled == nil {
		p.stalled = make(chan struct{})
	}
}

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unstallLocked()
	p.isCut = true
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore forwards again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.unstallLocked()
	p.isCut = false
}

func (p *Proxy) unstallLocked() {
	if p.stalled != nil {
		close(p.stalled)
		p.stalled = nil
	}
}
