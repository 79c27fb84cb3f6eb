package litestream

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/litestream-go/litestream/internal/walformat"
	"github.com/litestream-go/litestream/internal/walformat/walformattest"
)

// BenchmarkWALReader measures frame validation (salt and cumulative
// checksum) per byte of WAL.
func BenchmarkWALReader(b *testing.B) {
	wal := walformattest.Build(binary.LittleEndian, 4096, 1000)
	hdr, _ := walformat.ParseHeader(wal)
	b.SetBytes(int64(len(wal)))
	for b.Loop() {
		rd := walformat.NewReader(bytes.NewReader(wal[walformat.HeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
		for {
			if _, _, err := rd.Next(); err != nil {
				break
			}
		}
	}
}

// BenchmarkSegmentEncode measures LZ4 encoding of WAL bytes, for pages of
// one repeated byte and for pages of rows of 100 random bytes, like the
// bench's writer (LZ4 gets those to about 0.9 of their size, and works
// hardest on them).
func BenchmarkSegmentEncode(b *testing.B) {
	for name, wal := range benchWALs() {
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(wal)))
			for b.Loop() {
				if _, err := (Codec{}).Encode(io.Discard, bytes.NewReader(wal)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSegmentDecode measures LZ4 decoding of a stored segment.
func BenchmarkSegmentDecode(b *testing.B) {
	for name, wal := range benchWALs() {
		var stored bytes.Buffer
		if _, err := (Codec{}).Encode(&stored, bytes.NewReader(wal)); err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(wal)))
			for b.Loop() {
				dec, _ := (Codec{}).NewDecoder(bytes.NewReader(stored.Bytes()))
				if _, err := io.Copy(io.Discard, dec); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchWALs returns 1000 frames of 4 KiB pages, by page content.
func benchWALs() map[string][]byte {
	repeated := walformattest.Build(binary.LittleEndian, 4096, 1000)
	rows := slices.Clone(repeated)
	rng := rand.New(rand.NewPCG(1, 2))
	fs := walformat.FrameHeaderSize + 4096
	for off := walformat.HeaderSize; off+fs <= len(rows); off += fs {
		// Rows as SQLite stores them: a few header bytes much alike from
		// row to row (which is what LZ4 finds to match, and what keeps it
		// from skipping ahead), then the payload.
		page := rows[off+walformat.FrameHeaderSize : off+fs]
		clear(page)
		for i := 400; i+106 <= len(page); i += 106 {
			copy(page[i:], []byte{0x81, 0x4e, byte(i >> 8), 0x02, 0x81, 0x4c})
			for j := i + 6; j < i+106; j++ {
				page[j] = byte(rng.Uint32())
			}
		}
	}
	return map[string][]byte{"repeated": repeated, "rows": rows}
}
