// Package walformat reads SQLite's write-ahead log format
// (https://sqlite.org/fileformat.html#wal): the WAL header, frame headers,
// the cumulative checksum, and the page size in a database file's header.
// It knows nothing of the engine: no shadow WAL, no positions, no locks.
//
// What holds here: a frame is returned as valid only if its salts are the
// header's and its cumulative checksum continues the one before it, which
// is how SQLite itself finds the end of a WAL. A valid checksum says a
// frame was written whole, never that it was committed: only SQLite's
// wal-index (its mxFrame) says that, and the engine reads it.
package walformat

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Sizes of the SQLite WAL format.
const (
	HeaderSize      = 32 // the WAL header
	FrameHeaderSize = 24 // each frame's header, before its page
)

// The words of a WAL header that never change.
const (
	MagicLE = 0x377f0682 // checksums computed on little-endian words
	MagicBE = 0x377f0683 // checksums computed on big-endian words
	Version = 3007000    // the only WAL format version SQLite writes
)

// ErrInvalidFrame marks a WAL frame that does not continue the WAL: wrong
// salt, wrong cumulative checksum, or cut short. SQLite treats the first
// such frame as the end of the WAL, and so do we.
var ErrInvalidFrame = errors.New("invalid WAL frame")

// Header is the 32-byte header of a WAL file. A new incarnation of the WAL
// (each restart) has a new header, with new salts.
type Header struct {
	Magic         uint32
	Version       uint32
	PageSize      uint32
	CheckpointSeq uint32
	Salt1, Salt2  uint32
	Checksum1     uint32
	Checksum2     uint32
}

// ParseHeader decodes a WAL header and accepts it only if its magic,
// version, page size and its own checksum are valid.
func ParseHeader(b []byte) (Header, error) {
	var h Header
	if len(b) < HeaderSize {
		return h, fmt.Errorf("WAL header: %d bytes, want %d", len(b), HeaderSize)
	}
	be := binary.BigEndian
	h = Header{
		Magic: be.Uint32(b[0:]), Version: be.Uint32(b[4:]), PageSize: be.Uint32(b[8:]),
		CheckpointSeq: be.Uint32(b[12:]), Salt1: be.Uint32(b[16:]), Salt2: be.Uint32(b[20:]),
		Checksum1: be.Uint32(b[24:]), Checksum2: be.Uint32(b[28:]),
	}
	if h.Magic != MagicLE && h.Magic != MagicBE {
		return h, fmt.Errorf("WAL header: bad magic %08x", h.Magic)
	}
	if h.Version != Version {
		return h, fmt.Errorf("WAL header: unsupported version %d", h.Version)
	}
	if h.PageSize < 512 || h.PageSize > 65536 || h.PageSize&(h.PageSize-1) != 0 {
		return h, fmt.Errorf("WAL header: invalid page size %d", h.PageSize)
	}
	if s1, s2 := Checksum(h.ByteOrder(), 0, 0, b[:24]); s1 != h.Checksum1 || s2 != h.Checksum2 {
		return h, errors.New("WAL header: checksum mismatch")
	}
	return h, nil
}

// ByteOrder is the byte order of the words the WAL's checksums sum.
func (h Header) ByteOrder() binary.ByteOrder {
	if h.Magic == MagicBE {
		return binary.BigEndian
	}
	return binary.LittleEndian
}

// FrameSize is the size of one frame: header plus page.
func (h Header) FrameSize() int64 { return FrameHeaderSize + int64(h.PageSize) }

// SameWAL reports whether h and o describe the same WAL incarnation (SQLite
// writes a new header, with new salts, each time it restarts the WAL).
func (h Header) SameWAL(o Header) bool { return h == o }

// Encode returns the 32 header bytes.
func (h Header) Encode() []byte {
	b := make([]byte, HeaderSize)
	be := binary.BigEndian
	for i, v := range []uint32{h.Magic, h.Version, h.PageSize, h.CheckpointSeq, h.Salt1, h.Salt2, h.Checksum1, h.Checksum2} {
		be.PutUint32(b[i*4:], v)
	}
	return b
}

// Checksum continues SQLite's WAL checksum (s1, s2) over b, whose length
// must be a multiple of 8.
func Checksum(bo binary.ByteOrder, s1, s2 uint32, b []byte) (uint32, uint32) {
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

// FrameHeader is the 24-byte header of a WAL frame.
type FrameHeader struct {
	Pgno      uint32
	Commit    uint32 // database size in pages after a commit; 0 if not a commit frame
	Salt1     uint32
	Salt2     uint32
	Checksum1 uint32
	Checksum2 uint32
}

// IsCommit reports whether the frame ends a transaction.
func (f FrameHeader) IsCommit() bool { return f.Commit != 0 }

func parseFrameHeader(b []byte) FrameHeader {
	be := binary.BigEndian
	return FrameHeader{
		Pgno: be.Uint32(b[0:]), Commit: be.Uint32(b[4:]), Salt1: be.Uint32(b[8:]),
		Salt2: be.Uint32(b[12:]), Checksum1: be.Uint32(b[16:]), Checksum2: be.Uint32(b[20:]),
	}
}

// Reader reads the frames of one WAL incarnation in order and validates
// each one: the header's salts and the cumulative checksum. It keeps one
// frame in memory at a time.
type Reader struct {
	r      io.Reader
	hdr    Header
	bo     binary.ByteOrder
	s1, s2 uint32
	buf    []byte
	frames int64 // frames read so far
}

// NewReader returns a reader of the frames that follow a WAL header. The
// running checksum starts from (s1, s2): the header's checksum for the
// first frame, or the checksum in the last frame already read.
func NewReader(r io.Reader, hdr Header, s1, s2 uint32) *Reader {
	return &Reader{r: r, hdr: hdr, bo: hdr.ByteOrder(), s1: s1, s2: s2, buf: make([]byte, hdr.FrameSize())}
}

// Header returns the WAL header the frames belong to.
func (r *Reader) Header() Header { return r.hdr }

// Checksum returns the cumulative checksum after the last frame read.
func (r *Reader) Checksum() (uint32, uint32) { return r.s1, r.s2 }

// Next reads and validates the next frame. It returns the frame header, the
// whole frame bytes (header and page; valid until the next call), and io.EOF
// at a clean end. A frame that is cut short or does not validate returns an
// error wrapping ErrInvalidFrame, and the reader stays before it.
func (r *Reader) Next() (FrameHeader, []byte, error) {
	n, err := io.ReadFull(r.r, r.buf)
	if err == io.EOF {
		return FrameHeader{}, nil, io.EOF
	} else if err == io.ErrUnexpectedEOF {
		return FrameHeader{}, nil, fmt.Errorf("frame %d cut short (%d of %d bytes): %w", r.frames+1, n, len(r.buf), ErrInvalidFrame)
	} else if err != nil {
		return FrameHeader{}, nil, err
	}
	fh := parseFrameHeader(r.buf)
	if fh.Salt1 != r.hdr.Salt1 || fh.Salt2 != r.hdr.Salt2 {
		return fh, nil, fmt.Errorf("frame %d: salt mismatch: %w", r.frames+1, ErrInvalidFrame)
	}
	s1, s2 := Checksum(r.bo, r.s1, r.s2, r.buf[:8])
	s1, s2 = Checksum(r.bo, s1, s2, r.buf[FrameHeaderSize:])
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
