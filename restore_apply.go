package litestream

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
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

// What applying a plan keeps (restore_bounds_test.go, restore_hostile_test.go,
// restore_overlap_test.go, TestRestoreScale):
//  1. Nothing decoded goes to disk but the output. Each segment is read
//     twice, each time open only while one of a fixed number of workers
//     decodes it: first to validate its frames and index their pages, then,
//     if it holds a page's last committed version, to write those pages.
//     Descriptors are bounded whatever the segment count.
//  2. A segment is validated on its own, so segments decode in parallel:
//     SQLite's checksum step only adds, so it runs backwards, and a
//     segment's first stored checksum gives the running checksum before
//     it. The chain holds when each segment's start equals its
//     predecessor's end, checked in plan order (segmentIndex.merge). The
//     second read validates every frame again from that start, so a page
//     is written only from a frame that passed the same check.
//  3. The output is bounded by what the replica holds: no page number above
//     SQLite's limit, and no final commit size above the snapshot's pages
//     plus the frames applied (plus the lock-byte page, never written).
//  4. Temporary disk is bounded by the plan: a segment decodes to at most
//     the length its successor's offset implies, or its declared content
//     size (boundedReader); from a replica that is not a local directory
//     its stored bytes are kept for the second read (segmentSpool).
//  5. A segment's page is written onto the output only once the
//     snapshot's decode, in its current attempt, has passed it; the rest
//     wait for the end of the snapshot (apply). A write ahead of the
//     decode would land in a hole of the file, and filling a file around
//     scattered holes costs the file system more than the copies saved
//     (docs/performance.md, "Restore speed"). A snapshot attempt that
//     starts over truncates the file, so apply then writes every winning
//     page again.

// maxPageNumber is SQLite's largest page number (SQLITE_MAX_PAGE_COUNT,
// 4294967294 since 3.45).
const maxPageNumber = 0xFFFFFFFE

// walGroup is one shadow WAL index of the plan: its segments, in offset
// order, and its WAL header once its first segment has been read.
type walGroup struct {
	index  int
	segs   []SegmentInfo // in offset order
	first  int           // position of segs[0] in the plan's segments
	headed chan struct{} // closed once hdr is set
	once   sync.Once
	hdr    walformat.Header
	size   int64 // decoded bytes: the end of the last segment, once merged
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

// planGroups splits the plan's segments by index.
func planGroups(plan *RestorePlan) []*walGroup {
	var gs []*walGroup
	for i, s := range plan.Segments {
		if i == 0 || s.Index != plan.Segments[i-1].Index {
			gs = append(gs, &walGroup{index: s.Index, first: i, headed: make(chan struct{})})
		}
		g := gs[len(gs)-1]
		g.segs = plan.Segments[g.first : i+1] // no copy: a day's history is 86,400 segments
	}
	return gs
}

// pageLoc is where a page's latest committed version lies: a frame of a
// segment of the plan.
type pageLoc struct {
	seg   int32 // in plan.Segments
	frame int32 // in the segment's frames
}

// segFrame is one frame a segment's first read found.
type segFrame struct{ pgno, commit uint32 }

// segRead is what the first read of one segment found: its frames, the
// running checksum before and after them, and its decoded length.
type segRead struct {
	frames     []segFrame
	empty      bool // no frame: start and end say nothing
	start, end [2]uint32
	length     int64
}

// segmentIndex is where each page's last committed version lies in the
// plan's segments, built by reading them (read), then the pages written
// from there (writeAhead, apply).
type segmentIndex struct {
	plan    *RestorePlan
	groups  []*walGroup
	groupOf []int32 // of each plan segment
	logger  *slog.Logger
	until   *Pos // a point-in-time restore's position, or nil

	starts  [][2]uint32 // of each plan segment: the running checksum before its first frame
	lengths []int64     // of each plan segment: decoded bytes
	spool   *segmentSpool

	mu      sync.Mutex
	reads   []*segRead // read and not yet merged
	next    int        // the first segment not merged
	chain   [2]uint32  // running checksum at the end of segment next-1
	pending []pendingFrame
	pages   map[uint32]pageLoc
	dbSize  uint32 // pages after the last commit merged
	frames  int64  // committed frames merged

	ahead aheadResult
}

type pendingFrame struct {
	pgno uint32
	loc  pageLoc
}

// aheadResult is what writeAhead did: the pages it left for apply, and
// the snapshot attempt it wrote under.
type aheadResult struct {
	ran      bool
	epoch    int
	deferred []winner
}

func newSegmentIndex(plan *RestorePlan, groups []*walGroup, until *Pos, logger *slog.Logger) *segmentIndex {
	n := len(plan.Segments)
	x := &segmentIndex{plan: plan, groups: groups, until: until, logger: logger, groupOf: make([]int32, n),
		starts: make([][2]uint32, n), lengths: make([]int64, n), reads: make([]*segRead, n), pages: make(map[uint32]pageLoc)}
	for gi, g := range groups {
		for j := range g.segs {
			x.groupOf[g.first+j] = int32(gi)
		}
	}
	return x
}

// pageSizes returns the page size of each group's WAL.
func (x *segmentIndex) pageSizes() []int {
	ps := make([]int, len(x.groups))
	for i, g := range x.groups {
		ps[i] = int(g.hdr.PageSize)
	}
	return ps
}

// read reads every segment once, in parallel, validating every frame
// (salts, checksums, page numbers, lengths) and indexing the last
// committed version of each page. It needs no snapshot, so it runs while
// the snapshot still decodes.
func (x *segmentIndex) read(ctx context.Context, d *downloader) error {
	return x.forSegments(ctx, d.parallel, allSegments(len(x.plan.Segments)), func(ctx context.Context, w int, i int) error {
		r, err := x.readSegment(ctx, d, w, i)
		if err != nil {
			return err
		}
		d.report(x.plan.Segments[i].Size)
		return x.merge(i, r)
	})
}

func allSegments(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// forSegments runs fn on each of segs (plan positions), in order of
// dispatch, on up to parallel workers; the first error cancels the rest.
func (x *segmentIndex) forSegments(ctx context.Context, parallel int, segs []int, fn func(ctx context.Context, worker, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feed := make(chan int)
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
	)
	for w := 0; w < min(parallel, max(len(segs), 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range feed {
				if err := fn(ctx, w, i); err != nil {
					once.Do(func() { first = err })
					cancel()
				}
			}
		}()
	}
send:
	for _, i := range segs {
		select {
		case feed <- i:
		case <-ctx.Done():
			break send
		}
	}
	close(feed)
	wg.Wait()
	if first != nil {
		return first
	}
	return ctx.Err()
}

// readSegment reads segment i of the plan for the first time.
func (x *segmentIndex) readSegment(ctx context.Context, d *downloader, worker, i int) (*segRead, error) {
	s := x.plan.Segments[i]
	g := x.groups[x.groupOf[i]]
	j := i - g.first
	bound := int64(-1)
	if j+1 < len(g.segs) {
		bound = g.segs[j+1].Offset - s.Offset
	}
	if j > 0 { // its frames are checked against the index's WAL header
		select {
		case <-g.headed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	name := x.plan.Generation + "/wal/" + x.plan.segmentName(s)
	var res *segRead
	err := withRetry(ctx, name, func() error {
		rc, err := x.plan.openSegment(ctx, s)
		if err != nil {
			return err
		}
		defer rc.Close()
		var src io.Reader = rc
		var spooled *spoolWriter
		if x.spool != nil {
			if spooled, err = x.spool.begin(worker, rc); err != nil {
				return err
			}
			src = spooled
		}
		br, err := d.newBoundedReader(src, name, bound)
		if err != nil {
			return err
		}
		if res, err = scanSegment(br, g, j, s, bound, d.until(g.index)); err != nil {
			return err
		}
		if spooled != nil {
			return x.spool.end(spooled, i)
		}
		return nil
	})
	return res, err
}

// scanSegment reads and validates the frames of segment j of g from br,
// up to until (-1: all of them).
func scanSegment(br *boundedReader, g *walGroup, j int, s SegmentInfo, bound, until int64) (*segRead, error) {
	name := SegmentName(s.Index, s.Offset)
	res := &segRead{}
	off := s.Offset
	var hdr walformat.Header
	if j == 0 {
		buf := make([]byte, walformat.HeaderSize)
		n, err := io.ReadFull(br, buf)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, errNoRetry{damaged(fmt.Errorf("%d bytes, shorter than a WAL header", n))}
		} else if err != nil {
			return nil, err
		}
		if hdr, err = walformat.ParseHeader(buf); err != nil {
			return nil, errNoRetry{damaged(err)}
		}
		if s.Offset != 0 {
			return nil, errNoRetry{damaged(fmt.Errorf("the first segment of index %s starts at offset %s, not at its WAL header", FormatIndex(s.Index), FormatOffset(s.Offset)))}
		}
		g.once.Do(func() { g.hdr = hdr; close(g.headed) })
		if g.hdr != hdr {
			return nil, errNoRetry{damaged(errors.New("its WAL header changed between two reads"))}
		}
		res.start = [2]uint32{hdr.Checksum1, hdr.Checksum2}
		off = walformat.HeaderSize
	} else {
		hdr = g.hdr
		if (s.Offset-walformat.HeaderSize)%hdr.FrameSize() != 0 {
			return nil, errNoRetry{damaged(fmt.Errorf("offset %s is not at a frame of its index's WAL (frames of %d bytes)", FormatOffset(s.Offset), hdr.FrameSize()))}
		}
	}
	fsz := hdr.FrameSize()
	short := func() error { // a segment that ends before its successor starts
		if bound >= 0 && br.eof && br.n < bound {
			next := g.segs[j+1]
			return errNoRetry{damaged(fmt.Errorf("decodes to %d bytes, but the next segment, %s, starts %d bytes after it: a segment is missing or damaged",
				br.n, SegmentName(next.Index, next.Offset), bound))}
		}
		return nil
	}
	// The decoded stream is read in 64 KiB reads, as a whole decode would,
	// so that the LZ4 frame's own checks (its end, its content size) come
	// when they would then.
	in := segmentReaders.Get().(*bufio.Reader)
	in.Reset(br)
	defer func() { in.Reset(nil); segmentReaders.Put(in) }()
	frameErr := func(err error, fh walformat.FrameHeader) error {
		if !errors.Is(err, walformat.ErrInvalidFrame) {
			return err
		}
		// What a whole decode would have found first is reported first:
		// the segment's length against its successor (bounded work), or,
		// for the last of an index, a damaged stream or a frame of another
		// WAL, where it stops.
		saltBad := fh != (walformat.FrameHeader{}) && (fh.Salt1 != hdr.Salt1 || fh.Salt2 != hdr.Salt2)
		if bound >= 0 {
			if _, derr := io.Copy(io.Discard, in); derr != nil {
				return derr
			}
		} else if !saltBad {
			if derr := drainSalts(in, hdr, off+fsz); derr != nil {
				return derr
			}
		}
		if serr := short(); serr != nil {
			return serr
		}
		return errNoRetry{damaged(fmt.Errorf("WAL segment %s: frame at offset %s: %w; stopped there", name, FormatOffset(off), err))}
	}
	var src io.Reader = in
	if j > 0 && (until < 0 || off < until) {
		first := make([]byte, fsz)
		if _, err := io.ReadFull(in, first); errors.Is(err, io.EOF) {
			res.empty = true
			return res, short()
		} else if errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, frameErr(fmt.Errorf("frame 1 cut short: %w", walformat.ErrInvalidFrame), walformat.FrameHeader{})
		} else if err != nil {
			return nil, err
		}
		s1, s2 := checksumBefore(hdr.ByteOrder(), first)
		res.start = [2]uint32{s1, s2}
		src = io.MultiReader(bytes.NewReader(first), in)
	}
	rd := walformat.NewReader(src, hdr, res.start[0], res.start[1])
	for until < 0 || off < until {
		if until >= 0 && off+fsz > until {
			return nil, frameErr(fmt.Errorf("frame cut short by position %s: %w", FormatOffset(until), walformat.ErrInvalidFrame), walformat.FrameHeader{})
		}
		fh, _, err := rd.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, frameErr(err, fh)
		}
		if fh.Pgno > maxPageNumber {
			return nil, errNoRetry{damaged(fmt.Errorf("WAL segment %s: frame at offset %s: page number %d is above SQLite's limit (%d)",
				name, FormatOffset(off), fh.Pgno, uint32(maxPageNumber)))}
		}
		res.frames = append(res.frames, segFrame{fh.Pgno, fh.Commit})
		off += fsz
	}
	if until < 0 || off < until {
		if err := short(); err != nil {
			return nil, err
		}
	}
	res.empty = j > 0 && len(res.frames) == 0
	s1, s2 := rd.Checksum()
	res.end = [2]uint32{s1, s2}
	res.length = off - s.Offset
	return res, nil
}

// segmentReaders recycles scanSegment's buffers, as decodeBuffers does
// decodeBounded's.
var segmentReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 64<<10) }}

// drainSalts reads the rest of a segment's frames, from offset off, and
// stops at the first whose salts are not its index's WAL header's.
func drainSalts(r io.Reader, hdr walformat.Header, off int64) error {
	frame := make([]byte, hdr.FrameSize())
	for ; ; off += hdr.FrameSize() {
		if _, err := io.ReadFull(r, frame); errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil
		} else if err != nil {
			return err
		}
		if binary.BigEndian.Uint32(frame[8:]) != hdr.Salt1 || binary.BigEndian.Uint32(frame[12:]) != hdr.Salt2 {
			return errNoRetry{fmt.Errorf("frame at offset %s: salt differs from its index's WAL header, no frame of this index: %w; stopped there",
				FormatOffset(off), ErrReplicaDamaged)}
		}
	}
}

// checksumBefore runs SQLite's WAL checksum backwards over one frame:
// from the checksum stored in its header (the running checksum after it)
// to the running checksum before it. Each step, s1 += x + s2 then
// s2 += y + s1, is undone by s2 -= y + s1 then s1 -= x + s2.
func checksumBefore(bo binary.ByteOrder, frame []byte) (uint32, uint32) {
	be := binary.BigEndian
	s1, s2 := be.Uint32(frame[16:]), be.Uint32(frame[20:])
	back := func(b []byte) {
		for i := len(b) - 8; i >= 0; i -= 8 {
			s2 -= bo.Uint32(b[i+4:]) + s1
			s1 -= bo.Uint32(b[i:]) + s2
		}
	}
	back(frame[walformat.FrameHeaderSize:])
	back(frame[:8])
	return s1, s2
}

// merge takes the first read of segment i and merges, in plan order,
// every read segment from the first not merged: it checks the checksum
// chain between segments and keeps, for each page, its last version
// committed by a commit frame.
func (x *segmentIndex) merge(i int, r *segRead) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	x.reads[i] = r
	for x.next < len(x.reads) && x.reads[x.next] != nil {
		i := x.next
		r := x.reads[i]
		x.reads[i] = nil
		x.next++
		g := x.groups[x.groupOf[i]]
		j := i - g.first
		s := x.plan.Segments[i]
		if j == 0 {
			x.chain = r.start
			x.pending = x.pending[:0]
		}
		if !r.empty {
			if r.start != x.chain {
				return damaged(fmt.Errorf("WAL segment %s: frame at offset %s: checksum mismatch with the segment before it: %w",
					SegmentName(s.Index, s.Offset), FormatOffset(max(s.Offset, walformat.HeaderSize)), walformat.ErrInvalidFrame))
			}
			x.chain = r.end
		}
		x.starts[i], x.lengths[i] = r.start, r.length
		for k, f := range r.frames {
			x.pending = append(x.pending, pendingFrame{f.pgno, pageLoc{int32(i), int32(k)}})
			if f.commit != 0 {
				for _, p := range x.pending {
					x.pages[p.pgno] = p.loc
				}
				x.frames += int64(len(x.pending))
				x.pending, x.dbSize = x.pending[:0], f.commit
			}
		}
		if j == len(g.segs)-1 {
			g.size = s.Offset + r.length
			if len(x.pending) > 0 {
				x.logger.Warn("ignoring frames after the last commit of an index", "index", FormatIndex(g.index), "frames", len(x.pending))
			}
			x.pending = x.pending[:0]
			if u := x.until; u != nil && u.Index == g.index && g.size < u.Offset {
				return fmt.Errorf("replica does not hold position %s yet", u)
			}
		}
	}
	return nil
}

// winner is a page's last committed version: frame of plan segment seg.
type winner struct {
	seg, frame int32
	pgno       uint32
}

// winners lists the indexed pages the last commit keeps, by segment and
// frame.
func (x *segmentIndex) winners() []winner {
	ws := make([]winner, 0, len(x.pages))
	for p, loc := range x.pages {
		if x.dbSize == 0 || p <= x.dbSize {
			ws = append(ws, winner{loc.seg, loc.frame, p})
		}
	}
	slices.SortFunc(ws, func(a, b winner) int {
		if a.seg != b.seg {
			return int(a.seg - b.seg)
		}
		return int(a.frame - b.frame)
	})
	return ws
}

// writeAhead writes the winning pages onto dbPath while the snapshot
// still decodes, each if the decode has passed it when its segment is read
// again; the others are left to apply, which checks the bounds first.
// When the snapshot's page size is not the WAL's it writes nothing: apply
// reports it.
func (x *segmentIndex) writeAhead(ctx context.Context, d *downloader, dbPath string) error {
	ws := x.winners()
	if len(ws) == 0 {
		return nil
	}
	pageSize, ok := d.prog.header(dbPath)
	if !ok || slices.ContainsFunc(x.pageSizes(), func(n int) bool { return n != pageSize }) {
		return nil
	}
	epoch := d.prog.attempt()
	x.ahead = aheadResult{ran: true, epoch: epoch}
	behind := func(p uint32) bool { return d.prog.passed(epoch, int64(p)*int64(pageSize)) }
	err := x.writePages(ctx, d, dbPath, pageSize, ws, behind)
	slices.SortFunc(x.ahead.deferred, func(a, b winner) int {
		if a.seg != b.seg {
			return int(a.seg - b.seg)
		}
		return int(a.frame - b.frame)
	})
	return err
}

// writePages reads again each segment holding some of ws (sorted by
// segment and frame), validating its frames as the first read did, and
// writes those pages onto dbPath; with behind set, only those it reports,
// the others going to x.ahead.deferred.
func (x *segmentIndex) writePages(ctx context.Context, d *downloader, dbPath string, pageSize int, ws []winner, behind func(uint32) bool) error {
	if len(ws) == 0 {
		return nil
	}
	var segs []int
	first := map[int32]int{} // segment -> its first winner in ws
	for k, w := range ws {
		if k == 0 || ws[k-1].seg != w.seg {
			segs = append(segs, int(w.seg))
			first[w.seg] = k
		}
	}
	files := make([]*os.File, d.parallel)
	defer func() {
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
	}()
	return x.forSegments(ctx, d.parallel, segs, func(ctx context.Context, worker, i int) error {
		f := files[worker]
		if f == nil {
			var err error
			if f, err = os.OpenFile(dbPath, os.O_RDWR, 0); err != nil {
				return localError{err}
			}
			files[worker] = f
		}
		k := first[int32(i)]
		end := k
		for end < len(ws) && ws[end].seg == int32(i) {
			end++
		}
		return x.writeSegment(ctx, d, f, pageSize, i, ws[k:end], behind)
	})
}

// writeSegment writes the pages ws of segment i onto f.
func (x *segmentIndex) writeSegment(ctx context.Context, d *downloader, f *os.File, pageSize, i int, ws []winner, behind func(uint32) bool) error {
	s := x.plan.Segments[i]
	g := x.groups[x.groupOf[i]]
	name := x.plan.Generation + "/wal/" + x.plan.segmentName(s)
	return withRetry(ctx, name, func() error {
		var rc io.ReadCloser
		var err error
		if x.spool != nil {
			rc, err = x.spool.open(i)
		} else {
			rc, err = x.plan.openSegment(ctx, s)
		}
		if err != nil {
			return err
		}
		defer rc.Close()
		br, err := d.newBoundedReader(rc, name, x.lengths[i])
		if err != nil {
			return err
		}
		if i == g.first {
			buf := make([]byte, walformat.HeaderSize)
			if _, err := io.ReadFull(br, buf); err != nil {
				return changedSegment(err)
			}
			if h, err := walformat.ParseHeader(buf); err != nil || h != g.hdr {
				return changedSegment(errors.New("its WAL header differs"))
			}
		}
		rd := walformat.NewReader(br, g.hdr, x.starts[i][0], x.starts[i][1])
		for k, w := 0, 0; w < len(ws); k++ {
			fh, frame, err := rd.Next()
			if err != nil {
				return changedSegment(err)
			}
			if int32(k) != ws[w].frame {
				continue
			}
			if fh.Pgno != ws[w].pgno {
				return changedSegment(fmt.Errorf("frame %d holds page %d, not %d", k+1, fh.Pgno, ws[w].pgno))
			}
			if behind != nil && !behind(fh.Pgno) {
				x.mu.Lock()
				x.ahead.deferred = append(x.ahead.deferred, ws[w])
				x.mu.Unlock()
				w++
				continue
			}
			if _, err := f.WriteAt(frame[walformat.FrameHeaderSize:], int64(fh.Pgno-1)*int64(pageSize)); err != nil {
				return localError{fmt.Errorf("write page %d: %w", fh.Pgno, err)}
			}
			w++
		}
		return nil
	})
}

// changedSegment is a segment whose second read differs from its first.
func changedSegment(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = errors.New("shorter than before")
	}
	var nr errNoRetry
	if errors.As(err, &nr) {
		return err
	}
	return errNoRetry{damaged(fmt.Errorf("changed while restoring (%w)", err))}
}

// apply writes the winning pages writeAhead left (or all of them, when
// it did not run or the snapshot started over under it) onto the finished
// snapshot at dbPath, after checking the bounds, and sets the file size
// from the last commit. It returns the pages written.
func (x *segmentIndex) apply(ctx context.Context, d *downloader, dbPath string) (int, error) {
	plan := x.plan
	snap := SnapshotName(plan.Snapshot.Index)
	dbPageSize, err := snapshotPageSize(dbPath)
	if err != nil {
		return 0, fmt.Errorf("snapshot %s: %w", snap, err)
	}
	if len(x.groups) == 0 {
		return 0, nil
	}
	for gi, n := range x.pageSizes() {
		if n != dbPageSize {
			return 0, fmt.Errorf("WAL segment %s: page size %d differs from the snapshot's %d", x.groups[gi].segmentAt(0), n, dbPageSize)
		}
	}
	// Every page of the result is in the snapshot or in a frame; SQLite
	// never writes the lock-byte page, the one exception. (Only the last
	// commit counts: an earlier one may be larger than the snapshot, which
	// a checkpoint after a VACUUM truncated.)
	snapPages := (d.prog.size + int64(dbPageSize) - 1) / int64(dbPageSize)
	if limit := snapPages + x.frames + 1; int64(x.dbSize) > limit {
		return 0, fmt.Errorf("generation %s: the last commit sets the database size to %d pages, more than the snapshot's %d pages and the %d frames applied can make: %w",
			plan.Generation, x.dbSize, snapPages, x.frames, ErrReplicaDamaged)
	}
	ws := x.winners()
	count := len(ws)
	if x.ahead.ran && x.ahead.epoch == d.prog.epoch {
		ws = x.ahead.deferred
	}
	if err := x.writePages(ctx, d, dbPath, dbPageSize, ws, nil); err != nil {
		return 0, err
	}
	if x.dbSize > 0 {
		if err := os.Truncate(dbPath, int64(x.dbSize)*int64(dbPageSize)); err != nil {
			return 0, localError{fmt.Errorf("set database size: %w", err)}
		}
	}
	return count, nil
}

// snapshotProgress is how far the snapshot's decode has come: in the
// current attempt (epoch), bytes [0, written) of the file are decoded and
// the decoder writes only past them, until done. writing is set while an
// attempt starts (truncates the file).
type snapshotProgress struct {
	mu      sync.Mutex
	cond    sync.Cond
	epoch   int
	written int64
	writing bool
	size    int64 // the finished snapshot's decoded length
	done    bool
	err     error
}

func newSnapshotProgress() *snapshotProgress {
	p := &snapshotProgress{}
	p.cond.L = &p.mu
	return p
}

// restart begins an attempt; the caller truncates the file, then calls
// idle.
func (p *snapshotProgress) restart() {
	p.mu.Lock()
	p.epoch++
	p.written = 0
	p.writing = true
	p.mu.Unlock()
}

// idle says the attempt's file is ready.
func (p *snapshotProgress) idle() {
	p.mu.Lock()
	p.writing = false
	p.mu.Unlock()
	p.cond.Broadcast()
}

// end records the end of the snapshot's decode: its length, or its error.
func (p *snapshotProgress) end(size int64, err error) {
	p.mu.Lock()
	p.done, p.err, p.size, p.writing = true, err, size, false
	p.mu.Unlock()
	p.cond.Broadcast()
}

// attempt returns the current attempt.
func (p *snapshotProgress) attempt() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epoch
}

// passed reports whether attempt epoch is current and has decoded the
// file's bytes up to end. A write below end made while it holds lands in
// that attempt's file: a new attempt waits for none, but apply writes
// every page again after one (aheadResult.epoch).
func (p *snapshotProgress) passed(epoch int, end int64) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.epoch == epoch && !p.writing && p.written >= end
}

// header waits for the snapshot's database header and returns its page
// size; ok is false when the snapshot failed or its header is invalid.
func (p *snapshotProgress) header(dbPath string) (pageSize int, ok bool) {
	p.mu.Lock()
	for !p.done && p.written < 100 {
		p.cond.Wait()
	}
	failed := p.done && p.err != nil
	p.mu.Unlock()
	if failed {
		return 0, false
	}
	f, err := os.Open(dbPath)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	n, err := headerPageSize(f)
	return n, err == nil
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

// progressWriter writes the snapshot's decoded bytes, in order, and
// advances prog past them. It starts the writeback of each writebackChunk
// behind it.
type progressWriter struct {
	f       *os.File
	prog    *snapshotProgress
	flushed *int64 // writeback started below this offset
}

// writebackChunk is how much of the snapshot is written before its
// writeback is started: the fsync at the end then finds most of it clean.
const writebackChunk = 32 << 20

func (w progressWriter) WriteAt(b []byte, off int64) (int, error) {
	n, err := w.f.WriteAt(b, off)
	w.prog.mu.Lock()
	w.prog.written = off + int64(n)
	w.prog.mu.Unlock()
	w.prog.cond.Broadcast()
	if err != nil {
		return n, err
	}
	if end := off + int64(n); end-*w.flushed >= writebackChunk {
		startWriteback(w.f, *w.flushed, end-*w.flushed)
		*w.flushed = end
	}
	return n, nil
}

// segmentSpool keeps the stored bytes of each segment of a replica that
// is not a local directory, for the second read: one file per worker,
// appended to.
type segmentSpool struct {
	dir   string
	mu    sync.Mutex
	files map[int]*os.File
	refs  []spoolRef // of each plan segment
}

type spoolRef struct {
	file      int
	off, size int64
}

func newSegmentSpool(dir string, segments int) *segmentSpool {
	return &segmentSpool{dir: dir, files: map[int]*os.File{}, refs: make([]spoolRef, segments)}
}

// spoolWriter copies what is read through it to the end of its worker's
// spool file.
type spoolWriter struct {
	r      io.Reader
	f      *os.File
	worker int
	start  int64
	n      int64
	err    error
}

func (w *spoolWriter) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	if n > 0 && w.err == nil {
		if _, werr := w.f.WriteAt(p[:n], w.start+w.n); werr != nil {
			w.err = localError{fmt.Errorf("write spool: %w", werr)}
			return 0, w.err
		}
		w.n += int64(n)
	}
	return n, err
}

func (s *segmentSpool) begin(worker int, r io.Reader) (*spoolWriter, error) {
	s.mu.Lock()
	f := s.files[worker]
	s.mu.Unlock()
	if f == nil {
		var err error
		if f, err = os.OpenFile(filepath.Join(s.dir, fmt.Sprintf("spool-%d", worker)), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
			return nil, localError{err}
		}
		s.mu.Lock()
		s.files[worker] = f
		s.mu.Unlock()
	}
	fi, err := f.Stat()
	if err != nil {
		return nil, localError{err}
	}
	return &spoolWriter{r: r, f: f, worker: worker, start: fi.Size()}, nil
}

// end reads the rest of the stored bytes into the spool and records them
// as segment i's.
func (s *segmentSpool) end(w *spoolWriter, i int) error {
	if _, err := io.Copy(io.Discard, w); err != nil {
		return err
	}
	if w.err != nil {
		return w.err
	}
	s.refs[i] = spoolRef{file: w.worker, off: w.start, size: w.n}
	return nil
}

// open returns a reader of segment i's stored bytes.
func (s *segmentSpool) open(i int) (io.ReadCloser, error) {
	r := s.refs[i]
	s.mu.Lock()
	f := s.files[r.file]
	s.mu.Unlock()
	if f == nil {
		return nil, localError{fmt.Errorf("segment %d is not spooled", i)}
	}
	return io.NopCloser(io.NewSectionReader(f, r.off, r.size)), nil
}

func (s *segmentSpool) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, f := range s.files {
		f.Close()
	}
	clear(s.files)
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
