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
// syncs the file and advances the committed size to the last commit frame
// among them (Copy, then Commit). The WAL must have the shadow's header. It
// returns the committed bytes added.
func (s *ShadowWAL) Append(wal io.ReaderAt, walSize int64, writeLocked bool) (int64, error) {
	if err := s.Copy(wal, walSize, writeLocked); err != nil {
		return 0, err
	}
	return s.Commit()
}

// Copy writes the WAL's validated frames that follow the shadow's tail into
// the file, without syncing it: the committed size stays where it is until
// Commit. The WAL must have the shadow's header.
//
// writeLocked says the caller holds the database's write lock, so no
// transaction is in progress and any uncommitted tail was rolled back: it
// is dropped and the WAL re-read from the last commit. Without the lock,
// the tail is kept (a long transaction is then read once) if its first
// and last frames are still in the WAL. That check can be fooled: a
// transaction written after a rollback starts overwriting the tail at its
// first frame, and may begin with the very same frames (a retried
// transaction) and end before the tail's last one; its commit is then
// missed until the next copy under the write lock, which every checkpoint
// makes before the WAL can be restarted. Before this rule a checkpoint
// could restart the WAL over such a missed commit, and a restore held a
// torn transaction (found by the crash loop, which kills the writer
// mid-commit).
func (s *ShadowWAL) Copy(wal io.ReaderAt, walSize int64, writeLocked bool) error {
	fs := s.hdr.FrameSize()
	// Committed frames that were written but not yet synced stay as long as
	// the WAL still holds the last of them: SQLite overwrites committed
	// frames only after a restart, which changes the header. The rule above
	// applies to the uncommitted frames after them.
	base, kept := commitPoint{s.size, s.s1, s.s2}, true
	if s.pend.end > s.size {
		if c1, c2, err := frameChecksumAt(wal, s.hdr, s.pend.end); err == nil && c1 == s.pend.c1 && c2 == s.pend.c2 {
			base = s.pend
		} else {
			s.pend, kept = commitPoint{}, false
		}
	}
	if s.tail > base.end && (writeLocked || !kept || !s.tailInWAL(wal, base.end)) {
		s.tail, s.t1, s.t2 = base.end, base.c1, base.c2
		if err := s.truncateTail(); err != nil {
			return err
		}
	}
	n := walSize - s.tail
	if n < fs {
		return nil
	}
	// The buffers are small and kept: under the write lock there are a few
	// frames to copy, often followed in the file by frames of the WAL's
	// previous incarnation, and reading (and allocating) a megabyte each
	// time held the lock for milliseconds.
	if s.rbuf == nil {
		s.rbuf = bufio.NewReaderSize(nil, copyBufSize)
		s.wbuf = bufio.NewWriterSize(nil, copyBufSize)
	}
	s.rbuf.Reset(io.NewSectionReader(wal, s.tail, n))
	s.wbuf.Reset(&offsetWriter{f: s.f, off: s.tail})
	rd, w := NewWALReader(s.rbuf, s.hdr, s.t1, s.t2), s.wbuf
	defer func() { s.rbuf.Reset(nil); s.wbuf.Reset(nil) }() // drop the file references
	off := s.tail
	last := s.pend
	for {
		fh, frame, err := rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, ErrInvalidFrame) {
				break
			}
			return fmt.Errorf("read WAL: %w", err)
		}
		if _, err := w.Write(frame); err != nil {
			return fmt.Errorf("write shadow WAL: %w", err)
		}
		off += fs
		if fh.IsCommit() {
			last.end = off
			last.c1, last.c2 = rd.Checksum()
		}
	}
	if err := w.Flush(); err != nil {
		return fmt.Errorf("write shadow WAL: %w", err)
	}
	s.tail = off
	s.t1, s.t2 = rd.Checksum()
	s.pend = last
	return nil
}

// copyBufSize is the size of Copy's read and write buffers.
const copyBufSize = 128 << 10

// Commit syncs the file and advances the committed size to the last commit
// frame that Copy wrote. It returns the committed bytes added.
func (s *ShadowWAL) Commit() (int64, error) {
	if s.pend.end <= s.size {
		return 0, nil
	}
	if err := s.f.Sync(); err != nil {
		return 0, fmt.Errorf("sync shadow WAL: %w", err)
	}
	added := s.pend.end - s.size
	s.size, s.s1, s.s2 = s.pend.end, s.pend.c1, s.pend.c2
	return added, nil
}

// tailInWAL reports whether the WAL still holds the first and the last frame
// of the shadow's uncommitted tail, which starts at from (see Copy for what
// this misses).
func (s *ShadowWAL) tailInWAL(wal io.ReaderAt, from int64) bool {
	t1, t2, err := frameChecksumAt(wal, s.hdr, s.tail)
	if err != nil || t1 != s.t1 || t2 != s.t2 {
		return false
	}
	first := from + s.hdr.FrameSize()
	w1, w2, err := frameChecksumAt(wal, s.hdr, first)
	if err != nil {
		return false
	}
	f1, f2, err := frameChecksumAt(s.f, s.hdr, first)
	return err == nil && w1 == f1 && w2 == f2
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
