package litestream

import (
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/litestream-go/litestream/internal/walformat"
)

// TestChecksumBefore: running SQLite's WAL checksum backwards over a frame
// from the checksum in its header gives the running checksum before it, in
// both byte orders.
func TestChecksumBefore(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, bo := range []binary.ByteOrder{binary.LittleEndian, binary.BigEndian} {
		for range 20 {
			frame := make([]byte, walformat.FrameHeaderSize+4096)
			for i := range frame {
				frame[i] = byte(rng.Uint32())
			}
			s1, s2 := rng.Uint32(), rng.Uint32()
			e1, e2 := walformat.Checksum(bo, s1, s2, frame[:8])
			e1, e2 = walformat.Checksum(bo, e1, e2, frame[walformat.FrameHeaderSize:])
			binary.BigEndian.PutUint32(frame[16:], e1)
			binary.BigEndian.PutUint32(frame[20:], e2)
			if b1, b2 := checksumBefore(bo, frame); b1 != s1 || b2 != s2 {
				t.Fatalf("%v: got (%x, %x), want (%x, %x)", bo, b1, b2, s1, s2)
			}
		}
	}
}
