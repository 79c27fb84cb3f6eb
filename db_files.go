package litestream

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/litestream-go/litestream/internal/walformat"
)

// Invariants kept here, on which the application's safety rests:
//
//  1. The process holds one descriptor of the database file and one of its
//     -shm for as long as it has SQLite connections to them, and closes
//     them only after those connections are closed (dbFiles.close comes
//     after dbConns.close). fcntl locks belong to a process, not to a
//     descriptor: closing any descriptor of a file drops every lock the
//     process holds on it, SQLite's included. Without its SHARED lock on
//     the database file, the application's last close would take the
//     EXCLUSIVE lock, checkpoint, and delete the WAL and -shm under the
//     engine's connections.
//  2. Nothing else in the process opens the database file or the -shm by
//     path: snapshots read the database through dbFiles.db, and the
//     wal-index header is read through dbFiles.shm. The -wal file carries no
//     lock in SQLite's protocol, so it may be opened and closed freely.
//  3. What is committed is what SQLite's wal-index says (its header's
//     mxFrame, for the WAL incarnation its salts name), never what merely
//     has a valid checksum in the WAL file: a writer killed after writing
//     a commit frame but before updating the wal-index leaves valid-looking
//     frames that SQLite's next writer overwrites.

// dbFiles are the engine's own descriptors of a database's files, opened
// after its SQLite connections and closed after them.
type dbFiles struct {
	db, shm            *os.File
	dbID, shmID, walID os.FileInfo // the files the connections opened
}

// openDBFiles opens the database file and its -shm, and records which -wal
// file is at its path. Call it once the engine's connections are open, so
// that SQLite has created the -wal and -shm and holds its locks.
func openDBFiles(path string) (_ *dbFiles, err error) {
	f := &dbFiles{}
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	if f.db, err = os.Open(path); err != nil {
		return nil, fmt.Errorf("open database file: %w", err)
	}
	if f.shm, err = os.Open(path + "-shm"); err != nil {
		return nil, fmt.Errorf("open wal-index (-shm): %w", err)
	}
	if f.dbID, err = f.db.Stat(); err != nil {
		return nil, fmt.Errorf("stat database file: %w", err)
	}
	if f.shmID, err = f.shm.Stat(); err != nil {
		return nil, fmt.Errorf("stat wal-index (-shm): %w", err)
	}
	if f.walID, err = os.Stat(path + "-wal"); err != nil {
		return nil, fmt.Errorf("stat WAL: %w", err)
	}
	return f, nil
}

// replaced names the first of the database's files at path that is no
// longer the file the engine's connections use, or returns "" when all
// three still are. A connection whose -wal or -shm was deleted or replaced
// writes where nobody reads, and a checkpoint through it would copy stale
// pages into the database.
func (f *dbFiles) replaced(path string) string {
	for _, c := range []struct {
		name, path string
		id         os.FileInfo
	}{{"database file", path, f.dbID}, {"-wal", path + "-wal", f.walID}, {"-shm", path + "-shm", f.shmID}} {
		if fi, err := os.Stat(c.path); err != nil || !os.SameFile(fi, c.id) {
			return c.name
		}
	}
	return ""
}

// close closes the descriptors. Call it only after every SQLite connection
// of this process to the database is closed (invariant 1).
func (f *dbFiles) close() error {
	var errs []error
	for _, fd := range []*os.File{f.shm, f.db} {
		if fd != nil {
			errs = append(errs, fd.Close())
		}
	}
	return errors.Join(errs...)
}

// walIndexHeader is what the engine needs of SQLite's wal-index header
// (the first 48 bytes of the -shm, kept twice, in the host's byte order).
type walIndexHeader struct {
	mxFrame      uint32    // frames of the WAL that are committed
	frameCksum   [2]uint32 // cumulative checksum of frame mxFrame
	salt1, salt2 uint32    // of the WAL incarnation it describes
}

// walIndexVersion is the only wal-index format SQLite has written.
const walIndexVersion = 3007000

// errWALIndexBusy means the wal-index header was being written while read:
// its two copies differ or its checksum fails. Reading again later works.
var errWALIndexBusy = errors.New("wal-index header is being updated")

// readWALIndexHeader reads the wal-index header through the engine's own
// descriptor of the -shm.
func (f *dbFiles) readWALIndexHeader() (walIndexHeader, error) {
	var b [96]byte
	if _, err := f.shm.ReadAt(b[:], 0); err != nil {
		if errors.Is(err, io.EOF) {
			return walIndexHeader{}, errWALIndexBusy // not initialised yet
		}
		return walIndexHeader{}, fmt.Errorf("read wal-index header: %w", err)
	}
	return parseWALIndexHeader(b[:])
}

// parseWALIndexHeader decodes the wal-index header. It accepts the header only as SQLite's
// readers do: both copies equal, initialised, and the checksum right.
func parseWALIndexHeader(b []byte) (walIndexHeader, error) {
	h1, h2 := b[0:48], b[48:96]
	if string(h1) != string(h2) || h1[12] != 1 {
		return walIndexHeader{}, errWALIndexBusy
	}
	ne := binary.NativeEndian
	var s1, s2 uint32
	for i := 0; i < 40; i += 8 {
		s1 += ne.Uint32(h1[i:]) + s2
		s2 += ne.Uint32(h1[i+4:]) + s1
	}
	if s1 != ne.Uint32(h1[40:]) || s2 != ne.Uint32(h1[44:]) {
		return walIndexHeader{}, errWALIndexBusy
	}
	if v := ne.Uint32(h1[0:]); v != walIndexVersion {
		return walIndexHeader{}, fmt.Errorf("wal-index header: unknown version %d", v)
	}
	return walIndexHeader{
		mxFrame:    ne.Uint32(h1[16:]),
		frameCksum: [2]uint32{ne.Uint32(h1[24:]), ne.Uint32(h1[28:])},
		// The salts are the WAL header's own bytes, big-endian.
		salt1: binary.BigEndian.Uint32(h1[32:]),
		salt2: binary.BigEndian.Uint32(h1[36:]),
	}, nil
}

// describes reports whether the header describes the WAL incarnation hdr.
func (h walIndexHeader) describes(hdr walformat.Header) bool {
	return h.salt1 == hdr.Salt1 && h.salt2 == hdr.Salt2
}

// committedEnd returns the end offset, in the WAL file with header hdr, of
// its last committed frame: past the header alone when the wal-index
// describes another incarnation (a writer restarted the WAL and has not
// committed in it yet).
func (h walIndexHeader) committedEnd(hdr walformat.Header) int64 {
	if !h.describes(hdr) {
		return walformat.HeaderSize
	}
	return walformat.HeaderSize + int64(h.mxFrame)*hdr.FrameSize()
}
