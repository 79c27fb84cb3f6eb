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
	"sync"

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
	dbSize    uint32   // pages after the last commit indexed
	frames    int64    // committed frames indexed
	pgnos     []uint32 // the pages to write, ascending (sortedPages)
	behind    int      // pgnos[:behind] are written (applyBehind)
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

// sortedPages lists the indexed pages the last commit keeps, ascending.
func (x *segmentIndex) sortedPages() []uint32 {
	pgnos := make([]uint32, 0, len(x.pages))
	for p := range x.pages {
		if x.dbSize == 0 || p <= x.dbSize {
			pgnos = append(pgnos, p)
		}
	}
	slices.Sort(pgnos)
	return pgnos
}

// applyBehind writes the last versions of the snapshot's own pages onto
// dbPath while the snapshot still decodes, each page once the decode has
// passed it (prog), and returns when the snapshot is done or failed. The
// rest (pages past the snapshot's end, or all of them when the snapshot's
// page size is not the WAL's) is left to apply, which checks the bounds
// first. A snapshot attempt that restarts starts the pages over.
func (x *segmentIndex) applyBehind(dbPath string, prog *snapshotProgress) error {
	x.pgnos = x.sortedPages()
	if len(x.groups) == 0 || len(x.pgnos) == 0 {
		return nil
	}
	var f *os.File // opened once the snapshot's attempt has created it
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	files := &groupFiles{groups: x.groups, open: map[int32]*list.Element{}}
	defer files.close()
	var cp *pageCopier
	epoch, i, bad := -1, 0, false
	prog.mu.Lock()
	defer prog.mu.Unlock()
	for {
		if prog.epoch != epoch { // a new attempt: its page size, and the pages again
			epoch, i, cp, bad = prog.epoch, 0, nil, false
		}
		if prog.done { // of this attempt, since the epoch was checked first
			if prog.err == nil && cp != nil {
				x.behind = i
			}
			return nil
		}
		switch {
		case bad || i == len(x.pgnos):
			prog.cond.Wait()
			continue
		case cp == nil:
			if prog.written < 100 { // the header is not decoded yet
				prog.cond.Wait()
				continue
			}
			if f == nil {
				var err error
				if f, err = os.OpenFile(dbPath, os.O_RDWR, 0); err != nil {
					return localError{err}
				}
			}
			pageSize, err := headerPageSize(f)
			if err != nil || slices.ContainsFunc(x.pageSizes, func(n int) bool { return n != pageSize }) {
				bad = true // apply reports it
				continue
			}
			cp = &pageCopier{f: f, files: files, pageSize: pageSize, buf: make([]byte, 0, 1<<20)}
		case prog.written < cp.end(x.pgnos[i]):
			prog.cond.Wait()
			continue
		}
		// Pages the decoder has passed, written while busy: restart
		// waits for them, so none lands in a later attempt's file.
		upTo := prog.written
		prog.busy = true
		prog.mu.Unlock()
		var err error
		for n := 0; i < len(x.pgnos) && cp.end(x.pgnos[i]) <= upTo && n < 256; i, n = i+1, n+1 {
			if err = cp.copy(x.pgnos[i], x.pages[x.pgnos[i]]); err != nil {
				break
			}
		}
		if err == nil {
			err = cp.flush()
		}
		prog.mu.Lock()
		prog.busy = false
		prog.cond.Broadcast()
		if err != nil {
			return err
		}
	}
}

// headerPageSize reads the page size from the database header at the
// start of f.
func headerPageSize(f *os.File) (int, error) {
	var h [18]byte
	if _, err := f.ReadAt(h[:], 0); err != nil {
		return 0, err
	}
	n := int(h[16])<<8 | int(h[17])
	if n == 1 {
		n = 65536
	}
	if n < 512 || n > 65536 || n&(n-1) != 0 {
		return 0, fmt.Errorf("invalid page size %d", n)
	}
	return n, nil
}

// snapshotProgress is how far the snapshot's decode has come: in the
// current attempt (epoch), bytes [0, written) of the file are decoded and
// the decoder writes only past them, until done. Pages below written are
// written while busy, and a new attempt waits until they are.
type snapshotProgress struct {
	mu      sync.Mutex
	cond    sync.Cond
	epoch   int
	written int64
	busy    bool
	done    bool
	err     error
}

func newSnapshotProgress() *snapshotProgress {
	p := &snapshotProgress{}
	p.cond.L = &p.mu
	return p
}

// restart begins an attempt, before its file is truncated.
func (p *snapshotProgress) restart() {
	p.mu.Lock()
	p.epoch++
	p.written = 0
	for p.busy {
		p.cond.Wait()
	}
	p.mu.Unlock()
	p.cond.Broadcast()
}

// end records the end of the snapshot's decode, with its error.
func (p *snapshotProgress) end(err error) {
	p.mu.Lock()
	p.done, p.err = true, err
	p.mu.Unlock()
	p.cond.Broadcast()
}

// progressWriter writes the snapshot's decoded bytes, in order, and
// advances prog past them.
type progressWriter struct {
	f    *os.File
	prog *snapshotProgress
}

func (w progressWriter) WriteAt(b []byte, off int64) (int, error) {
	n, err := w.f.WriteAt(b, off)
	w.prog.mu.Lock()
	w.prog.written = off + int64(n)
	w.prog.mu.Unlock()
	w.prog.cond.Broadcast()
	return n, err
}

// apply writes each indexed page's last version once onto the snapshot at
// dbPath (those applyBehind has not written) and sets the file size from
// the last commit. It returns the pages written.
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
	if x.pgnos == nil {
		x.pgnos = x.sortedPages()
	}
	n, err := writePages(dbPath, dbPageSize, x.pages, x.pgnos[x.behind:], x.dbSize, x.groups)
	return x.behind + n, err
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

// pageCopier copies pages from the groups' decoded files into f,
// coalescing contiguous pages into one write.
type pageCopier struct {
	f        *os.File
	files    *groupFiles
	pageSize int
	buf      []byte // pages from off on
	off      int64
}

// end is the byte offset just past page p.
func (c *pageCopier) end(p uint32) int64 { return int64(p) * int64(c.pageSize) }

func (c *pageCopier) copy(p uint32, loc pageLoc) error {
	dst := int64(p-1) * int64(c.pageSize)
	if len(c.buf) > 0 && (dst != c.off+int64(len(c.buf)) || len(c.buf)+c.pageSize > cap(c.buf)) {
		if err := c.flush(); err != nil {
			return err
		}
	}
	if len(c.buf) == 0 {
		c.off = dst
	}
	n := len(c.buf)
	c.buf = c.buf[:n+c.pageSize]
	if err := c.files.readAt(loc.group, c.buf[n:], loc.off); err != nil {
		c.buf = c.buf[:n]
		return localError{fmt.Errorf("read page %d: %w", p, err)}
	}
	return nil
}

func (c *pageCopier) flush() error {
	if len(c.buf) == 0 {
		return nil
	}
	_, err := c.f.WriteAt(c.buf, c.off)
	c.buf = c.buf[:0]
	if err != nil {
		return localError{fmt.Errorf("write pages: %w", err)}
	}
	return nil
}

// writePages writes the last version of each of pgnos (ascending) once
// and sets the file size.
func writePages(dbPath string, pageSize int, pages map[uint32]pageLoc, pgnos []uint32, dbSize uint32, groups []*walGroup) (int, error) {
	f, err := os.OpenFile(dbPath, os.O_RDWR, 0)
	if err != nil {
		return 0, localError{err}
	}
	defer f.Close()
	files := &groupFiles{groups: groups, open: map[int32]*list.Element{}}
	defer files.close()
	cp := &pageCopier{f: f, files: files, pageSize: pageSize, buf: make([]byte, 0, 1<<20)}
	for _, p := range pgnos {
		if err := cp.copy(p, pages[p]); err != nil {
			return 0, err
		}
	}
	if err := cp.flush(); err != nil {
		return 0, err
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
