package litestream

import (
	"bytes"
	"encoding/binary"
	"io"
	"testing"
)

// BenchmarkWALReader measures frame validation (salt and cumulative
// checksum) per byte of WAL.
func BenchmarkWALReader(b *testing.B) {
	wal := buildWAL(binary.LittleEndian, 4096, 1000)
	hdr, _ := ParseWALHeader(wal)
	b.SetBytes(int64(len(wal)))
	for b.Loop() {
		rd := NewWALReader(bytes.NewReader(wal[WALHeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
		for {
			if _, _, err := rd.Next(); err != nil {
				break
			}
		}
	}
}

// BenchmarkSegmentEncode measures LZ4 encoding of WAL bytes.
func BenchmarkSegmentEncode(b *testing.B) {
	wal := buildWAL(binary.LittleEndian, 4096, 1000)
	b.SetBytes(int64(len(wal)))
	for b.Loop() {
		if _, err := (Codec{}).Encode(io.Discard, bytes.NewReader(wal)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSegmentDecode measures LZ4 decoding of a stored segment.
func BenchmarkSegmentDecode(b *testing.B) {
	wal := buildWAL(binary.LittleEndian, 4096, 1000)
	var stored bytes.Buffer
	(Codec{}).Encode(&stored, bytes.NewReader(wal))
	b.SetBytes(int64(len(wal)))
	for b.Loop() {
		dec, _ := (Codec{}).NewDecoder(bytes.NewReader(stored.Bytes()))
		if _, err := io.Copy(io.Discard, dec); err != nil {
			b.Fatal(err)
		}
	}
}
