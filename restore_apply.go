package litestream

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
)

// pageLoc is where a page's latest committed version lies: in the decoded
// segments of one index (group), at a byte offset of their concatenation.
type pageLoc struct {
	group int32
	off   int64
}

// walGroup is the decoded segments of one shadow WAL index, read as one
// stream.
type walGroup struct {
	index int
	segs  []SegmentInfo
	files []*os.File
	ends  []int64 // cumulative end offset of each file
}

// ReadAt reads across the group's files.
func (g *walGroup) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for i, f := range g.files {
		pos := off + int64(n)
		if n == len(p) {
			break
		}
		if pos >= g.ends[i] {
			continue
		}
		start := int64(0)
		if i > 0 {
			start = g.ends[i-1]
		}
		want := min(int64(len(p)-n), g.ends[i]-pos)
		m, err := f.ReadAt(p[n:n+int(want)], pos-start)
		n += m
		if err != nil && (err != io.EOF || int64(m) != want) {
			return n, err
		}
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

// segmentAt names the segment holding byte off of the group.
func (g *walGroup) segmentAt(off int64) string {
	for i, e := range g.ends {
		if off < e {
			return SegmentName(g.segs[i].Index, g.segs[i].Offset)
		}
	}
	s := g.segs[len(g.segs)-1]
	return SegmentName(s.Index, s.Offset)
}

// segmentIndex is where each page's last committed version lies in the
// plan's decoded segments.
type segmentIndex struct {
	groups    []*walGroup
	pageSizes []int // of each group's WAL
	pages     map[uint32]pageLoc
	dbSize    uint32 // pages after the last commit indexed
}

// close closes the decoded segment files; it may be called again.
func (x *segmentIndex) close() {
	for _, g := range x.groups {
		for _, f := range g.files {
			f.Close()
		}
		g.files = nil
	}
}

// indexSegments reads the plan's decoded segments, validating every frame
// (salts, cumulative checksum, offsets without gaps), and keeps for each
// page the location of its last version committed by a commit frame. It
// needs no snapshot, so it runs while the snapshot is still downloading.
func indexSegments(plan *RestorePlan, files []string, until *Pos, logger *slog.Logger) (*segmentIndex, error) {
	x := &segmentIndex{pages: make(map[uint32]pageLoc)}
	ok := false
	defer func() {
		if !ok {
			x.close()
		}
	}()
	for i, s := range plan.Segments {
		if i == 0 || s.Index != plan.Segments[i-1].Index {
			x.groups = append(x.groups, &walGroup{index: s.Index})
		}
		g := x.groups[len(x.groups)-1]
		f, err := os.Open(files[i])
		if err != nil {
			return nil, fmt.Errorf("open downloaded segment: %w", err)
		}
		g.segs, g.files = append(g.segs, s), append(g.files, f)
		fi, err := f.Stat()
		if err != nil {
			return nil, err
		}
		var prev int64
		if n := len(g.ends); n > 0 {
			prev = g.ends[n-1]
		}
		if s.Offset != prev {
			return nil, fmt.Errorf("generation %s: WAL segment %s starts at offset %s but index %s has %s bytes before it: a segment is missing or damaged",
				plan.Generation, SegmentName(s.Index, s.Offset), FormatOffset(s.Offset), FormatIndex(s.Index), FormatOffset(prev))
		}
		g.ends = append(g.ends, prev+fi.Size())
	}

	for gi, g := range x.groups {
		total := g.ends[len(g.ends)-1]
		if until != nil && g.index == until.Index {
			if total < until.Offset {
				return nil, fmt.Errorf("replica does not hold position %s yet", until)
			}
			total = until.Offset
		}
		buf := make([]byte, WALHeaderSize)
		if _, err := g.ReadAt(buf, 0); err != nil {
			return nil, fmt.Errorf("WAL segment %s: no WAL header: %w", g.segmentAt(0), err)
		}
		hdr, err := ParseWALHeader(buf)
		if err != nil {
			return nil, fmt.Errorf("WAL segment %s: %w", g.segmentAt(0), err)
		}
		x.pageSizes = append(x.pageSizes, int(hdr.PageSize))
		rd := NewWALReader(bufio.NewReaderSize(io.NewSectionReader(g, WALHeaderSize, total-WALHeaderSize), 1<<20), hdr, hdr.Checksum1, hdr.Checksum2)
		type pending struct {
			pgno uint32
			off  int64
		}
		var txn []pending
		off := int64(WALHeaderSize)
		for {
			fh, _, err := rd.Next()
			if errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return nil, fmt.Errorf("WAL segment %s: frame at offset %s: %w", g.segmentAt(off), FormatOffset(off), err)
			}
			txn = append(txn, pending{fh.Pgno, off + WALFrameHeaderSize})
			off += hdr.FrameSize()
			if fh.IsCommit() {
				for _, p := range txn {
					x.pages[p.pgno] = pageLoc{group: int32(gi), off: p.off}
				}
				txn, x.dbSize = txn[:0], fh.Commit
			}
		}
		if len(txn) > 0 {
			logger.Warn("ignoring frames after the last commit of an index", "index", FormatIndex(g.index), "frames", len(txn))
		}
	}
	ok = true
	return x, nil
}

// apply writes each indexed page's last version once onto the snapshot at
// dbPath and sets the file size from the last commit. It returns the pages
// written.
func (x *segmentIndex) apply(dbPath string, plan *RestorePlan) (int, error) {
	if len(x.groups) == 0 {
		return 0, nil
	}
	dbPageSize, err := readDBPageSize(dbPath)
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: %w", SnapshotName(plan.Snapshot.Index), err)
	}
	for gi, n := range x.pageSizes {
		if n != dbPageSize {
			return 0, fmt.Errorf("WAL segment %s: page size %d differs from the snapshot's %d", x.groups[gi].segmentAt(0), n, dbPageSize)
		}
	}
	return writePages(dbPath, dbPageSize, x.pages, x.dbSize, x.groups)
}

// writePages writes each page's last version once, ascending, and sets the
// file size.
func writePages(dbPath string, pageSize int, pages map[uint32]pageLoc, dbSize uint32, groups []*walGroup) (int, error) {
	f, err := os.OpenFile(dbPath, os.O_RDWR, 0)
	if err != nil {
		return 0, err
	}
	defer f.Close()
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
		if _, err := groups[loc.group].ReadAt(buf, loc.off); err != nil {
			return 0, fmt.Errorf("read page %d: %w", p, err)
		}
		dst := int64(p-1) * int64(pageSize)
		if dst != next { // not contiguous: flush and seek
			if err := w.Flush(); err != nil {
				return 0, err
			}
			w.Reset(&offsetWriter{f: f, off: dst})
		}
		if _, err := w.Write(buf); err != nil {
			return 0, fmt.Errorf("write page %d: %w", p, err)
		}
		next = dst + int64(pageSize)
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("write pages: %w", err)
	}
	if dbSize > 0 {
		if err := f.Truncate(int64(dbSize) * int64(pageSize)); err != nil {
			return 0, fmt.Errorf("set database size: %w", err)
		}
	}
	// Restore fsyncs the file, alongside SQLite's check.
	return len(pgnos), f.Close()
}

// readDBPageSize reads the page size from a database file's header.
func readDBPageSize(path string) (int, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	hdr := make([]byte, 100)
	if _, err := io.ReadFull(f, hdr); err != nil {
		return 0, errors.New("not a SQLite database (shorter than its header)")
	}
	if string(hdr[:16]) != "SQLite format 3\x00" {
		return 0, errors.New("not a SQLite database (bad header)")
	}
	n := int(binary.BigEndian.Uint16(hdr[16:]))
	if n == 1 {
		n = 65536
	}
	return n, nil
}
