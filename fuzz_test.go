package litestream

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/litestream-go/litestream/internal/walformat/walformattest"
)

// FuzzSegmentName: a name that parses formats back to a name that parses
// to the same position.
func FuzzSegmentName(f *testing.F) {
	for _, s := range []string{"00000000_00000000.wal.lz4", "0000001a_100000020.wal.lz4", "7fffffff_ffffffffffff.wal.lz4", "x.wal.lz4", "00000001.snapshot.lz4"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		if idx, err := ParseSnapshotName(name); err == nil {
			if got, err := ParseSnapshotName(SnapshotName(idx)); err != nil || got != idx {
				t.Fatalf("snapshot %q: round trip %d %v", name, got, err)
			}
		}
		idx, off, err := ParseSegmentName(name)
		if err != nil {
			return
		}
		i2, o2, err := ParseSegmentName(SegmentName(idx, off))
		if err != nil || i2 != idx || o2 != off {
			t.Fatalf("segment %q: round trip %x %x %v", name, i2, o2, err)
		}
	})
}

// FuzzSegmentDecode: damaged stored bytes give an error, never a panic or
// unbounded output.
func FuzzSegmentDecode(f *testing.F) {
	var stored bytes.Buffer
	(Codec{}).Encode(&stored, bytes.NewReader(walformattest.Build(binary.LittleEndian, 512, 4)))
	f.Add(stored.Bytes())
	f.Add([]byte{0x04, 0x22, 0x4d, 0x18})
	f.Fuzz(func(t *testing.T, b []byte) {
		dec, err := (Codec{}).NewDecoder(bytes.NewReader(b))
		if err != nil {
			return
		}
		_, _ = io.CopyN(io.Discard, dec, 64<<20)
	})
}
