// Package walformattest builds WAL images for tests.
package walformattest

import (
	"bytes"
	"encoding/binary"

	"github.com/litestream-go/litestream/internal/walformat"
)

// Build makes a WAL image in the given checksum byte order with nframes
// valid frames of the page size: page i%5+1 filled with byte i, and every
// third frame a commit (of a 5-page database).
func Build(bo binary.ByteOrder, pageSize uint32, nframes int) []byte {
	magic := uint32(walformat.MagicLE)
	if bo == binary.BigEndian {
		magic = walformat.MagicBE
	}
	h := walformat.Header{Magic: magic, Version: walformat.Version, PageSize: pageSize, CheckpointSeq: 3, Salt1: 0x11223344, Salt2: 0x55667788}
	b := h.Encode()
	h.Checksum1, h.Checksum2 = walformat.Checksum(bo, 0, 0, b[:24])
	var buf bytes.Buffer
	buf.Write(h.Encode())
	s1, s2 := h.Checksum1, h.Checksum2
	for i := 0; i < nframes; i++ {
		fh := make([]byte, walformat.FrameHeaderSize)
		binary.BigEndian.PutUint32(fh[0:], uint32(i%5+1))
		if i%3 == 2 {
			binary.BigEndian.PutUint32(fh[4:], 5)
		}
		binary.BigEndian.PutUint32(fh[8:], h.Salt1)
		binary.BigEndian.PutUint32(fh[12:], h.Salt2)
		page := bytes.Repeat([]byte{byte(i)}, int(pageSize))
		s1, s2 = walformat.Checksum(bo, s1, s2, fh[:8])
		s1, s2 = walformat.Checksum(bo, s1, s2, page)
		binary.BigEndian.PutUint32(fh[16:], s1)
		binary.BigEndian.PutUint32(fh[20:], s2)
		buf.Write(fh)
		buf.Write(page)
	}
	return buf.Bytes()
}
