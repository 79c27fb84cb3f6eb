package s3test

import (
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults says which faults a FaultProxy injects, each with a probability
// between 0 and 1 per request.
type Faults struct {
	Error500  float64       // answer 500 InternalError
	SlowDown  float64       // answer 503 SlowDown
	Drop      float64       // close the connection without an answer
	CutBody   float64       // cut a response body short
	Stall     float64       // wait StallTime before forwarding
	StallTime time.Duration // default 2s
}

// FaultProxy is an HTTP reverse proxy in front of an S3 server that injects
// faults at random. It counts what it injected.
type FaultProxy struct {
	Addr     string
	mu       sync.Mutex
	faults   Faults
	rng      *rand.Rand
	Injected atomic.Int64
	srv      *http.Server
}

// StartFaultProxy starts a proxy to target on 127.0.0.1.
func StartFaultProxy(t testing.TB, target string, seed uint64) *FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &FaultProxy{Addr: l.Addr().String(), rng: rand.New(rand.NewPCG(seed, seed))}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, rp) })}
	go p.srv.Serve(l)
	t.Cleanup(func() { p.srv.Close() })
	return p
}

// Endpoint returns the proxy's http URL.
func (p *FaultProxy) Endpoint() string { return "http://" + p.Addr }

// SetFaults changes the faults injected from now on.
func (p *FaultProxy) SetFaults(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
}

func (p *FaultProxy) roll(prob float64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return prob > 0 && p.rng.Float64() < prob
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request, rp *httputil.ReverseProxy) {
	p.mu.Lock()
	f := p.faults
	p.mu.Unlock()
	switch {
	case p.roll(f.Error500):
		p.Injected.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>`)
		return
	case p.roll(f.SlowDown):
		p.Injected.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>`)
		return
	case p.roll(f.Drop):
		p.Injected.Add(1)
		if hj, ok := w.(http.Hijacker); ok {
			if conn, _, err := hj.Hijack(); err == nil {
				conn.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	case p.roll(f.Stall):
		p.Injected.Add(1)
		d := f.StallTime
		if d == 0 {
			d = 2 * time.Second
		}
		select {
		case <-time.After(d):
		case <-r.Context().Done():
			return
		}
	}
	if r.Method == http.MethodGet && p.roll(f.CutBody) {
		p.Injected.Add(1)
		rp.ServeHTTP(&cutWriter{ResponseWriter: w, left: 100}, r) // aborts the connection
		return
	}
	rp.ServeHTTP(w, r)
}

// cutWriter forwards only the first bytes of a body, then aborts the
// connection.
type cutWriter struct {
	http.ResponseWriter
	left int
}

func (c *cutWriter) Write(b []byte) (int, error) {
	if len(b) > c.left {
		c.ResponseWriter.Write(b[:c.left])
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.left -= len(b)
	return c.ResponseWriter.Write(b)
}
