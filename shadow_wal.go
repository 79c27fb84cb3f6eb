package litestream

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/litestream-go/litestream/internal/walformat"
)

// Invariants of the shadow WAL (every copy keeps them):
//  1. Its committed size ends on a commit frame that SQLite's wal-index
//     counts (mxFrame), never on one that merely has a valid checksum
//     (Append copies only up to the wal-index's committed end).
//  2. A closed index is truncated to its committed size before the next
//     index starts (startIndex), and a recovered one on open, so every
//     segment a replica ships ends on a commit. No replica reads past Size.
//  3. The WAL restarts only after the shadow holds every committed frame,
//     durably, which the write lock guarantees: see checkpointLocked.

// shadowWAL is the shadow WAL of one generation: files
// <dir>/<index %08x>.wal, each a byte copy of the committed frames of one
// incarnation of the real WAL (header, then frames), which SQLite can never
// overwrite.
type shadowWAL struct {
	dir    string
	index  int
	hdr    walformat.Header
	size   int64  // committed bytes of the current index file
	s1, s2 uint32 // cumulative checksum at size
	// commits counts the commit frames in the current index file.
	commits int
	f       *os.File
	// needsFsync says committed bytes of f await an fsync (fsyncPending).
	needsFsync bool
}

// shadowWALFileName returns the name of a shadow WAL file.
func shadowWALFileName(index int) string { return FormatIndex(index) + ".wal" }

// Index returns the current shadow WAL index.
func (s *shadowWAL) Index() int { return s.index }

// Commits returns the number of transactions in the current index file.
func (s *shadowWAL) Commits() int { return s.commits }

// Size returns the committed size of the current index file.
func (s *shadowWAL) Size() int64 { return s.size }

// Header returns the WAL header of the current index.
func (s *shadowWAL) Header() walformat.Header { return s.hdr }

// Path returns the path of the shadow file at index.
func (s *shadowWAL) Path(index int) string { return filepath.Join(s.dir, shadowWALFileName(index)) }

// createShadowWAL starts a shadow WAL file at index with the given WAL header.
func createShadowWAL(dir string, index int, hdr walformat.Header) (*shadowWAL, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create shadow WAL directory: %w", err)
	}
	s := &shadowWAL{dir: dir}
	if err := s.startIndex(index, hdr); err != nil {
		return nil, err
	}
	if err := SyncDir(dir); err != nil {
		return nil, err
	}
	return s, nil
}

// startIndex makes index the current file, holding only the WAL header.
// On failure (a full disk, say) the shadow stays as it was, so the caller
// can retry.
func (s *shadowWAL) startIndex(index int, hdr walformat.Header) error {
	if s.f != nil {
		if err := s.fsyncPending(); err != nil {
			return err
		}
		// Invariant 2: nothing past the last commit reaches a replica.
		if err := s.truncateToCommit(); err != nil {
			return err
		}
	}
	f, err := os.OpenFile(s.Path(index), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("create shadow WAL: %w", err)
	}
	if _, err := f.Write(hdr.Encode()); err != nil {
		f.Close()
		return fmt.Errorf("write shadow WAL header: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync shadow WAL: %w", err)
	}
	if s.f != nil {
		s.f.Close() // read-only from here on: replicas reopen it by path
	}
	s.f, s.index, s.hdr = f, index, hdr
	s.size = walformat.HeaderSize
	s.s1, s.s2 = hdr.Checksum1, hdr.Checksum2
	s.commits = 0
	return nil
}

// truncateToCommit cuts the current file to its committed size, durably,
// when a failed copy left bytes past it.
func (s *shadowWAL) truncateToCommit() error {
	fi, err := s.f.Stat()
	if err != nil {
		return fmt.Errorf("stat shadow WAL: %w", err)
	}
	if fi.Size() == s.size {
		return nil
	}
	if err := s.f.Truncate(s.size); err != nil {
		return fmt.Errorf("truncate shadow WAL to its last commit: %w", err)
	}
	if err := s.f.Sync(); err != nil {
		return fmt.Errorf("sync shadow WAL: %w", err)
	}
	return nil
}

// openShadowWAL recovers the shadow WAL in dir: the highest index file,
// scanned to its last commit frame (anything after it is dropped).
func openShadowWAL(dir string) (*shadowWAL, error) {
	indexes, err := shadowIndexes(dir)
	if err != nil {
		return nil, err
	}
	if len(indexes) == 0 {
		return nil, fmt.Errorf("no shadow WAL files in %s: %w", dir, os.ErrNotExist)
	}
	index := indexes[len(indexes)-1]
	s := &shadowWAL{dir: dir, index: index}
	f, err := os.OpenFile(s.Path(index), os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("open shadow WAL: %w", err)
	}
	buf := make([]byte, walformat.HeaderSize)
	if _, err := io.ReadFull(f, buf); err != nil {
		f.Close()
		return nil, fmt.Errorf("shadow WAL %s is shorter than a WAL header", s.Path(index))
	}
	hdr, err := walformat.ParseHeader(buf)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("shadow WAL %s: %w", s.Path(index), err)
	}
	s.f, s.hdr = f, hdr
	s.size, s.s1, s.s2 = walformat.HeaderSize, hdr.Checksum1, hdr.Checksum2
	rd := walformat.NewReader(bufio.NewReaderSize(f, 1<<20), hdr, s.s1, s.s2)
	for off := int64(walformat.HeaderSize); ; {
		fh, _, err := rd.Next()
		if err != nil {
			break // end of valid frames
		}
		off += hdr.FrameSize()
		if fh.IsCommit() {
			s.size = off
			s.s1, s.s2 = rd.Checksum()
			s.commits++
		}
	}
	// Drop any uncommitted or torn tail left by a crash.
	if err := f.Truncate(s.size); err != nil {
		f.Close()
		return nil, fmt.Errorf("truncate shadow WAL: %w", err)
	}
	return s, nil
}

// shadowIndexes lists the indexes of the shadow files in dir, ascending.
func shadowIndexes(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list shadow WAL: %w", err)
	}
	var out []int
	for _, e := range ents {
		base, ok := strings.CutSuffix(e.Name(), ".wal")
		if !ok {
			continue
		}
		if v, ok := parseHexField(base); ok && v <= MaxIndex {
			out = append(out, int(v))
		}
	}
	sort.Ints(out)
	return out, nil
}

// FileSize returns the committed size of the shadow file at index: the
// current file's committed size, or the whole size of an earlier file.
func (s *shadowWAL) FileSize(index int) (int64, error) {
	if index == s.index {
		return s.size, nil
	}
	fi, err := os.Stat(s.Path(index))
	if err != nil {
		return 0, fmt.Errorf("shadow WAL index %s: %w", FormatIndex(index), err)
	}
	return fi.Size(), nil
}

// RemoveBefore deletes the shadow files with an index below index.
func (s *shadowWAL) RemoveBefore(index int) error {
	indexes, err := shadowIndexes(s.dir)
	if err != nil {
		return err
	}
	for _, i := range indexes {
		if i >= index || i == s.index {
			continue
		}
		if err := os.Remove(s.Path(i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove shadow WAL: %w", err)
		}
	}
	return nil
}

// Close closes the current file.
func (s *shadowWAL) Close() error {
	if s.f == nil {
		return nil
	}
	err := s.f.Close()
	s.f = nil
	return err
}
