package litestream

import (
	"context"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/litestream-go/litestream/internal/walformat"
	"github.com/pierrec/lz4/v4"
)

// Restore executes a plan: it downloads the snapshot and the segments (in
// parallel, with retries) into a temporary directory next to outputPath,
// applies each page's last committed version once, checks the result with
// SQLite (opt.IntegrityCheck), and renames it into place with mode 0600.
// outputPath holds either nothing or a complete, consistent database, and
// no temporary file is left behind. It never replaces a file at
// outputPath, even one that appears while it runs (the error wraps
// ErrOutputExists), and refuses to start, or to finish, beside another
// database's -wal, -shm or -journal file (CheckRestoreOutput).
//
// When a file the plan needs is missing or damaged, the error names the
// file and the replica, and Restore runs the plan's Fallbacks in turn
// (other replicas of the generation: those that reach as far first, then
// the nearest earlier), saying so through opt.OnFallback and the log. A
// failure of the local disk, a cancellation, or the output's state ends
// it at once.
func Restore(ctx context.Context, plan *RestorePlan, outputPath string, opt RestoreOptions) error {
	logger := opt.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if _, err := parseIntegrityCheck(string(opt.IntegrityCheck)); err != nil {
		return err
	}
	if err := CheckRestoreOutput(outputPath); err != nil {
		return err
	}
	dir := filepath.Dir(outputPath)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	removeRestoreLeftovers(outputPath, logger)
	tmpDir, err := os.MkdirTemp(dir, restoreTempPattern(outputPath))
	if err != nil {
		return fmt.Errorf("create temporary directory next to %s: %w", outputPath, err)
	}
	lock, err := lockRestoreDir(tmpDir, tryLockFile)
	if err != nil {
		os.RemoveAll(tmpDir)
		return err
	}
	defer releaseRestoreDir(tmpDir, lock)

	attempts := append([]*RestorePlan{plan}, plan.Fallbacks...)
	var failed []string
	for i, p := range attempts {
		if i > 0 {
			prev := attempts[i-1]
			how := "reaches the same point"
			if p.reach.compare(prev.reach) < 0 {
				how = fmt.Sprintf("reaches only %s, earlier than %s", p.reach, prev.reach)
			}
			if opt.OnFallback != nil {
				opt.OnFallback(prev, p, how, err)
			} else {
				logger.Warn("restoring from another replica", "failed", prev.Replica.Name, "error", err, "replica", p.Replica.Name, "reach", how)
			}
		}
		attemptDir := filepath.Join(tmpDir, fmt.Sprintf("attempt-%d", i))
		if err = os.Mkdir(attemptDir, 0o700); err != nil {
			return fmt.Errorf("create temporary directory: %w", err)
		}
		var dbPath string
		dbPath, err = restoreAttempt(ctx, p, attemptDir, opt, logger)
		if err == nil {
			return finishRestore(dbPath, outputPath, dir)
		}
		os.RemoveAll(attemptDir) // its disk is free for the next
		err = fmt.Errorf("replica %s: %w", p.Replica.Name, err)
		if !replicaFault(ctx, err) {
			return err
		}
		failed = append(failed, err.Error())
	}
	if len(failed) > 1 {
		return fmt.Errorf("no replica could restore: %s", strings.Join(failed, "; then "))
	}
	return err
}

// finishRestore moves the finished, checked file at dbPath onto
// outputPath, in dir.
func finishRestore(dbPath, outputPath, dir string) error {
	if beforeMoveIntoPlace != nil {
		beforeMoveIntoPlace(outputPath)
	}
	// Checked again: they may have come during the restore. What comes
	// between this check and the rename is not seen.
	if err := checkOutputSidecars(outputPath); err != nil {
		return err
	}
	if err := moveIntoPlace(dbPath, outputPath, renameNoReplace); err != nil {
		return err
	}
	return SyncDir(dir)
}

// localError marks a failure of the local disk (a temporary file that
// cannot be created or written): another replica would fail the same way.
type localError struct{ err error }

func (e localError) Error() string { return e.err.Error() }
func (e localError) Unwrap() error { return e.err }

// replicaFault reports whether err, from one attempt, is the replica's:
// a file missing, damaged or unreadable, which another replica may not
// share.
func replicaFault(ctx context.Context, err error) bool {
	var le localError
	return ctx.Err() == nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &le)
}

// restoreAttempt downloads, applies and checks plan in dir and returns the
// finished file's path.
func restoreAttempt(ctx context.Context, plan *RestorePlan, dir string, opt RestoreOptions, logger *slog.Logger) (string, error) {
	start := time.Now()
	logger.Info("restoring", "plan", plan.String(), "dir", dir)
	dl := newDownloader(plan, opt)
	dbPath := filepath.Join(dir, "db")
	groups := planGroups(plan, dir)
	var idx *segmentIndex
	err := dl.all(ctx, dbPath, groups, func() (err error) {
		if idx, err = indexSegments(plan, groups, opt.until, logger); err != nil {
			return err
		}
		return idx.applyBehind(dbPath, dl.prog)
	})
	if err != nil {
		return "", err
	}
	downloaded := time.Since(start)
	pages, err := idx.apply(dbPath, plan)
	if err != nil {
		return "", err
	}
	applied := time.Since(start)
	// The fsync (writing back the whole file) and SQLite's check (reading
	// it from the page cache) overlap: together they took a third of a
	// restore's time one after the other.
	synced := make(chan error, 1)
	go func() { synced <- syncFile(dbPath) }()
	checkErr := integrityCheck(ctx, dbPath, opt.IntegrityCheck)
	if err := <-synced; err != nil {
		return "", localError{fmt.Errorf("write restored database: %w", err)}
	}
	if checkErr != nil {
		return "", fmt.Errorf("restored database fails SQLite's check, %w (%s): %w", ErrReplicaDamaged, plan, checkErr)
	}
	logger.Info("restore complete", "replica", plan.Replica.Name, "pages_written", pages,
		"download", downloaded.Round(time.Millisecond), "snapshot", dl.snapshotTime.Round(time.Millisecond), "segments", dl.segmentsTime.Round(time.Millisecond), "apply", (applied - downloaded).Round(time.Millisecond),
		"check", (time.Since(start) - applied).Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	return dbPath, nil
}

// beforeMoveIntoPlace, when set (by tests), runs just before a restore
// moves its finished file onto the output path.
var beforeMoveIntoPlace func(outputPath string)

// moveIntoPlace moves the finished file tmp to outputPath, in the same
// directory, unless a file is there: one that appeared during the restore
// (another restore, an application creating its database) is left as it
// is, and the error wraps ErrOutputExists. It uses the first that the
// platform and the file system allow:
//  1. rename, which refuses to replace an existing name in one step
//     (renameNoReplace, Linux);
//  2. a hard link, which fails when the name exists, then the removal of
//     tmp (the restore's temporary directory goes anyway);
//  3. a check that outputPath is free, then a plain rename. A file that
//     appears between the two is replaced: only this fallback, on a file
//     system without no-replace renames and without hard links, has
//     that window.
func moveIntoPlace(tmp, outputPath string, renameNoReplace func(oldpath, newpath string) error) error {
	appeared := func() error {
		return fmt.Errorf("%s appeared while restoring and was left as it is (%w): the restored database was discarded; "+
			"remove it or choose another -o, then restore again", outputPath, ErrOutputExists)
	}
	err := renameNoReplace(tmp, outputPath)
	if errors.Is(err, fs.ErrExist) {
		return appeared()
	} else if err == nil {
		return nil
	} else if !errors.Is(err, errors.ErrUnsupported) {
		return fmt.Errorf("move restored database into %s: %w", outputPath, err)
	}
	err = os.Link(tmp, outputPath)
	if errors.Is(err, fs.ErrExist) {
		return appeared()
	} else if err == nil {
		_ = os.Remove(tmp) // else it goes with the temporary directory
		return nil
	}
	if _, err := os.Lstat(outputPath); err == nil {
		return appeared()
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("check output %s: %w", outputPath, err)
	}
	if err := os.Rename(tmp, outputPath); err != nil {
		return fmt.Errorf("move restored database into %s: %w", outputPath, err)
	}
	return nil
}

// IntegrityCheck is the SQLite check a restore runs on its result before
// moving it into place.
type IntegrityCheck string

// The checks: none, PRAGMA quick_check (the default, O(N)), PRAGMA
// integrity_check (also matches indexes to their tables, slower).
const (
	IntegrityNone  IntegrityCheck = "none"
	IntegrityQuick IntegrityCheck = "quick"
	IntegrityFull  IntegrityCheck = "full"
)

// parseIntegrityCheck returns the check named s; "" is quick.
func parseIntegrityCheck(s string) (IntegrityCheck, error) {
	switch c := IntegrityCheck(s); c {
	case "":
		return IntegrityQuick, nil
	case IntegrityNone, IntegrityQuick, IntegrityFull:
		return c, nil
	}
	return "", fmt.Errorf("integrity check %q is not one of none, quick, full", s)
}

// ParseIntegrityCheck returns the check named s: none, quick or full.
func ParseIntegrityCheck(s string) (IntegrityCheck, error) {
	if s == "" {
		return "", errors.New(`integrity check "" is not one of none, quick, full`)
	}
	return parseIntegrityCheck(s)
}

// checkRows bounds the problems SQLite reports; the error shows the first
// few of them.
const (
	checkRows  = 1000
	checkShown = 3
)

// integrityCheck opens the restored file with SQLite and runs the check.
// It reads the file through a memory map (as far as SQLite's build
// allows), faster than a read call per page (docs/performance.md,
// "Restore"). A failure is one line: the count of problems, then the
// first few.
func integrityCheck(ctx context.Context, path string, check IntegrityCheck) error {
	check, _ = parseIntegrityCheck(string(check))
	if check == IntegrityNone {
		return nil
	}
	pragma := "quick_check"
	if check == IntegrityFull {
		pragma = "integrity_check"
	}
	db, err := sql.Open("sqlite", sqliteDSN(path)+"&_pragma=mmap_size(1099511627776)")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, fmt.Sprintf("PRAGMA %s(%d)", pragma, checkRows))
	if err != nil {
		return fmt.Errorf("%s: %w", pragma, err)
	}
	defer rows.Close()
	var found []string
	for rows.Next() {
		var res string
		if err := rows.Scan(&res); err != nil {
			return fmt.Errorf("%s: %w", pragma, err)
		}
		found = append(found, res)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%s: %w", pragma, err)
	}
	if len(found) == 1 && found[0] == "ok" {
		return nil
	}
	return errors.New(summarizeCheck(pragma, found))
}

// quickCheck runs the default check, PRAGMA quick_check.
func quickCheck(ctx context.Context, path string) error {
	return integrityCheck(ctx, path, IntegrityQuick)
}

// summarizeCheck says what a failed check found in one line. A row may
// hold several problems, a line each, under a "*** in database main ***"
// heading.
func summarizeCheck(pragma string, rows []string) string {
	var found []string
	for _, row := range rows {
		for _, l := range strings.Split(row, "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "*** in database ") {
				found = append(found, l)
			}
		}
	}
	count := fmt.Sprintf("%d problems", len(found))
	switch {
	case len(found) == 1:
		count = "1 problem"
	case len(rows) >= checkRows:
		count = fmt.Sprintf("%d problems or more", len(found))
	}
	shown := found[:min(len(found), checkShown)]
	for i, s := range shown {
		s = strings.Join(strings.Fields(s), " ")
		if len(s) > 120 {
			s = s[:117] + "..."
		}
		shown[i] = s
	}
	more := ""
	if len(found) > len(shown) {
		more = "; ..."
	}
	return fmt.Sprintf("PRAGMA %s found %s: %s%s", pragma, count, strings.Join(shown, "; "), more)
}

// downloader fetches and decodes the plan's objects.
type downloader struct {
	plan     *RestorePlan
	parallel int
	progress func(done, total int64)
	done     atomic.Int64
	total    int64
	mu       sync.Mutex // serializes progress calls

	prog     *snapshotProgress // the snapshot's decode
	untilPos *Pos              // opt.until: a point-in-time restore's position

	snapshotTime, segmentsTime time.Duration // from the start of all: the snapshot decoded; the segments decoded and indexed
}

func newDownloader(plan *RestorePlan, opt RestoreOptions) *downloader {
	d := &downloader{plan: plan, parallel: opt.Parallelism, progress: opt.Progress, total: plan.Snapshot.Size, prog: newSnapshotProgress(), untilPos: opt.until}
	if d.parallel <= 0 {
		d.parallel = 8
	}
	for _, s := range plan.Segments {
		d.total += s.Size
	}
	return d
}

func (d *downloader) report(n int64) {
	v := d.done.Add(n)
	if d.progress != nil {
		d.mu.Lock()
		d.progress(v, d.total)
		d.mu.Unlock()
	}
}

// all downloads the snapshot into dbPath while the segments download into
// their groups' files and, once they are all there, onSegments reads them
// (it indexes their pages, which needs no snapshot). The snapshot is one
// LZ4 stream, decoded on one core; one after the other, the segments
// waited for it. In three interleaved pairs of bench restores (1 GB
// snapshot, 520 MB of segments), the download phase went from 0.85 to
// 1.09 s to 0.73 to 0.78 s from a file replica, and from 1.22 to 1.36 s to
// 1.00 to 1.25 s from S3.
func (d *downloader) all(ctx context.Context, dbPath string, groups []*walGroup, onSegments func() error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	snapErr := make(chan error, 1)
	start := time.Now()
	go func() {
		err := d.snapshot(ctx, dbPath)
		if err != nil {
			cancel()
		}
		d.prog.end(err)
		d.snapshotTime = time.Since(start)
		snapErr <- err
	}()
	err := d.segments(ctx, groups)
	if err == nil {
		err = onSegments()
	}
	d.segmentsTime = time.Since(start)
	if err != nil {
		cancel()
	}
	serr := <-snapErr
	// One failure cancels the other side: report the one that was not a
	// cancellation.
	if serr != nil && (err == nil || errors.Is(err, context.Canceled) && !errors.Is(serr, context.Canceled)) {
		return serr
	}
	return err
}

// snapshot downloads and decodes the snapshot into path. A snapshot that
// decodes to nothing is refused: it is no database.
func (d *downloader) snapshot(ctx context.Context, path string) error {
	s := d.plan.Snapshot
	name := d.plan.Generation + "/snapshots/" + d.plan.snapshotName()
	return withRetry(ctx, name, func() error {
		rc, err := d.plan.openSnapshot(ctx)
		if err != nil {
			return err
		}
		defer rc.Close()
		d.prog.restart()
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return localError{fmt.Errorf("create %s: %w", path, err)}
		}
		defer f.Close()
		n, err := d.decodeBounded(rc, name, progressWriter{f, d.prog}, 0, -1)
		if err != nil {
			return err
		}
		if n == 0 {
			return errNoRetry{damaged(errors.New("empty (0 bytes once decoded): not a database"))}
		}
		if err := f.Close(); err != nil {
			return localError{fmt.Errorf("write %s: %w", path, err)}
		}
		d.report(s.Size)
		return nil
	})
}

// segments downloads every segment, decoded, into its group's file at
// its offset, in parallel, and sets each group's size. A segment followed
// by another of its index must decode to exactly the bytes between their
// offsets; it is stopped as soon as it decodes to more.
func (d *downloader) segments(ctx context.Context, groups []*walGroup) error {
	type job struct {
		g *walGroup
		i int // in g.segs
	}
	var jobs []job
	for _, g := range groups {
		for i := range g.segs {
			jobs = append(jobs, job{g, i})
		}
	}
	lastLen := make([]int64, len(groups)) // decoded length of each group's last segment
	gidx := make(map[*walGroup]int, len(groups))
	headed := make([]chan struct{}, len(groups)) // closed once the group's first segment (its WAL header) is decoded
	for i, g := range groups {
		gidx[g] = i
		headed[i] = make(chan struct{})
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	feed := make(chan job)
	errc := make(chan error, len(jobs))
	var wg sync.WaitGroup
	for w := 0; w < min(d.parallel, max(len(jobs), 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range feed {
				s := j.g.segs[j.i]
				bound := int64(-1)
				if j.i+1 < len(j.g.segs) {
					bound = j.g.segs[j.i+1].Offset - s.Offset
				}
				name := d.plan.Generation + "/wal/" + d.plan.segmentName(s)
				gi := gidx[j.g]
				var hdr *walformat.Header
				if bound < 0 && j.i > 0 { // the last of its index: checked against its header
					select {
					case <-headed[gi]:
					case <-ctx.Done():
						continue
					}
					var err error
					if hdr, err = readGroupHeader(j.g.path); err != nil {
						errc <- fmt.Errorf("%s: %w", d.plan.Generation+"/wal/"+d.plan.segmentName(j.g.segs[0]), err)
						cancel()
						continue
					}
				}
				var n int64
				err := withRetry(ctx, name, func() error {
					rc, err := d.plan.openSegment(ctx, s)
					if err != nil {
						return err
					}
					defer rc.Close()
					f, err := os.OpenFile(j.g.path, os.O_WRONLY|os.O_CREATE, 0o600)
					if err != nil {
						return localError{fmt.Errorf("create %s: %w", j.g.path, err)}
					}
					defer f.Close()
					var w io.WriterAt = f
					if bound < 0 {
						w = &frameChecker{w: f, hdr: hdr, until: d.until(j.g.index)}
					}
					if n, err = d.decodeBounded(rc, name, w, s.Offset, bound); err != nil {
						return err
					}
					if bound >= 0 && n < bound {
						next := j.g.segs[j.i+1]
						return errNoRetry{damaged(fmt.Errorf("decodes to %d bytes, but the next segment, %s, starts %d bytes after it: a segment is missing or damaged",
							n, SegmentName(next.Index, next.Offset), bound))}
					}
					if err := f.Close(); err != nil {
						return localError{fmt.Errorf("write %s: %w", j.g.path, err)}
					}
					return nil
				})
				if err != nil {
					errc <- err
					cancel()
					continue
				}
				if j.i == len(j.g.segs)-1 {
					lastLen[gi] = n // one writer per group
				}
				if j.i == 0 {
					close(headed[gi])
				}
				d.report(s.Size)
			}
		}()
	}
send:
	for _, j := range jobs {
		select {
		case feed <- j:
		case <-ctx.Done():
			break send
		}
	}
	close(feed)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	for i, g := range groups {
		g.size = g.segs[len(g.segs)-1].Offset + lastLen[i]
	}
	return nil
}

// decodeBounded decodes the stored bytes of the replica's file name from r
// into w at offset off and returns the decoded length. With limit >= 0 it
// stops, without retry, as soon as the file decodes to more than limit
// bytes; a declared content size (an LZ4 frame may carry one) bounds it
// the same way, and one that differs from limit fails at once.
func (d *downloader) decodeBounded(r io.Reader, name string, w io.WriterAt, off, limit int64) (int64, error) {
	stored := &countingReader{r: r}
	dec, err := d.plan.Replica.Codec.NewDecoder(stored)
	if err != nil {
		if ke := keysError(d.plan.Replica.Name, name, err); ke != nil {
			return 0, ke
		}
		return 0, errCorrupt{err}
	}
	bp := decodeBuffers.Get().(*[]byte)
	defer decodeBuffers.Put(bp)
	buf := *bp
	var n int64
	declared := false
	for {
		m, rerr := dec.Read(buf)
		if m > 0 && !declared {
			declared = true
			if size := declaredSize(dec); size > 0 {
				if limit >= 0 && size != limit {
					return n, errNoRetry{fmt.Errorf("declares %d bytes of content, but the next segment starts %d bytes after it: %w", size, limit, ErrReplicaDamaged)}
				}
				limit = size
			}
		}
		if limit >= 0 && n+int64(m) > limit {
			return n, errNoRetry{fmt.Errorf("decodes to more than the %d bytes before the next segment: %w; stopped there", limit, ErrReplicaDamaged)}
		}
		if m > 0 {
			if err := checkDecodeRatio(n+int64(m), stored.n); err != nil {
				return n, err
			}
			if _, err := w.WriteAt(buf[:m], off+n); err != nil {
				var nr errNoRetry
				if errors.As(err, &nr) {
					return n, err
				}
				return n, localError{fmt.Errorf("write decoded %s: %w", name, err)}
			}
			n += int64(m)
		}
		if rerr == io.EOF {
			return n, nil
		} else if rerr != nil {
			if errors.Is(rerr, lz4.ErrInvalidContentSize) {
				return n, errNoRetry{errCorrupt{rerr}}
			}
			return n, errCorrupt{rerr}
		}
	}
}

// maxDecodeRatio bounds what a stored byte may decode to: LZ4 makes at
// most 255 bytes of one (a match's length costs a byte per 255), plus a
// block's slack.
const (
	maxDecodeRatio = 256
	decodeSlack    = 1 << 20
)

// checkDecodeRatio refuses decoded bytes that the stored bytes read could
// not have made: a file that does is no LZ4 of ours, and is stopped there.
func checkDecodeRatio(decoded, stored int64) error {
	if decoded > maxDecodeRatio*stored+decodeSlack {
		return errNoRetry{fmt.Errorf("decodes to more than %d bytes from %d stored bytes, more than LZ4 can make: %w; stopped there",
			maxDecodeRatio*stored+decodeSlack, stored, ErrReplicaDamaged)}
	}
	return nil
}

// countingReader counts the bytes read through it.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// frameChecker bounds the decode of the last segment of an index, which
// no successor's offset bounds: it checks each frame header's salts
// against the index's WAL header (hdr, or the segment's own first 32
// bytes when it starts the index) before writing, and stops the decode at
// the first frame of another WAL, one that indexSegments would refuse.
// Past until (a point-in-time restore's offset) nothing is checked, as
// nothing there is read.
type frameChecker struct {
	w     io.WriterAt
	hdr   *walformat.Header
	until int64 // -1: no limit
	head  []byte
	fh    [walformat.FrameHeaderSize]byte
}

func (c *frameChecker) WriteAt(b []byte, off int64) (int, error) {
	for i := 0; i < len(b); {
		p := off + int64(i)
		if c.until >= 0 && p >= c.until {
			break
		}
		if p < walformat.HeaderSize {
			take := min(walformat.HeaderSize-int(p), len(b)-i)
			c.head = append(c.head, b[i:i+take]...)
			i += take
			if len(c.head) == walformat.HeaderSize {
				h, err := walformat.ParseHeader(c.head)
				if err != nil {
					return 0, errNoRetry{fmt.Errorf("not a WAL (%v): %w; stopped there", err, ErrReplicaDamaged)}
				}
				c.hdr = &h
			}
			continue
		}
		if c.hdr == nil {
			break // a header cut short: indexSegments reports it
		}
		fs := c.hdr.FrameSize()
		in := (p - walformat.HeaderSize) % fs
		if in >= walformat.FrameHeaderSize {
			i += int(min(fs-in, int64(len(b)-i)))
			continue
		}
		take := min(walformat.FrameHeaderSize-int(in), len(b)-i)
		copy(c.fh[in:], b[i:i+take])
		i += take
		if int(in)+take == walformat.FrameHeaderSize {
			salt1, salt2 := binary.BigEndian.Uint32(c.fh[8:]), binary.BigEndian.Uint32(c.fh[12:])
			if salt1 != c.hdr.Salt1 || salt2 != c.hdr.Salt2 {
				return 0, errNoRetry{fmt.Errorf("frame at offset %s: salt differs from its index's WAL header, no frame of this index: %w; stopped there",
					FormatOffset(p+int64(take)-walformat.FrameHeaderSize), ErrReplicaDamaged)}
			}
		}
	}
	return c.w.WriteAt(b, off)
}

// readGroupHeader reads the WAL header at the start of a group's decoded
// file.
func readGroupHeader(path string) (*walformat.Header, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, localError{err}
	}
	defer f.Close()
	buf := make([]byte, walformat.HeaderSize)
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, fmt.Errorf("shorter than a WAL header: %w", ErrReplicaDamaged)
	}
	h, err := walformat.ParseHeader(buf)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", err, ErrReplicaDamaged)
	}
	return &h, nil
}

// until is the offset a point-in-time restore stops at in index, or -1.
func (d *downloader) until(index int) int64 {
	if u := d.untilPos; u != nil && u.Index == index {
		return u.Offset
	}
	return -1
}

// decodeBuffers recycles decodeBounded's buffers: a fresh one per segment
// made a restore of 100,000 small segments allocate gigabytes.
var decodeBuffers = sync.Pool{New: func() any { b := make([]byte, 64<<10); return &b }}

// declaredSize returns the content size the decoder's LZ4 frame declares,
// or 0 when it declares none. It is known once the first bytes are read.
func declaredSize(dec io.Reader) int64 {
	if d, ok := dec.(*decoder); ok {
		return int64(d.zr.Size())
	}
	return 0
}

// errCorrupt marks content that does not decode; it is retried only once,
// since a cut transfer looks the same as a damaged file.
type errCorrupt struct{ err error }

// Error says so once: the LZ4 decoder's messages begin with "lz4:" and
// ours wrap them in another.
func (e errCorrupt) Error() string {
	return "damaged or unreadable: " + strings.Replace(e.err.Error(), "lz4: lz4: ", "lz4: ", 1)
}
func (e errCorrupt) Unwrap() []error { return []error{e.err, ErrReplicaDamaged} }

// errNoRetry marks a failure that the same bytes would give again: a
// decoded length that contradicts the listing, an empty snapshot.
type errNoRetry struct{ err error }

func (e errNoRetry) Error() string { return e.err.Error() }
func (e errNoRetry) Unwrap() error { return e.err }

// errKeys is a mismatch between a replica's age keys and its stored
// bytes. It holds for every file of the replica, so it is never retried.
// Its message names the replica and the config key to set, never a key.
type errKeys struct {
	msg string
	err error // ErrAgeNoIdentity, ErrAgeNoMatch or ErrNotAgeEncrypted
}

func (e errKeys) Error() string { return e.msg }
func (e errKeys) Unwrap() error { return e.err }

// keysError returns the errKeys for a decoder's error on the replica's
// file name, or nil when err is not about keys.
func keysError(replica, name string, err error) error {
	switch {
	case errors.Is(err, ErrAgeNoIdentity):
		return errKeys{fmt.Sprintf("replica %s is encrypted with age (%s), and no identity is configured for it: "+
			"set age.identities (AGE-SECRET-KEY-1...) for this replica in the config file, then restore again", replica, name), err}
	case errors.Is(err, ErrAgeNoMatch):
		return errKeys{fmt.Sprintf("replica %s: %s is %v: age.identities of this replica must hold the secret key "+
			"of a recipient it was written with", replica, name, err), err}
	case errors.Is(err, ErrNotAgeEncrypted):
		return errKeys{fmt.Sprintf("replica %s: %s is not encrypted with age, yet age.identities is set for this replica: "+
			"it was written without encryption; remove age from this replica's config to restore it", replica, name), err}
	}
	return nil
}

// withRetry runs fn up to 5 times with backoff; a missing object is not
// retried, nor is damaged content more than once, nor a key mismatch.
// Errors name the file.
func withRetry(ctx context.Context, name string, fn func() error) error {
	var err error
	corrupt := 0
	for attempt := 0; attempt < 5; attempt++ {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(100<<attempt) * time.Millisecond):
			}
		}
		if err = fn(); err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: missing from the replica: %w", name, err)
		}
		var ke errKeys
		if errors.As(err, &ke) {
			return err // names the file itself
		}
		var nr errNoRetry
		var le localError
		if errors.As(err, &nr) || errors.As(err, &le) {
			break
		}
		var ce errCorrupt
		if errors.As(err, &ce) {
			if corrupt++; corrupt > 1 {
				break
			}
		}
	}
	return fmt.Errorf("%s: %w", name, err)
}
