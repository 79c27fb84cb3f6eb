package gcstest

import (
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/litestream-go/litestream/internal/testserver"
)

// Faults says which faults a FaultProxy injects, each with a probability
// between 0 and 1 per request.
type Faults struct {
	Error503 float64 // answer 503 with a JSON error body
	Drop     float64 // close the connection without an answer
	CutBody  float64 // cut an object download's body short
}

// FaultProxy is an HTTP reverse proxy in front of a Server that injects
// faults. Requests reach the server with its own host name, so that its
// -public-host still matches. It counts what it injected.
type FaultProxy struct {
	Addr     string
	Requests atomic.Int64 // every request that reached the proxy
	Injected atomic.Int64
	mu       sync.Mutex
	faults   Faults
	cutNext  int   // object downloads still to cut, whatever the faults
	cutAfter int64 // bytes of a cut body that get through
	failCut  int   // requests to fail after each cut
	failNext int   // requests still to fail
	dice     *testserver.Dice
}

// StartFaultProxy starts a proxy to s on 127.0.0.1; it injects nothing
// until told to.
func StartFaultProxy(t testing.TB, s *Server, seed uint64) *FaultProxy {
	t.Helper()
	target, err := url.Parse(s.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	p := &FaultProxy{dice: testserver.NewDice(seed), cutAfter: 100}
	rp := &httputil.ReverseProxy{Rewrite: func(r *httputil.ProxyRequest) {
		r.SetURL(target)
		r.Out.Host = target.Host
	}}
	p.Addr = testserver.ServeHTTP(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { p.serve(w, r, rp) }))
	return p
}

// UseEmulator points the Go client at the proxy for the rest of the test.
func (p *FaultProxy) UseEmulator(t testing.TB) { t.Setenv("STORAGE_EMULATOR_HOST", p.Addr) }

// SetFaults changes the faults injected from now on.
func (p *FaultProxy) SetFaults(f Faults) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = f
}

// CutNext cuts the bodies of the next n object downloads after the first
// after bytes, and answers the thenFail requests after each cut with 503.
func (p *FaultProxy) CutNext(n int, after int64, thenFail int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cutNext, p.cutAfter, p.failCut = n, after, thenFail
}

// isDownload reports whether r reads an object's content: an XML-style
// GET /BUCKET/OBJECT, or a JSON-API GET with alt=media.
func isDownload(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	return !strings.HasPrefix(r.URL.Path, "/storage/v1/") || r.URL.Query().Get("alt") == "media"
}

func (p *FaultProxy) serve(w http.ResponseWriter, r *http.Request, rp *httputil.ReverseProxy) {
	p.Requests.Add(1)
	p.mu.Lock()
	f := p.faults
	fail := p.failNext > 0
	cut := !fail && isDownload(r) && p.cutNext > 0
	switch {
	case fail:
		p.failNext--
	case cut:
		p.cutNext--
		p.failNext = p.failCut
	}
	after := p.cutAfter
	p.mu.Unlock()
	switch {
	case fail || p.dice.Roll(f.Error503):
		p.Injected.Add(1)
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `{"error":{"code":503,"message":"injected","errors":[{"reason":"backendError","message":"injected"}]}}`)
		return
	case p.dice.Roll(f.Drop):
		p.Injected.Add(1)
		testserver.Drop(w)
		return
	}
	if cut || isDownload(r) && p.dice.Roll(f.CutBody) {
		p.Injected.Add(1)
		rp.ServeHTTP(&testserver.CutWriter{ResponseWriter: w, Left: after}, r) // aborts the connection
		return
	}
	rp.ServeHTTP(w, r)
}
