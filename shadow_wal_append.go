package litestream

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/litestream-go/litestream/internal/walformat"
)

// Matches reports whether the WAL still holds, at the end of the shadow's
// committed bytes, the frame the shadow ended on. The checksum is
// cumulative, so a match means every earlier frame matches too.
func (s *shadowWAL) Matches(wal io.ReaderAt) bool {
	if s.size == walformat.HeaderSize {
		return true
	}
	s1, s2, err := walformat.FrameChecksumAt(wal, s.hdr, s.size)
	return err == nil && s1 == s.s1 && s2 == s.s2
}

// errCommittedFrames means the WAL's frames up to what SQLite's wal-index
// counts as committed do not validate, or the last of them is not the
// commit frame the wal-index names: the WAL and the wal-index disagree,
// and only a new generation can be trusted.
var errCommittedFrames = errors.New("the WAL's frames disagree with SQLite's wal-index")

// Append copies the frames of the WAL that follow the shadow's committed
// end, up to end: the end of the last frame SQLite's wal-index counts as
// committed in this WAL incarnation, whose cumulative checksum the
// wal-index gives as sum. Every frame copied is thus committed, and the
// copy ends on the commit frame SQLite knows (invariant 1 of the shadow
// WAL); frames past end, even with valid checksums, are not copied. It
// returns the bytes added.
//
// writeHeld says the caller holds the database's write lock and fsyncs
// the copy itself before releasing it (fsyncPending); otherwise Append
// fsyncs before returning.
func (s *shadowWAL) Append(wal io.ReaderAt, end int64, sum [2]uint32, writeHeld bool) (int64, error) {
	fs := s.hdr.FrameSize()
	if end <= s.size {
		return 0, nil
	}
	if (end-walformat.HeaderSize)%fs != 0 {
		return 0, fmt.Errorf("committed end %d is not on a frame boundary: %w", end, errCommittedFrames)
	}
	// Each chunk of whole frames is read from the WAL into one buffer,
	// validated there and written to the shadow from it. The buffer is
	// borrowed from a pool shared by every database, so that an idle one
	// holds none.
	bp := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(bp)
	buf := (*bp)[:copyBufSize/fs*fs]
	var chunk bytes.Reader
	rd, w := walformat.NewReader(&chunk, s.hdr, s.s1, s.s2), &offsetWriter{f: s.f, off: s.size}
	commits := 0
	var last walformat.FrameHeader
	for off := s.size; off < end; {
		n := min(int64(len(buf)), end-off)
		m, err := wal.ReadAt(buf[:n], off)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, fmt.Errorf("read WAL: %w", err)
		}
		// A WAL shorter than end cuts the chunk short; the reader then
		// names the frame that is cut short or missing.
		chunk.Reset(buf[:m])
		for p := int64(0); p < n; p += fs {
			fh, _, err := rd.Next()
			if errors.Is(err, io.EOF) || errors.Is(err, walformat.ErrInvalidFrame) {
				return 0, fmt.Errorf("frame at offset %d of %d committed bytes: %v: %w", off+p, end, err, errCommittedFrames)
			} else if err != nil {
				return 0, fmt.Errorf("read WAL: %w", err)
			}
			if fh.IsCommit() {
				commits++
			}
			last = fh
		}
		// Bytes past the committed size are never read by a replica, so a
		// failed write, or a failed check below, leaves the shadow as it
		// was.
		if _, err := w.Write(buf[:n]); err != nil {
			return 0, fmt.Errorf("write shadow WAL: %w", err)
		}
		off += n
	}
	if c1, c2 := rd.Checksum(); !last.IsCommit() || c1 != sum[0] || c2 != sum[1] {
		return 0, fmt.Errorf("the frame at the committed end %d is not the commit the wal-index names: %w", end, errCommittedFrames)
	}
	s.needsFsync = true
	if !writeHeld {
		if err := s.fsyncPending(); err != nil {
			return 0, err
		}
	}
	added := end - s.size
	s.size, s.s1, s.s2 = end, sum[0], sum[1]
	s.commits += commits
	return added, nil
}

// fsyncPending fsyncs the current file if Append, under the write lock,
// left committed bytes unsynced. The shadow must be durable before the WAL
// can restart, which is only after the write lock is released: so the
// fsync may run beside the checkpoint made under the lock, and
// DB.unlockWrite waits for it (see docs/performance.md, "checkpoint.go").
func (s *shadowWAL) fsyncPending() error {
	if !s.needsFsync {
		return nil
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync shadow WAL: %w", err)
	}
	s.needsFsync = false
	return nil
}

// copyBufSize is the size of Append's buffer: the most it reads and
// writes at a time (a frame of the largest page, 64 KiB, fits).
const copyBufSize = 128 << 10

// copyBufs are Append's buffers, shared by every database: a copy borrows
// one for its length (see docs/performance.md, "CPU per GB, 2026-12-03").
var copyBufs = sync.Pool{New: func() any { b := make([]byte, copyBufSize); return &b }}
