package sftptest

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// CutProxy is a TCP proxy in front of a server that breaks connections:
// each one is closed once CutAfter bytes have flowed from the server to
// the client through it (0: never), as a dropped network link does.
type CutProxy struct {
	Addr string
	// CutAfter is read when a connection opens.
	CutAfter atomic.Int64
	// Cuts counts the connections closed by CutAfter.
	Cuts atomic.Int64

	l     net.Listener
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

// StartCutProxy starts a proxy to target on 127.0.0.1; it stops when the
// test ends.
func StartCutProxy(t testing.TB, target string) *CutProxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &CutProxy{Addr: l.Addr().String(), l: l, conns: map[net.Conn]struct{}{}}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go p.serve(c, target)
		}
	}()
	t.Cleanup(func() { l.Close(); p.CutAll() })
	return p
}

// CutAll closes every open connection.
func (p *CutProxy) CutAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

func (p *CutProxy) track(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		p.conns[c] = struct{}{}
	}
}

func (p *CutProxy) untrack(cs ...net.Conn) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range cs {
		delete(p.conns, c)
	}
}

func (p *CutProxy) serve(client net.Conn, target string) {
	server, err := net.Dial("tcp", target)
	if err != nil {
		client.Close()
		return
	}
	p.track(client, server)
	defer p.untrack(client, server)
	limit := p.CutAfter.Load()
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(server, client)
		server.Close()
		done <- struct{}{}
	}()
	go func() {
		var src io.Reader = server
		if limit > 0 {
			src = io.LimitReader(server, limit)
		}
		n, _ := io.Copy(client, src)
		if limit > 0 && n == limit {
			p.Cuts.Add(1)
		}
		client.Close()
		server.Close()
		done <- struct{}{}
	}()
	<-done
	<-done
}
