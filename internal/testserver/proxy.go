package testserver

import (
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"testing"
)

// ServeHTTP serves h on a free 127.0.0.1 port until the test ends, and
// returns its address.
func ServeHTTP(t testing.TB, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String()
}

// Dice decides at random, from a seed, whether a fault is injected.
type Dice struct {
	mu  sync.Mutex
	rng *rand.Rand
}

// NewDice returns dice that roll the same sequence for the same seed.
func NewDice(seed uint64) *Dice { return &Dice{rng: rand.New(rand.NewPCG(seed, seed))} }

// Roll reports true with probability prob (never for 0).
func (d *Dice) Roll(prob float64) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return prob > 0 && d.rng.Float64() < prob
}

// Drop closes the request's connection without an answer.
func Drop(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

// CutWriter forwards only the first Left bytes of a body, then aborts the
// connection.
type CutWriter struct {
	http.ResponseWriter
	Left int64
}

func (c *CutWriter) Write(b []byte) (int, error) {
	if int64(len(b)) > c.Left {
		c.ResponseWriter.Write(b[:c.Left])
		if f, ok := c.ResponseWriter.(http.Flusher); ok {
			f.Flush()
		}
		panic(http.ErrAbortHandler)
	}
	c.Left -= int64(len(b))
	return c.ResponseWriter.Write(b)
}
