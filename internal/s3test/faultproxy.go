package s3test

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/testserver"
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
	dice     *testserver.Dice
	Injected atomic.Int64
}

// StartFaultProxy starts a proxy to target on 127.0.0.1.
func StartFaultProxy(t testing.TB, target string, seed uint64) *FaultProxy {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &FaultProxy{dice: testserver.NewDice(seed)}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.Addr = testserver.ServeHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, rp) }))
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

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request, rp *httputil.ReverseProxy) {
	p.mu.Lock()
	f := p.faults
	p.mu.Unlock()
	switch {
	case p.dice.Roll(f.Error500):
		p.Injected.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusInternalServerError)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>injected</Message></Error>`)
		return
	case p.dice.Roll(f.SlowDown):
		p.Injected.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>injected</Message></Error>`)
		return
	case p.dice.Roll(f.Drop):
		p.Injected.Add(1)
		testserver.Drop(w)
		return
	case p.dice.Roll(f.Stall):
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
	if r.Method == http.MethodGet && p.dice.Roll(f.CutBody) {
		p.Injected.Add(1)
		rp.ServeHTTP(&testserver.CutWriter{ResponseWriter: w, Left: 100}, r) // aborts the connection
		return
	}
	rp.ServeHTTP(w, r)
}
