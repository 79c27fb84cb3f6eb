package litestream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Sizes of the SQLite WAL format (https://sqlite.org/fileformat.html#wal).
const (
	WALHeaderSize      = 32
	WALFrameHeaderSize = 24

	walMagicLE = 0x377f0682 // checksums computed on little-endian words
	walMagicBE = 0x377f0683 // checksums computed on big-endian words
	walVersion = 3007000
)

// ErrInvalidFrame marks a WAL frame that does not continue the WAL: wrong
// salt, wrong cumulative checksum, or cut short. SQLite treats the first
// such frame as the end of the WAL, and so do we.
var ErrInvalidFrame = errors.New("invalid WAL frame")

// WALHeader is the 32-byte header of a WAL file.
type WALHeader struct {
	Magic         uint32
	Version       uint32
	PageSize      uint32
	CheckpointSeq uint32
	Salt1, Salt2  uint32
	Checksum1     uint32
	Checksum2     uint32
}

// ParseWALHeader decodes and validates a WAL header: magic, version, page
// size and the header's own checksum.
func ParseWALHeader(b []byte) (WALHeader, error) {
	var h WALHeader
	if len(b) < WALHeaderSize {
		return h, fmt.Errorf("WAL header: %d bytes, want %d", len(b), WALHeaderSize)
	}
	be := binary.BigEndian
	h = WALHeader{
		Magic: be.Uint32(b[0:]), Version: be.Uint32(b[4:]), PageSize: be.Uint32(b[8:]),
		CheckpointSeq: be.Uint32(b[12:]), Salt1: be.Uint32(b[16:]), Salt2: be.Uint32(b[20:]),
		Checksum1: be.Uint32(b[24:]), Checksum2: be.Uint32(b[28:]),
	}
	if h.Magic != walMagicLE && h.Magic != walMagicBE {
		return h, fmt.Errorf("WAL header: bad magic %08x", h.Magic)
	}
	if h.Version != walVersion {
		return h, fmt.Errorf("WAL header: unsupported version %d", h.Version)
	}
	if h.PageSize < 512 || h.PageSize > 65536 || h.PageSize&(h.PageSize-1) != 0 {
		return h, fmt.Errorf("WAL header: invalid page size %d", h.PageSize)
	}
	if s1, s2 := WALChecksum(h.ByteOrder(), 0, 0, b[:24]); s1 != h.Checksum1 || s2 != h.Checksum2 {
		return h, errors.New("WAL header: checksum mismatch")
	}
	return h, nil
}

// ByteOrder is the byte order of the words the WAL's checksums sum.
func (h WALHeader) ByteOrder() binary.ByteOrder {
	if h.Magic == walMagicBE {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// FrameSize is the size of one frame: header plus page.
func (h WALHeader) FrameSize() int64 { return WALFrameHeaderSize + int64(h.PageSize) }

// SameWAL reports whether h and o describe the same WAL incarnation (SQLite
// writes a new header, with new salts, each time it restarts the WAL).
func (h WALHeader) SameWAL(o WALHeader) bool { return h == o }

// Encode returns the 32 header bytes.
func (h WALHeader) Encode() []byte {
	b := make([]byte, WALHeaderSize)
	be := binary.BigEndian
	for i, v := range []uint32{h.Magic, h.Version, h.PageSize, h.CheckpointSeq, h.Salt1, h.Salt2, h.Checksum1, h.Checksum2} {
		be.PutUint32(b[i*4:], v)
	}
	return b
}

// WALChecksum continues SQLite's WAL checksum (s1, s2) over b, whose length
// must be a multiple of 8.
func WALChecksum(bo binary.ByteOrder, s1, s2 uint32, b []byte) (uint32, uint32) {
	if bo == binary.LittleEndian {
		for i := 0; i+8 <= len(b); i += 8 {
			s1 += binary.LittleEndian.Uint32(b[i:]) + s2
			s2 += binary.LittleEndian.Uint32(b[i+4:]) + s1
		}
		return s1, s2
	}
	for i := 0; i+8 <= len(b); i += 8 {
		s1 += binary.BigEndian.Uint32(b[i:]) + s2
		s2 += binary.BigEndian.Uint32(b[i+4:]) + s1
	}
	return s1, s2
}

// WALFrameHeader is the 24-byte header of a WAL frame.
type WALFrameHeader struct {
	Pgno      uint32
	Commit    uint32 // database size in pages after a commit; 0 if not a commit frame
	Salt1     uint32
	Salt2     uint32
	Checksum1 uint32
	Checksum2 uint32
}

// IsCommit reports whether the frame ends a transaction.
func (f WALFrameHeader) IsCommit() bool { return f.Commit != 0 }

func parseFrameHeader(b []byte) WALFrameHeader {
	be := binary.BigEndian
	return WALFrameHeader{
		Pgno: be.Uint32(b[0:]), Commit: be.Uint32(b[4:]), Salt1: be.Uint32(b[8:]),
		Salt2: be.Uint32(b[12:]), Checksum1: be.Uint32(b[16:]), Checksum2: be.Uint32(b[20:]),
	}
}

// WALReader reads the frames of one WAL incarnation in order and validates
// each one: the header's salts and the cumulative checksum. It keeps one
// frame in memory at a time.
type WALReader struct {
	r      io.Reader
	hdr    WALHeader
	bo     binary.ByteOrder
	s1, s2 uint32
	buf    []byte
	frames int64 // frames read so far
}

// NewWALReader returns a reader of the frames that follow a WAL header. The
// running checksum starts from (s1, s2): the header's checksum for the
// first frame, or the checksum in the last frame already read.
func NewWALReader(r io.Reader, hdr WALHeader, s1, s2 uint32) *WALReader {
	return &WALReader{r: r, hdr: hdr, bo: hdr.ByteOrder(), s1: s1, s2: s2, buf: make([]byte, hdr.FrameSize())}
}

// Header returns the WAL header the frames belong to.
func (r *WALReader) Header() WALHeader { return r.hdr }

// Checksum returns the cumulative checksum after the last frame read.
func (r *WALReader) Checksum() (uint32, uint32) { return r.s1, r.s2 }

// Next reads and validates the next frame. It returns the frame header, the
// whole frame bytes (header and page; valid until the next call), and io.EOF
// at a clean end. A frame that is cut short or does not validate returns an
// error wrapping ErrInvalidFrame, and the reader stays before it.
func (r *WALReader) Next() (WALFrameHeader, []byte, error) {
	n, err := io.ReadFull(r.r, r.buf)
	if err == io.EOF {
		return WALFrameHeader{}, nil, io.EOF
	} else if err == io.ErrUnexpectedEOF {
		return WALFrameHeader{}, nil, fmt.Errorf("frame %d cut short (%d of %d bytes): %w", r.frames+1, n, len(r.buf), ErrInvalidFrame)
	} else if err != nil {
		return WALFrameHeader{}, nil, err
	}
	fh := parseFrameHeader(r.buf)
	if fh.Salt1 != r.hdr.Salt1 || fh.Salt2 != r.hdr.Salt2 {
		return fh, nil, fmt.Errorf("frame %d: salt mismatch: %w", r.frames+1, ErrInvalidFrame)
	}
	s1, s2 := WALChecksum(r.bo, r.s1, r.s2, r.buf[:8])
	s1, s2 = WALChecksum(r.bo, s1, s2, r.buf[WALFrameHeaderSize:])
	if s1 != fh.Checksum1 || s2 != fh.Checksum2 {
		return fh, nil, fmt.Errorf("frame %d: checksum mismatch: %w", r.frames+1, ErrInvalidFrame)
	}
	if fh.Pgno == 0 {
		return fh, nil, fmt.Errorf("frame %d: page number 0: %w", r.frames+1, ErrInvalidFrame)
	}
	r.s1, r.s2 = s1, s2
	r.frames++
	return fh, r.buf, nil
}
