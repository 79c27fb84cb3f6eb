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
func (s *ShadowWAL) Append(wal io.ReaderAt, walSize int64, writeLocked bool) (int64, error) {
	fs := s.hdr.FrameSize()
	if s.tail > s.size && (writeLocked || !s.tailInWAL(wal)) {
		s.tail, s.t1, s.t2 = s.size, s.s1, s.s2
		if err := s.truncateTail(); err != nil {
			return 0, err
		}
	}
	if walSize-s.tail < fs {
		return 0, nil
	}
	// Small buffers, kept between copies: most copies are a few frames,
	// often followed in the file by frames of the WAL's previous
	// incarnation, and two 1 MiB buffers read and allocated per copy cost
	// more than the copy (up to milliseconds under the write lock) and
	// raised the daemon's memory under load.
	if s.rbuf == nil {
		s.rbuf = bufio.NewReaderSize(nil, copyBufSize)
		s.wbuf = bufio.NewWriterSize(nil, copyBufSize)
	}
	s.rbuf.Reset(io.NewSectionReader(wal, s.tail, walSize-s.tail))
	s.wbuf.Reset(&offsetWriter{f: s.f, off: s.tail})
	rd, w := NewWALReader(s.rbuf, s.hdr, s.t1, s.t2), s.wbuf
	defer func() { s.rbuf.Reset(nil); s.wbuf.Reset(nil) }() // drop the file references
	off := s.tail
	newSize, c1, c2 := s.size, s.s1, s.s2
	commits := 0
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
			commits++
		}
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("write shadow WAL: %w", err)
	}
	s.tail = off
	s.t1, s.t2 = rd.Checksum()
	added := newSize - s.size
	if added > 0 {
		s.unsynced = true
		if !writeLocked {
			if err := s.SyncPending(); err != nil {
				return 0, err
			}
		}
		s.size, s.s1, s.s2 = newSize, c1, c2
		s.commits += commits
	}
	return added, nil
}

// SyncPending fsyncs the current file if Append, under the write lock,
// left committed bytes unsynced.
//
// Why Append leaves that fsync to its caller: the shadow must be durable
// before the WAL can restart, which is only after the lock is released,
// not before the checkpoint that runs under it. The checkpoint runs while
// the fsync does, and releasing the lock waits for it (DB.unlockWrite). At
// 1000 rows/tx the fsync was about a third of the time the lock was held;
// the median hold went from 1.2-1.3 to 1.0-1.1 ms, and holds under 1 ms
// from 7% to 40% (three runs each). An application commit that finds the
// lock taken sleeps 1 ms, then 2 ms more, so a hold under 1 ms costs it
// one sleep instead of two. The application's throughput moved by less
// than this machine's noise (20 paired runs).
func (s *ShadowWAL) SyncPending() error {
	if !s.unsynced {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync shadow WAL: %w", err)
	}
	s.unsynced = false
	return nil
}

// copyBufSize is the size of Append's read and write buffers.
const copyBufSize = 128 << 10

// tailInWAL reports whether the WAL still holds the first and the last frame
// of the shadow's uncommitted tail (see Append for what this misses).
func (s *ShadowWAL) tailInWAL(wal io.ReaderAt) bool {
	t1, t2, err := frameChecksumAt(wal, s.hdr, s.tail)
	if err != nil || t1 != s.t1 || t2 != s.t2 {
		return false
	}
	first := s.size + s.hdr.FrameSize()
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
