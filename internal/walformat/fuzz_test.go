package walformat_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/litestream-go/litestream/internal/walformat"
)

// FuzzWALReader: any bytes as a WAL either fail to parse or yield frames
// that validate; nothing panics and nothing invalid is returned as valid.
func FuzzWALReader(f *testing.F) {
	f.Add(buildWAL(binary.LittleEndian, 512, 3))
	f.Add(buildWAL(binary.BigEndian, 512, 2))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		hdr, err := walformat.ParseHeader(b)
		if err != nil {
			return
		}
		rd := walformat.NewReader(bytes.NewReader(b[walformat.HeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
		for i := 0; i < 1000; i++ {
			fh, frame, err := rd.Next()
			if err != nil {
				return
			}
			if len(frame) != int(hdr.FrameSize()) || fh.Salt1 != hdr.Salt1 || fh.Pgno == 0 {
				t.Fatalf("invalid frame accepted: %+v", fh)
			}
		}
	})
}
