package litestream

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// frameChecksumAt reads the cumulative checksum stored in the header of the
// frame that ends at offset end of a WAL file.
func frameChecksumAt(wal io.ReaderAt, hdr WALHeader, end int64) (s1, s2 uint32, err error) {
	var b [WALFrameHeaderSize]byte
	if _, err := wal.ReadAt(b[:], end-hdr.FrameSize()); err != nil {
		return 0, 0, err
	}
	fh := parseFrameHeader(b[:])
	if fh.Salt1 != hdr.Salt1 || fh.Salt2 != hdr.Salt2 {
		return 0, 0, errors.New("salt differs")
	}
	return binary.BigEndian.Uint32(b[16:]), binary.BigEndian.Uint32(b[20:]), nil
}

// Matches reports whether the WAL still holds, at the end of the shadow's
// committed bytes, the frame the shadow ended on. The checksum is
// cumulative, so a match means every earlier frame matches too.
func (s *ShadowWAL) Matches(wal io.ReaderAt) bool {
	if s.size == WALHeaderSize {
		return true
	}
	s1, s2, err := frameChecksumAt(wal, s.hdr, s.size)
	return err == nil && s1 == s.s1 && s2 == s.s2
}

// Append copies the WAL's validated frames that follow the shadow's tail,
// and advances the committed size to the last commit frame among them. The
// WAL must have the shadow's header. It returns the committed bytes added.
func (s *ShadowWAL) Append(wal io.ReaderAt, walSize int64) (int64, error) {
	fs := s.hdr.FrameSize()
	if s.tail > s.size {
		// The uncommitted tail may have been rolled back and overwritten.
		if t1, t2, err := frameChecksumAt(wal, s.hdr, s.tail); err != nil || t1 != s.t1 || t2 != s.t2 {
			s.tail, s.t1, s.t2 = s.size, s.s1, s.s2
			if err := s.truncateTail(); err != nil {
				return 0, err
			}
		}
	}
	if walSize-s.tail < fs {
		return 0, nil
	}
	rd := NewWALReader(bufio.NewReaderSize(io.NewSectionReader(wal, s.tail, walSize-s.tail), 1<<20), s.hdr, s.t1, s.t2)
	w := bufio.NewWriterSize(&offsetWriter{f: s.f, off: s.tail}, 1<<20)
	off := s.tail
	newSize, c1, c2 := s.size, s.s1, s.s2
	for {
		fh, frame, err := rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, ErrInvalidFrame) {
				break
			}
			return 0, fmt.Errorf("read WAL: %w", err)
		}
		if _, err := w.Write(frame); err != nil {
			return 0, fmt.Errorf("write shadow WAL: %w", err)
		}
		off += fs
		if fh.IsCommit() {
			newSize = off
			c1, c2 = rd.Checksum()
		}
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("write shadow WAL: %w", err)
	}
	s.tail = off
	s.t1, s.t2 = rd.Checksum()
	added := newSize - s.size
	if added > 0 {
		if err := s.f.Sync(); err != nil {
			return 0, fmt.Errorf("sync shadow WAL: %w", err)
		}
		s.size, s.s1, s.s2 = newSize, c1, c2
	}
	return added, nil
}

// truncateTail drops the uncommitted tail from the file.
func (s *ShadowWAL) truncateTail() error {
	if err := s.f.Truncate(s.tail); err != nil {
		return fmt.Errorf("truncate shadow WAL: %w", err)
	}
	return nil
}

// offsetWriter writes sequentially at an offset of a file.
type offsetWriter struct {
	f   io.WriterAt
	off int64
}

func (w *offsetWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	return n, err
}
