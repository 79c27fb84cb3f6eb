package litestream

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"testing"

	"github.com/litestream-go/litestream/internal/walformat"
)

// checkInvariantsOnClose makes db check the engine's invariants (doc.go)
// when it closes, and when the test ends if it is still open. Test
// helpers that build a DB call it.
//
// Why at Close, not in a cleanup after it: the check reads SQLite's
// wal-index through the engine's own descriptor of the -shm, which Close
// closes; opening the -shm by path instead would drop the locks SQLite
// holds on it in this process (invariant 1 of db_files.go). And why not in
// a cleanup before Close: most tests close the DB themselves (a defer, or
// before restoring), which runs before any cleanup. Close runs the check
// after its final syncs, with DB.mu held and every descriptor still open.
func checkInvariantsOnClose(t testing.TB, db *DB) {
	db.closeHook = func() { checkInvariantsLocked(t, db) }
	t.Cleanup(func() {
		if !db.closed.Load() {
			checkInvariants(t, db)
		}
	})
}

// checkInvariants checks the engine's invariants on a DB that may be
// running: it takes DB.mu, so no copy or checkpoint is half done.
func checkInvariants(t testing.TB, db *DB) {
	t.Helper()
	db.mu.Lock()
	defer db.mu.Unlock()
	checkInvariantsLocked(t, db)
}

// checkInvariantsLocked is checkInvariants with DB.mu held. It reports
// with t.Errorf, since Close may run on another goroutine.
func checkInvariantsLocked(t testing.TB, db *DB) {
	t.Helper()
	for _, err := range invariantErrors(db) {
		t.Errorf("engine invariant broken for %s: %v", db.path, err)
	}
}

// invariantErrors returns what breaks the engine's invariants now. Caller
// holds DB.mu: between the engine's calls, never inside one.
func invariantErrors(db *DB) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }

	c := db.conns
	if (c == nil) != (db.files == nil) {
		fail("connections open: %v, own descriptors of the database and -shm open: %v; want both or neither", c != nil, db.files != nil)
	}
	// The write lock is taken and released inside one call under mu.
	if c != nil && c.writeHeld {
		fail("SQLite's write lock is held while DB.mu is free")
	}
	// A read transaction is open after start: it is what keeps other
	// connections from restarting the WAL past what the shadow holds.
	if db.started && (c == nil || !c.readHeld) {
		fail("the first sync is done, but no read transaction is open")
	}
	s := db.shadow
	if s == nil {
		return errs
	}
	// Nothing unsynced after the write lock is released.
	if s.needsFsync {
		fail("the shadow WAL holds unsynced committed bytes with the write lock released")
	}
	// The read floor is at or before the shadow end.
	end := db.shadowEnd()
	if !db.readFloor.IsZero() && db.readFloor.Generation == end.Generation && end.Less(db.readFloor) {
		fail("read floor %s is past the shadow end %s", db.readFloor, end)
	}
	errs = append(errs, shadowFileErrors(s)...)
	if c == nil || !db.started {
		return errs
	}
	errs = append(errs, shadowMatchesWAL(db)...)
	return errs
}

// shadowFileErrors checks the shadow WAL's files against its state: every
// closed index ends on a commit frame, and the current one holds, up to
// Size, valid frames that end on a commit, with the checksum and commit
// count the shadow records. Bytes past Size (a failed copy's) are allowed.
func shadowFileErrors(s *shadowWAL) []error {
	var errs []error
	indexes, err := shadowIndexes(s.dir)
	if err != nil {
		return []error{err}
	}
	for _, i := range indexes {
		if i >= s.index {
			continue
		}
		f, err := os.Open(s.Path(i))
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			errs = append(errs, err)
			continue
		}
		sc, err := scanShadowFile(f, -1)
		f.Close()
		if err != nil {
			errs = append(errs, fmt.Errorf("closed shadow index %s: %w", FormatIndex(i), err))
		} else if sc.fileSize != sc.commitEnd {
			errs = append(errs, fmt.Errorf("closed shadow index %s is %d bytes, its last commit ends at %d", FormatIndex(i), sc.fileSize, sc.commitEnd))
		}
	}
	sc, err := scanShadowFile(s.f, s.size)
	switch {
	case err != nil:
		errs = append(errs, fmt.Errorf("current shadow index %s: %w", FormatIndex(s.index), err))
	case sc.hdr != s.hdr:
		errs = append(errs, fmt.Errorf("current shadow index %s: its file's header differs from the one recorded", FormatIndex(s.index)))
	case sc.commitEnd != s.size:
		errs = append(errs, fmt.Errorf("current shadow index %s: committed size %d, but its last commit frame before it ends at %d", FormatIndex(s.index), s.size, sc.commitEnd))
	case sc.s1 != s.s1 || sc.s2 != s.s2 || sc.commits != s.commits:
		errs = append(errs, fmt.Errorf("current shadow index %s: checksum %08x %08x and %d commits recorded, %08x %08x and %d in the file",
			FormatIndex(s.index), s.s1, s.s2, s.commits, sc.s1, sc.s2, sc.commits))
	}
	return errs
}

// shadowScan is what scanShadowFile found.
type shadowScan struct {
	hdr       walformat.Header
	fileSize  int64
	commitEnd int64  // end of the last commit frame read
	s1, s2    uint32 // cumulative checksum at commitEnd
	commits   int
}

// scanShadowFile reads a shadow file's header and its valid frames up to
// limit bytes (the whole file when limit < 0).
func scanShadowFile(f *os.File, limit int64) (shadowScan, error) {
	fi, err := f.Stat()
	if err != nil {
		return shadowScan{}, err
	}
	sc := shadowScan{fileSize: fi.Size()}
	if limit < 0 {
		limit = sc.fileSize
	}
	if limit > sc.fileSize {
		return sc, fmt.Errorf("file is %d bytes, shorter than its committed size %d", sc.fileSize, limit)
	}
	b := make([]byte, walformat.HeaderSize)
	if _, err := f.ReadAt(b, 0); err != nil {
		return sc, fmt.Errorf("read header: %w", err)
	}
	if sc.hdr, err = walformat.ParseHeader(b); err != nil {
		return sc, err
	}
	sc.commitEnd, sc.s1, sc.s2 = walformat.HeaderSize, sc.hdr.Checksum1, sc.hdr.Checksum2
	body := io.NewSectionReader(f, walformat.HeaderSize, limit-walformat.HeaderSize)
	rd := walformat.NewReader(bufio.NewReaderSize(body, 1<<20), sc.hdr, sc.s1, sc.s2)
	for off := int64(walformat.HeaderSize); ; {
		fh, _, err := rd.Next()
		if errors.Is(err, io.EOF) {
			return sc, nil
		} else if err != nil {
			return sc, fmt.Errorf("frame at offset %d: %w", off, err)
		}
		off += sc.hdr.FrameSize()
		if fh.IsCommit() {
			sc.commitEnd, sc.commits = off, sc.commits+1
			sc.s1, sc.s2 = rd.Checksum()
		}
	}
}

// shadowMatchesWAL checks the shadow against the WAL while our read
// transaction keeps the WAL from restarting: the shadow ends at or before
// the end of the frames SQLite's wal-index counts as committed, and its
// bytes are the WAL's. A WAL of another incarnation is allowed only as the
// one restart that may follow our checkpoint. Caller holds DB.mu.
func shadowMatchesWAL(db *DB) []error {
	s := db.shadow
	wal, hdr, _, err := readWALHeader(db.WALPath())
	if err != nil {
		return []error{fmt.Errorf("read the WAL: %w", err)}
	}
	defer wal.Close()
	idx, err := db.readWALIndexHeader()
	if err != nil {
		return []error{err}
	}
	oneRestart := db.restartAllowed && hdr.Salt1 == s.hdr.Salt1+1
	if !hdr.SameWAL(s.hdr) {
		if !oneRestart {
			return []error{fmt.Errorf("the WAL restarted (salt1 %08x, shadow's %08x) behind our read transaction", hdr.Salt1, s.hdr.Salt1)}
		}
		return nil
	}
	if !idx.describes(hdr) {
		if !db.restartAllowed {
			return []error{fmt.Errorf("SQLite's wal-index describes another WAL (salt1 %08x) than the shadow's (%08x) behind our read transaction", idx.salt1, hdr.Salt1)}
		}
		return nil
	}
	if committed := idx.committedEnd(hdr); s.size > committed {
		return []error{fmt.Errorf("the shadow holds %d bytes of the WAL, past the %d that SQLite's wal-index (mxFrame %d) counts as committed", s.size, committed, idx.mxFrame)}
	}
	want, got := make([]byte, 1<<20), make([]byte, 1<<20)
	for off := int64(0); off < s.size; off += int64(len(want)) {
		n := min(int64(len(want)), s.size-off)
		if _, err := wal.ReadAt(want[:n], off); err != nil {
			return []error{fmt.Errorf("read the WAL at %d: %w", off, err)}
		}
		if _, err := s.f.ReadAt(got[:n], off); err != nil {
			return []error{fmt.Errorf("read the shadow at %d: %w", off, err)}
		}
		if !bytes.Equal(want[:n], got[:n]) {
			return []error{fmt.Errorf("the shadow's bytes differ from the WAL's in [%d, %d)", off, off+n)}
		}
	}
	return nil
}
