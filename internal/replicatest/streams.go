package replicatest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math/rand/v2"
)

// errInjected is what a failing reader returns.
var errInjected = errors.New("replicatest: injected read failure")

// failAfter returns a reader that yields r's bytes, then fails.
func failAfter(r io.Reader) io.Reader { return io.MultiReader(r, errReader{}) }

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errInjected }

// cancelingReader cancels a context once its first bytes have been read.
type cancelingReader struct {
	r      io.Reader
	cancel context.CancelFunc
}

func (c *cancelingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.cancel()
	return n, err
}

// stream returns n deterministic pseudo-random bytes for seed, generated
// as they are read so that large objects need no large buffer.
func stream(seed uint64, n int64) io.Reader {
	var key [32]byte
	binary.LittleEndian.PutUint64(key[:], seed)
	return io.LimitReader(rand.NewChaCha8(key), n)
}

// content returns n pseudo-random bytes for seed: small objects in memory.
func content(seed uint64, n int) []byte {
	b, err := io.ReadAll(stream(seed, int64(n)))
	if err != nil {
		panic(err) // a ChaCha8 stream cannot fail
	}
	return b
}

// sameStream reports whether a and b yield the same bytes, and how many
// matched before the first difference or error.
func sameStream(a, b io.Reader) (bool, int64, error) {
	ba, bb := make([]byte, 256<<10), make([]byte, 256<<10)
	var n int64
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, n, nil
		}
		n += int64(na)
		if ea == io.ErrUnexpectedEOF {
			ea = io.EOF
		}
		if eb == io.ErrUnexpectedEOF {
			eb = io.EOF
		}
		switch {
		case ea == io.EOF && eb == io.EOF:
			return true, n, nil
		case ea != nil && ea != io.EOF:
			return false, n, ea
		case eb != nil && eb != io.EOF:
			return false, n, eb
		case ea != nil || eb != nil:
			return false, n, nil // one ended first
		}
	}
}
