package litestream

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"

	"github.com/litestream-go/litestream/internal/walformat"
)

// The apply path of the follower: the only code that writes to its output
// (invariants 1, 2, 6 and 7 of follow.go).

// followMaxPage is SQLite's largest page number (SQLITE_MAX_PAGE_COUNT).
// Restore keeps its own copy of the limit (restore_apply.go).
const followMaxPage = 0xFFFFFFFE

// lockBytePage is the page that holds the lock byte (offset 2^30): SQLite
// never writes it, so a frame for it is not SQLite's.
func lockBytePage(pageSize int) uint32 { return uint32(0x40000000/pageSize) + 1 }

// errForeignWrite means another connection committed to the follower
// database: its content is no longer a state of the primary.
var errForeignWrite = errors.New("another process wrote to the follower database")

// followDB is the follower's one connection to its output.
type followDB struct {
	db          *sql.DB
	conn        *sql.Conn
	pageSize    int
	pages       uint32 // database size in pages after the last commit
	dataVersion int64  // PRAGMA data_version as of our last transaction
}

// followDSN opens path read-write, in WAL mode, with commits that are
// durable before the sidecar says they happened (synchronous=FULL), write
// transactions that take the write lock at BEGIN, and a WAL that shrinks
// back after a resync wrote the whole database into it.
func followDSN(path string) string {
	return "file:" + (&url.URL{Path: path}).EscapedPath() +
		"?mode=rw&_txlock=immediate&_pragma=busy_timeout(10000)&_pragma=journal_mode(wal)" +
		"&_pragma=synchronous(full)&_pragma=journal_size_limit(67108864)"
}

// openFollowDB opens the follower database at path.
func openFollowDB(ctx context.Context, path string) (*followDB, error) {
	db, err := sql.Open("sqlite", followDSN(path))
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	conn, err := db.Conn(ctx)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open follower database %s: %w", path, err)
	}
	fdb := &followDB{db: db, conn: conn}
	var mode string
	var pages int64
	err = conn.QueryRowContext(ctx, "PRAGMA journal_mode").Scan(&mode)
	if err == nil && mode != "wal" {
		err = fmt.Errorf("journal mode is %q, not wal", mode)
	}
	if err == nil {
		err = conn.QueryRowContext(ctx, "PRAGMA page_size").Scan(&fdb.pageSize)
	}
	if err == nil {
		err = conn.QueryRowContext(ctx, "PRAGMA page_count").Scan(&pages)
	}
	if err == nil {
		err = conn.QueryRowContext(ctx, "PRAGMA data_version").Scan(&fdb.dataVersion)
	}
	if err != nil {
		fdb.close()
		return nil, fmt.Errorf("open follower database %s: %w", path, err)
	}
	fdb.pages = uint32(pages)
	return fdb, nil
}

func (d *followDB) close() {
	d.conn.Close()
	d.db.Close()
}

// setWALMode makes the database file at path a WAL database, before any
// reader can see it; closing the last connection leaves no -wal behind.
func setWALMode(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=rw&_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	var mode string
	if err := db.QueryRowContext(ctx, "PRAGMA journal_mode=WAL").Scan(&mode); err != nil {
		return fmt.Errorf("set WAL mode on the restored follower: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("set WAL mode on the restored follower: journal mode stays %q", mode)
	}
	return db.Close()
}

// followStep is the pages of one or more whole segments, waiting to be
// applied in one transaction: for each page the image of its last frame,
// in a temporary file; and the size after the last commit.
type followStep struct {
	file     *os.File
	pageSize int
	basePgs  uint32           // the follower's size when the step began
	slots    map[uint32]int64 // page number -> offset of its image in file
	next     int64            // end of file
	dbSize   uint32           // pages after the last commit of the step
	frames   int64            // frames taken
	segments []string         // names, for the log
	bytes    int64            // decoded bytes taken
	start    followState      // where the step begins
	end      followState      // where it ends
}

func newFollowStep(path string, st followState, pageSize int, basePages uint32) (*followStep, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return nil, localError{fmt.Errorf("create step file: %w", err)}
	}
	return &followStep{file: f, pageSize: pageSize, basePgs: basePages, slots: map[uint32]int64{}, start: st, end: st}, nil
}

func (s *followStep) close() {
	name := s.file.Name()
	s.file.Close()
	os.Remove(name)
}

// addSegment reads one decoded segment, which must continue s.end: every
// frame valid (salts, cumulative checksum, page number), the last one a
// commit, each commit size possible. On any error the step is as it was
// before the call, and still holds the segments taken earlier.
func (s *followStep) addSegment(dec io.Reader, st followState, name string) error {
	type undo struct {
		pgno uint32
		prev int64
		had  bool
	}
	var undos []undo
	own := map[uint32]bool{} // pages whose slot this segment made
	savedNext, savedSize, savedFrames := s.next, s.dbSize, s.frames
	fail := func(err error) error {
		for i := len(undos) - 1; i >= 0; i-- {
			if u := undos[i]; u.had {
				s.slots[u.pgno] = u.prev
			} else {
				delete(s.slots, u.pgno)
			}
		}
		s.next, s.dbSize, s.frames = savedNext, savedSize, savedFrames
		return fmt.Errorf("WAL segment %s: %w", name, err)
	}
	br := bufio.NewReaderSize(dec, 256<<10)
	hdr := st.Header
	s1, s2 := st.Sum1, st.Sum2
	off := st.Pos.Offset
	if off == 0 {
		buf := make([]byte, walformat.HeaderSize)
		if _, err := io.ReadFull(br, buf); err != nil {
			return fail(fmt.Errorf("shorter than a WAL header: %w", errCorrupt{err}))
		}
		h, err := walformat.ParseHeader(buf)
		if err != nil {
			return fail(err)
		}
		hdr, s1, s2, off = &h, h.Checksum1, h.Checksum2, walformat.HeaderSize
	}
	if hdr == nil {
		return fail(errors.New("no WAL header for this index"))
	}
	if int(hdr.PageSize) != s.pageSize {
		return fail(fmt.Errorf("page size %d differs from the follower database's %d", hdr.PageSize, s.pageSize))
	}
	lockPage := lockBytePage(s.pageSize)
	rd := walformat.NewReader(br, *hdr, s1, s2)
	frames, committed := 0, true
	for {
		fh, frame, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return fail(fmt.Errorf("frame at offset %s: %w", FormatOffset(off), err))
		}
		if fh.Pgno > followMaxPage {
			return fail(fmt.Errorf("frame at offset %s: page number %d is above SQLite's limit (%d)", FormatOffset(off), fh.Pgno, uint32(followMaxPage)))
		}
		if fh.Pgno == lockPage {
			return fail(fmt.Errorf("frame at offset %s: page %d is the lock-byte page, which SQLite never writes", FormatOffset(off), fh.Pgno))
		}
		slot, ok := s.slots[fh.Pgno]
		if !own[fh.Pgno] {
			undos = append(undos, undo{fh.Pgno, slot, ok})
			slot = s.next
			s.next += int64(s.pageSize)
			s.slots[fh.Pgno] = slot
			own[fh.Pgno] = true
		}
		if _, err := s.file.WriteAt(frame[walformat.FrameHeaderSize:], slot); err != nil {
			return fail(localError{fmt.Errorf("write step file: %w", err)})
		}
		frames++
		s.frames++
		off += hdr.FrameSize()
		committed = fh.IsCommit()
		if committed {
			// Every page of the new size is an old page, a page written
			// since, or the lock-byte page.
			if limit := int64(s.basePgs) + s.frames + 1; fh.Commit > followMaxPage || int64(fh.Commit) > limit {
				return fail(fmt.Errorf("frame at offset %s: the commit sets the database size to %d pages, more than the follower's %d pages and the %d frames applied can make: the replica is damaged",
					FormatOffset(off-hdr.FrameSize()), fh.Commit, s.basePgs, s.frames))
			}
			s.dbSize = fh.Commit
		}
	}
	if !committed {
		return fail(errors.New("does not end on a commit frame: the replica is damaged"))
	}
	if frames == 0 && st.Pos.Offset != 0 {
		return fail(errors.New("holds no frame: the replica is damaged"))
	}
	end := st
	end.Header = hdr
	end.Pos.Offset = off
	end.Sum1, end.Sum2 = rd.Checksum()
	end.Resync = false
	s.end = end
	s.segments = append(s.segments, name)
	s.bytes += off - st.Pos.Offset
	return nil
}

// applyStep writes the step's pages and size in one transaction, after
// checking inside it that no other connection wrote since our last one.
func (d *followDB) applyStep(ctx context.Context, s *followStep) (pages int, err error) {
	if s.dbSize == 0 {
		return 0, nil // headers only: nothing to write
	}
	tx, err := d.conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin follower transaction: %w", err)
	}
	defer tx.Rollback()
	var dv int64
	if err := tx.QueryRowContext(ctx, "PRAGMA data_version").Scan(&dv); err != nil {
		return 0, err
	}
	if dv != d.dataVersion {
		return 0, errForeignWrite
	}
	pgnos := make([]uint32, 0, len(s.slots))
	for p := range s.slots {
		if p <= s.dbSize {
			pgnos = append(pgnos, p)
		}
	}
	slices.Sort(pgnos)
	ins, err := tx.PrepareContext(ctx, "INSERT INTO sqlite_dbpage(pgno, data) VALUES(?, ?)")
	if err != nil {
		return 0, fmt.Errorf("follower: %w", err)
	}
	defer ins.Close()
	buf := make([]byte, s.pageSize)
	for _, p := range pgnos {
		if _, err := s.file.ReadAt(buf, s.slots[p]); err != nil {
			return 0, localError{fmt.Errorf("read step file: %w", err)}
		}
		if _, err := ins.ExecContext(ctx, int64(p), buf); err != nil {
			return 0, fmt.Errorf("write page %d of the follower: %w", p, err)
		}
	}
	if err := setSize(ctx, tx, s.dbSize); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit follower transaction: %w", err)
	}
	d.pages = s.dbSize
	return len(pgnos), nil
}

// setSize makes the transaction's database n pages long: dbpage.c cuts
// the pages from n+1 on at commit. It must be the transaction's last
// write to sqlite_dbpage.
func setSize(ctx context.Context, tx *sql.Tx, n uint32) error {
	if n >= followMaxPage {
		return nil // no page can follow
	}
	if _, err := tx.ExecContext(ctx, "INSERT INTO sqlite_dbpage(pgno, data) VALUES(?, NULL)", int64(n)+1); err != nil {
		return fmt.Errorf("set the follower's size to %d pages: %w", n, err)
	}
	return nil
}

// errPageSize is a resync image whose page size differs from the
// follower's: sqlite_dbpage cannot change a database's page size.
type errPageSize struct{ img, db int }

func (e errPageSize) Error() string {
	return fmt.Sprintf("the replica's database has %d-byte pages and the follower %d-byte pages (a VACUUM changed the page size): "+
		"stop the follower, remove the output and its sidecar, and start it again to restore afresh", e.img, e.db)
}

// resync makes the follower database a copy of the database file at img
// (a finished restore no one else uses) in one transaction: it writes the
// pages that differ, then the size. Whatever the follower held, even
// another process's writes, it then holds img's state.
func (d *followDB) resync(ctx context.Context, img string) (written int, err error) {
	f, err := os.Open(img)
	if err != nil {
		return 0, localError{err}
	}
	defer f.Close()
	ps, err := walformat.ReadDBPageSize(img)
	if err != nil {
		return 0, fmt.Errorf("resync image: %w", err)
	}
	if ps != d.pageSize {
		return 0, errPageSize{ps, d.pageSize}
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, localError{err}
	}
	n := fi.Size() / int64(ps)
	if n < 1 || n > followMaxPage || fi.Size()%int64(ps) != 0 {
		return 0, fmt.Errorf("resync image: %d bytes is not a whole number of %d-byte pages", fi.Size(), ps)
	}
	tx, err := d.conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("begin follower transaction: %w", err)
	}
	defer tx.Rollback()
	var dv int64
	if err := tx.QueryRowContext(ctx, "PRAGMA data_version").Scan(&dv); err != nil {
		return 0, err
	}
	sel, err := tx.PrepareContext(ctx, "SELECT data FROM sqlite_dbpage WHERE pgno = ?")
	if err != nil {
		return 0, fmt.Errorf("follower: %w", err)
	}
	defer sel.Close()
	ins, err := tx.PrepareContext(ctx, "INSERT INTO sqlite_dbpage(pgno, data) VALUES(?, ?)")
	if err != nil {
		return 0, fmt.Errorf("follower: %w", err)
	}
	defer ins.Close()
	lockPage := lockBytePage(ps)
	buf := make([]byte, ps)
	var cur []byte
	r := bufio.NewReaderSize(f, 1<<20)
	for p := uint32(1); int64(p) <= n; p++ {
		if _, err := io.ReadFull(r, buf); err != nil {
			return 0, localError{fmt.Errorf("read resync image: %w", err)}
		}
		if p == lockPage {
			continue
		}
		if p <= d.pages {
			err := sel.QueryRowContext(ctx, int64(p)).Scan(&cur)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return 0, fmt.Errorf("read page %d of the follower: %w", p, err)
			}
			if err == nil && bytes.Equal(cur, buf) {
				continue
			}
		}
		if _, err := ins.ExecContext(ctx, int64(p), buf); err != nil {
			return 0, fmt.Errorf("write page %d of the follower: %w", p, err)
		}
		written++
	}
	if err := setSize(ctx, tx, uint32(n)); err != nil {
		return 0, err
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("commit follower resync: %w", err)
	}
	d.pages, d.dataVersion = uint32(n), dv
	return written, nil
}

// readFrameHeader parses a 24-byte frame header: page number, commit
// size, and the cumulative checksum it carries.
func readFrameHeader(b []byte) (pgno, commit, s1, s2 uint32) {
	be := binary.BigEndian
	return be.Uint32(b[0:]), be.Uint32(b[4:]), be.Uint32(b[16:]), be.Uint32(b[20:])
}
