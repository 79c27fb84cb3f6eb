package litestream

import (
	"context"
	"database/sql"
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
	x := newSegmentIndex(plan, planGroups(plan), opt.until, logger)
	if localRoot(plan.Replica) == "" { // read twice: kept rather than fetched again
		x.spool = newSegmentSpool(dir, len(plan.Segments))
		defer x.spool.close()
	}
	if err := dl.all(ctx, dbPath, x); err != nil {
		return "", err
	}
	downloaded := time.Since(start)
	pages, err := x.apply(ctx, dl, dbPath)
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
		"download", downloaded.Round(time.Millisecond), "snapshot", dl.snapshotTime.Round(time.Millisecond), "segments", dl.segmentsTime.Round(time.Millisecond), "behind", dl.aheadTime.Round(time.Millisecond), "apply", (applied - downloaded).Round(time.Millisecond),
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

	snapshotTime, segmentsTime, aheadTime time.Duration // from the start of all: the snapshot decoded; the segments read and indexed; their pages written ahead
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

// all downloads the snapshot into dbPath while x reads the segments and,
// once they are all read, writes their winning pages behind the
// snapshot's decode (writeAhead). The snapshot is one LZ4 stream, decoded
// on one core; the segments do not wait for it.
func (d *downloader) all(ctx context.Context, dbPath string, x *segmentIndex) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	snapErr := make(chan error, 1)
	start := time.Now()
	go func() {
		n, err := d.snapshot(ctx, dbPath)
		if err != nil {
			cancel()
		}
		d.prog.end(n, err)
		d.snapshotTime = time.Since(start)
		snapErr <- err
	}()
	err := x.read(ctx, d)
	d.segmentsTime = time.Since(start)
	if err == nil {
		err = x.writeAhead(ctx, d, dbPath)
	}
	d.aheadTime = time.Since(start)
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

// snapshot downloads and decodes the snapshot into path and returns its
// decoded length. A snapshot that decodes to nothing is refused: it is no
// database.
func (d *downloader) snapshot(ctx context.Context, path string) (int64, error) {
	s := d.plan.Snapshot
	name := d.plan.Generation + "/snapshots/" + d.plan.snapshotName()
	var n int64
	err := withRetry(ctx, name, func() error {
		rc, err := d.plan.openSnapshot(ctx)
		if err != nil {
			return err
		}
		defer rc.Close()
		d.prog.restart()
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
		d.prog.idle()
		if err != nil {
			return localError{fmt.Errorf("create %s: %w", path, err)}
		}
		defer f.Close()
		if n, err = d.decodeBounded(rc, name, progressWriter{f, d.prog, new(int64)}, 0, -1); err != nil {
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
	return n, err
}

// boundedReader reads the decoded bytes of the replica's file name. With
// limit >= 0 it fails, without retry, as soon as the file decodes to more
// than limit bytes; a declared content size (an LZ4 frame may carry one)
// bounds it the same way, and one that differs from limit fails at once.
// It refuses more decoded bytes than LZ4 can make of those stored.
type boundedReader struct {
	dec      io.Reader
	stored   *countingReader
	limit    int64
	n        int64 // decoded bytes read
	declared bool
	eof      bool
}

// newBoundedReader returns a boundedReader of the stored bytes in r.
func (d *downloader) newBoundedReader(r io.Reader, name string, limit int64) (*boundedReader, error) {
	stored := &countingReader{r: r}
	dec, err := d.plan.Replica.Codec.NewDecoder(stored)
	if err != nil {
		if ke := keysError(d.plan.Replica.Name, name, err); ke != nil {
			return nil, ke
		}
		return nil, errCorrupt{err}
	}
	return &boundedReader{dec: dec, stored: stored, limit: limit}, nil
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if b.eof {
		return 0, io.EOF
	}
	m, rerr := b.dec.Read(p)
	if m > 0 && !b.declared {
		b.declared = true
		if size := declaredSize(b.dec); size > 0 {
			if b.limit >= 0 && size != b.limit {
				return 0, errNoRetry{fmt.Errorf("declares %d bytes of content, but the next segment starts %d bytes after it: %w", size, b.limit, ErrReplicaDamaged)}
			}
			b.limit = size
		}
	}
	if b.limit >= 0 && b.n+int64(m) > b.limit {
		return 0, errNoRetry{fmt.Errorf("decodes to more than the %d bytes before the next segment: %w; stopped there", b.limit, ErrReplicaDamaged)}
	}
	if m > 0 {
		if err := checkDecodeRatio(b.n+int64(m), b.stored.n); err != nil {
			return 0, err
		}
		b.n += int64(m)
	}
	if rerr == io.EOF {
		b.eof = true
		return m, io.EOF
	} else if rerr != nil {
		if errors.Is(rerr, lz4.ErrInvalidContentSize) {
			return m, errNoRetry{errCorrupt{rerr}}
		}
		return m, errCorrupt{rerr}
	}
	return m, nil
}

// decodeBounded decodes the stored bytes of the replica's file name from r
// into w at offset off, bounded as boundedReader is, and returns the
// decoded length.
func (d *downloader) decodeBounded(r io.Reader, name string, w io.WriterAt, off, limit int64) (int64, error) {
	br, err := d.newBoundedReader(r, name, limit)
	if err != nil {
		return 0, err
	}
	bp := decodeBuffers.Get().(*[]byte)
	defer decodeBuffers.Put(bp)
	buf := *bp
	for {
		m, rerr := br.Read(buf)
		if m > 0 {
			if _, err := w.WriteAt(buf[:m], off+br.n-int64(m)); err != nil {
				var nr errNoRetry
				if errors.As(err, &nr) {
					return br.n - int64(m), err
				}
				return br.n - int64(m), localError{fmt.Errorf("write decoded %s: %w", name, err)}
			}
		}
		if rerr == io.EOF {
			return br.n, nil
		} else if rerr != nil {
			return br.n - int64(m), rerr
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
