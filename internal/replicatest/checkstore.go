package replicatest

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
)

// StoreChecker is a replica client with a startup check.
type StoreChecker interface {
	CheckStore(ctx context.Context) error
}

// StoreCheck holds the assertions every backend's CheckStore tests make,
// for one backend.
type StoreCheck struct {
	// Foreign is what the SDK's own error text holds and ours never does.
	Foreign []string
	// Log logs each permanent error, for the reader of -v.
	Log bool
}

// Check runs c's CheckStore, bounded by bound, and returns how long it
// took.
func Check(c StoreChecker, bound time.Duration) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	start := time.Now()
	err := c.CheckStore(ctx)
	return time.Since(start), err
}

// OurWords fails t if err holds any of the SDK's text or is more than one
// line.
func (s StoreCheck) OurWords(t testing.TB, err error) {
	t.Helper()
	for _, f := range s.Foreign {
		if strings.Contains(err.Error(), f) {
			t.Fatalf("error holds the SDK's text %q: %v", f, err)
		}
	}
	if strings.Contains(err.Error(), "\n") {
		t.Fatalf("error is more than one line: %q", err)
	}
}

// Permanent expects a check that fails at once (within 2s of a 5s
// bound), not taken for a busy store, in one line of our words holding
// each of want, and returns its error.
func (s StoreCheck) Permanent(t testing.TB, c StoreChecker, want ...string) error {
	t.Helper()
	took, err := Check(c, 5*time.Second)
	if err == nil {
		t.Fatal("check passed")
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("error %q lacks %q", err, w)
		}
	}
	if took > 2*time.Second || errors.Is(err, litestream.ErrStoreBusy) {
		t.Fatalf("a permanent error was retried (%s) or taken for a busy store: %v", took, err)
	}
	s.OurWords(t, err)
	if s.Log {
		t.Log(err)
	}
	return err
}

// Unreachable expects a check of a store nothing listens at to retry to
// its bound (1.5s) and fail, not taken for a busy store, with "connection
// refused" and each of want, in our words, and returns its error.
func (s StoreCheck) Unreachable(t testing.TB, c StoreChecker, want ...string) error {
	t.Helper()
	took, err := Check(c, 1500*time.Millisecond)
	if err == nil || errors.Is(err, litestream.ErrStoreBusy) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("err = %v", err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Fatalf("err = %v", err)
		}
	}
	if took < time.Second {
		t.Fatalf("gave up after %s, before its bound", took)
	}
	s.OurWords(t, err)
	return err
}

// NoAnswer expects a check of a store that never answers to fail at its
// bound (1.5s), not much later, with an error holding want (which names
// the store and "(no answer in 1.5s)").
func (s StoreCheck) NoAnswer(t testing.TB, c StoreChecker, want string) {
	t.Helper()
	took, err := Check(c, 1500*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), want) || took > 3*time.Second {
		t.Fatalf("after %s: %v", took, err)
	}
}

// ClosedPort returns a 127.0.0.1 address nothing listens on.
func ClosedPort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// SilentServer returns the 127.0.0.1 address of a server that accepts
// connections and never answers, until the test ends.
func SilentServer(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		var conns []net.Conn
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	return l.Addr().String()
}

// Ops counts a replica client's requests by kind, with the bytes moved:
// set the client's OnOp to Count.
type Ops struct {
	Puts, Gets, Lists, Deletes, PutBytes, GetBytes atomic.Int64
}

// Count counts one request: op is PUT, GET, LIST or DELETE, n its bytes.
func (o *Ops) Count(op string, n int64) {
	switch op {
	case "PUT":
		o.Puts.Add(1)
		o.PutBytes.Add(n)
	case "GET":
		o.Gets.Add(1)
		o.GetBytes.Add(n)
	case "LIST":
		o.Lists.Add(1)
	case "DELETE":
		o.Deletes.Add(1)
	}
}

// RequireOneOfEach writes, reads, lists and deletes one 3-byte segment of
// generation 0123456789abcdef through c, which counts into o, and fails t
// unless each took one request and 3 bytes went each way.
func RequireOneOfEach(t testing.TB, c litestream.ReplicaClient, o *Ops) {
	t.Helper()
	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef"}
	if _, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("xyz"))); err != nil {
		t.Fatal(err)
	}
	rc, err := c.OpenSegment(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, rc)
	rc.Close()
	if _, err := c.Segments(ctx, pos.Generation); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteSegments(ctx, []litestream.Pos{pos}); err != nil {
		t.Fatal(err)
	}
	if o.Puts.Load() != 1 || o.Gets.Load() != 1 || o.Lists.Load() != 1 || o.Deletes.Load() != 1 || o.PutBytes.Load() != 3 || o.GetBytes.Load() != 3 {
		t.Fatalf("puts %d (%d bytes) gets %d (%d bytes) lists %d deletes %d", o.Puts.Load(), o.PutBytes.Load(), o.Gets.Load(), o.GetBytes.Load(), o.Lists.Load(), o.Deletes.Load())
	}
}
