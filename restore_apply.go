package litestream

import (
	"bufio"
	"container/list"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"

	"github.com/litestream-go/litestream/internal/walformat"
)

// What applying a plan keeps (restore_scale_test.go, restore_hostile_test.go):
//  1. Descriptors are bounded whatever the segment count: each shadow WAL
//     index is decoded into one file (its segments at their offsets, so the
//     file is that index's shadow WAL), a segment's download opens it only
//     while writing, and apply holds at most maxOpenGroups of them open.
//  2. The output is bounded by what the replica holds: no page number above
//     SQLite's limit, and no final commit size above the snapshot's pages
//     plus the frames applied (plus the lock-byte page, never written).
//  3. Temporary disk is bounded by the plan: a segment decodes to at most
//     the length its successor's offset implies, or its declared content
//     size (see decodeBounded).

// maxPageNumber is SQLite's largest page number (SQLITE_MAX_PAGE_COUNT,
// 4294967294 since 3.45).
const maxPageNumber = 0xFFFFFFFE

// maxOpenGroups bounds the decoded index files apply holds open at once;
// pages are written in ascending order and come from any index.
const maxOpenGroups = 64

// pageLoc is where a page's latest committed version lies: in the decoded
// file of one index (group), at a byte offset.
type pageLoc struct {
	group int32
	off   int64
}

// walGroup is one shadow WAL index of the plan: its segments, decoded into
// one file at their offsets.
type walGroup struct {
	index int
	path  string
	segs  []SegmentInfo // in offset order
	first int           // position of segs[0] in the plan's segments
	size  int64         // decoded bytes: the end of the last segment
}

// segmentAt names the segment holding byte off of the group.
func (g *walGroup) segmentAt(off int64) string {
	i, _ := slices.BinarySearchFunc(g.segs, off, func(s SegmentInfo, off int64) int {
		if s.Offset <= off {
			return -1
		}
		return 1
	})
	s := g.segs[max(i-1, 0)]
	return SegmentName(s.Index, s.Offset)
}

// planGroups splits the plan's segments by index; each group's file is
// named for its index in dir.
func planGroups(plan *RestorePlan, dir string) []*walGroup {
	var gs []*walGroup
	for i, s := range plan.Segments {
		if i == 0 || s.Index != plan.Segments[i-1].Index {
			gs = append(gs, &walGroup{index: s.Index, first: i, path: filepath.Join(dir, FormatIndex(s.Index)+".wal")})
		}
		g := gs[len(gs)-1]
		g.segs = plan.Segments[g.first : i+1] // no copy: a day's history is 86,400 segments
	}
	return gs
}

// segmentIndex is where each page's last committed version lies in the
// plan's decoded index files.
type segmentIndex struct {
	groups    []*walGroup
	pageSizes []int // of each group's WAL
	pages     map[uint32]pageLoc
	dbSize    uint32 // pages after the last commit indexed
	frames    int64  // committed frames indexed
}

// indexSegments reads each index's decoded file, validating every frame
// (salts, cumulative checksum, page numbers), and keeps for each page the
// location of its last version committed by a commit frame. It needs no
// snapshot, so it runs while the snapshot is still downloading. It holds
// one file open at a time.
func indexSegments(plan *RestorePlan, groups []*walGroup, until *Pos, logger *slog.Logger) (*segmentIndex, error) {
	x := &segmentIndex{groups: groups, pages: make(map[uint32]pageLoc)}
	for gi, g := range groups {
		if err := x.indexGroup(plan, gi, g, until, logger); err != nil {
			return nil, err
		}
	}
	return x, nil
}

func (x *segmentIndex) indexGroup(plan *RestorePlan, gi int, g *walGroup, until *Pos, logger *slog.Logger) error {
	total := g.size
	if until != nil && g.index == until.Index {
		if total < until.Offset {
			return fmt.Errorf("replica does not hold position %s yet", until)
		}
		total = until.Offset
	}
	f, err := os.Open(g.path)
	if err != nil {
		return localError{fmt.Errorf("open decoded WAL: %w", err)}
	}
	defer f.Close()
	buf := make([]byte, walformat.HeaderSize)
	if total < walformat.HeaderSize {
		return damaged(fmt.Errorf("WAL segment %s: %d bytes, shorter than a WAL header", g.segmentAt(0), total))
	}
	if _, err := f.ReadAt(buf, 0); err != nil {
		return localError{fmt.Errorf("read decoded WAL: %w", err)}
	}
	hdr, err := walformat.ParseHeader(buf)
	if err != nil {
		return damaged(fmt.Errorf("WAL segment %s: %w", g.segmentAt(0), err))
	}
	x.pageSizes = append(x.pageSizes, int(hdr.PageSize))
	rd := walformat.NewReader(bufio.NewReaderSize(io.NewSectionReader(f, walformat.HeaderSize, total-walformat.HeaderSize), 1<<20), hdr, hdr.Checksum1, hdr.Checksum2)
	type pending struct {
		pgno uint32
		off  int64
	}
	var txn []pending
	off := int64(walformat.HeaderSize)
	for {
		fh, _, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if errors.Is(err, walformat.ErrInvalidFrame) {
			return damaged(fmt.Errorf("WAL segment %s: frame at offset %s: %w", g.segmentAt(off), FormatOffset(off), err))
		} else if err != nil {
			return fmt.Errorf("WAL segment %s: frame at offset %s: %w", g.segmentAt(off), FormatOffset(off), err)
		}
		if fh.Pgno > maxPageNumber {
			return damaged(fmt.Errorf("WAL segment %s: frame at offset %s: page number %d is above SQLite's limit (%d)",
				g.segmentAt(off), FormatOffset(off), fh.Pgno, uint32(maxPageNumber)))
		}
		txn = append(txn, pending{fh.Pgno, off + walformat.FrameHeaderSize})
		off += hdr.FrameSize()
		if fh.IsCommit() {
			for _, p := range txn {
				x.pages[p.pgno] = pageLoc{group: int32(gi), off: p.off}
			}
			x.frames += int64(len(txn))
			txn, x.dbSize = txn[:0], fh.Commit
		}
	}
	if len(txn) > 0 {
		logger.Warn("ignoring frames after the last commit of an index", "index", FormatIndex(g.index), "frames", len(txn))
	}
	return nil
}

// apply writes each indexed page's last version once onto the snapshot at
// dbPath and sets the file size from the last commit. It returns the pages
// written.
func (x *segmentIndex) apply(dbPath string, plan *RestorePlan) (int, error) {
	snap := SnapshotName(plan.Snapshot.Index)
	dbPageSize, err := snapshotPageSize(dbPath)
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: %w", snap, err)
	}
	fi, err := os.Stat(dbPath)
	if err != nil {
		return 0, localError{err}
	}
	if len(x.groups) == 0 {
		return 0, nil
	}
	for gi, n := range x.pageSizes {
		if n != dbPageSize {
			return 0, fmt.Errorf("WAL segment %s: page size %d differs from the snapshot's %d", x.groups[gi].segmentAt(0), n, dbPageSize)
		}
	}
	// Every page of the result is in the snapshot or in a frame; SQLite
	// never writes the lock-byte page, the one exception. (Only the last
	// commit counts: an earlier one may be larger than the snapshot, which
	// a checkpoint after a VACUUM truncated.)
	snapPages := (fi.Size() + int64(dbPageSize) - 1) / int64(dbPageSize)
	if limit := snapPages + x.frames + 1; int64(x.dbSize) > limit {
		return 0, fmt.Errorf("generation %s: the last commit sets the database size to %d pages, more than the snapshot's %d pages and the %d frames applied can make: %w",
			plan.Generation, x.dbSize, snapPages, x.frames, ErrReplicaDamaged)
	}
	return writePages(dbPath, dbPageSize, x.pages, x.dbSize, x.groups)
}

// groupFiles opens the groups' decoded files on demand and keeps the most
// recently used maxOpenGroups of them open.
type groupFiles struct {
	groups []*walGroup
	open   map[int32]*list.Element // of *openGroup
	lru    list.List
}

type openGroup struct {
	gi int32
	f  *os.File
}

func (c *groupFiles) readAt(gi int32, p []byte, off int64) error {
	e, ok := c.open[gi]
	if ok {
		c.lru.MoveToFront(e)
	} else {
		if c.lru.Len() >= maxOpenGroups {
			old := c.lru.Remove(c.lru.Back()).(*openGroup)
			old.f.Close()
			delete(c.open, old.gi)
		}
		f, err := os.Open(c.groups[gi].path)
		if err != nil {
			return err
		}
		e = c.lru.PushFront(&openGroup{gi, f})
		c.open[gi] = e
	}
	_, err := e.Value.(*openGroup).f.ReadAt(p, off)
	return err
}

func (c *groupFiles) close() {
	for e := c.lru.Front(); e != nil; e = e.Next() {
		e.Value.(*openGroup).f.Close()
	}
	c.lru.Init()
	clear(c.open)
}

// writePages writes each page's last version once, ascending, and sets the
// file size.
func writePages(dbPath string, pageSize int, pages map[uint32]pageLoc, dbSize uint32, groups []*walGroup) (int, error) {
	f, err := os.OpenFile(dbPath, os.O_RDWR, 0)
	if err != nil {
		return 0, localError{err}
	}
	defer f.Close()
	files := &groupFiles{groups: groups, open: map[int32]*list.Element{}}
	defer files.close()
	pgnos := make([]uint32, 0, len(pages))
	for p := range pages {
		if dbSize == 0 || p <= dbSize {
			pgnos = append(pgnos, p)
		}
	}
	slices.Sort(pgnos)
	buf := make([]byte, pageSize)
	w := bufio.NewWriterSize(&offsetWriter{f: f}, 1<<20)
	next := int64(-1)
	for _, p := range pgnos {
		loc := pages[p]
		if err := files.readAt(loc.group, buf, loc.off); err != nil {
			return 0, localError{fmt.Errorf("read page %d: %w", p, err)}
		}
		dst := int64(p-1) * int64(pageSize)
		if dst != next { // not contiguous: flush and seek
			if err := w.Flush(); err != nil {
				return 0, localError{err}
			}
			w.Reset(&offsetWriter{f: f, off: dst})
		}
		if _, err := w.Write(buf); err != nil {
			return 0, localError{fmt.Errorf("write page %d: %w", p, err)}
		}
		next = dst + int64(pageSize)
	}
	if err := w.Flush(); err != nil {
		return 0, localError{fmt.Errorf("write pages: %w", err)}
	}
	if dbSize > 0 {
		if err := f.Truncate(int64(dbSize) * int64(pageSize)); err != nil {
			return 0, localError{fmt.Errorf("set database size: %w", err)}
		}
	}
	// Restore fsyncs the file, alongside SQLite's check.
	if err := f.Close(); err != nil {
		return 0, localError{err}
	}
	return len(pgnos), nil
}

// snapshotPageSize reads the page size from the header of the decoded
// snapshot at path, and refuses one SQLite cannot have.
func snapshotPageSize(path string) (int, error) {
	n, err := walformat.ReadDBPageSize(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return 0, localError{err}
		}
		return 0, err
	}
	if n < 512 || n > 65536 || n&(n-1) != 0 {
		return 0, fmt.Errorf("invalid page size %d in the database header (SQLite's are powers of two from 512 to 65536)", n)
	}
	return n, nil
}
