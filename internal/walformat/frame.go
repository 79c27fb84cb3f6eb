package walformat

import (
	"encoding/binary"
	"errors"
	"io"
)

// HasFrame reports whether wal holds, at offset off, the header of a frame
// of the WAL incarnation hdr (its salts), committed or not. It reads the
// frame header only: the frame's checksum is not checked.
func HasFrame(wal io.ReaderAt, hdr Header, off int64) bool {
	var b [FrameHeaderSize]byte
	if _, err := wal.ReadAt(b[:], off); err != nil {
		return false
	}
	fh := parseFrameHeader(b[:])
	return fh.Salt1 == hdr.Salt1 && fh.Salt2 == hdr.Salt2
}

// FrameChecksumAt reads the cumulative checksum stored in the header of the
// frame that ends at offset end of a WAL file, which must be a frame of the
// incarnation hdr. Because the checksum is cumulative, equal checksums at
// the same offset of two files mean every frame before it is equal too.
func FrameChecksumAt(wal io.ReaderAt, hdr Header, end int64) (s1, s2 uint32, err error) {
	var b [FrameHeaderSize]byte
	if _, err := wal.ReadAt(b[:], end-hdr.FrameSize()); err != nil {
		return 0, 0, err
	}
	fh := parseFrameHeader(b[:])
	if fh.Salt1 != hdr.Salt1 || fh.Salt2 != hdr.Salt2 {
		return 0, 0, errors.New("salt differs")
	}
	return binary.BigEndian.Uint32(b[16:]), binary.BigEndian.Uint32(b[20:]), nil
}
