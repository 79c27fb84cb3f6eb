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
	"sync"
	"sync/atomic"
	"time"
)

// Restore executes a plan: it downloads the snapshot and the segments (in
// parallel, with retries) into a temporary directory next to outputPath,
// applies each page's last committed version once, checks the result with
// SQLite, and renames it into place. outputPath holds either nothing or a
// complete, consistent database, and no temporary file is left behind.
// It never replaces a file at outputPath, even one that appears while it
// runs (the error wraps ErrOutputExists), and refuses to start, or to
// finish, beside another database's -wal, -shm or -journal file
// (CheckRestoreOutput).
func Restore(ctx context.Context, plan *RestorePlan, outputPath string, opt RestoreOptions) error {
	logger := opt.Logger
	if logger == nil {
		logger = slog.Default()
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

	start := time.Now()
	logger.Info("restoring", "plan", plan.String(), "output", outputPath)
	dl := newDownloader(plan, opt)
	dbPath := filepath.Join(tmpDir, "db")
	var idx *segmentIndex
	err = dl.all(ctx, dbPath, tmpDir, func(files []string) (err error) {
		idx, err = indexSegments(plan, files, opt.until, logger)
		return err
	})
	if idx != nil {
		defer idx.close() // before the temporary directory goes (Windows)
	}
	if err != nil {
		return err
	}
	downloaded := time.Since(start)
	pages, err := idx.apply(dbPath, plan)
	if err != nil {
		return err
	}
	idx.close()
	applied := time.Since(start)
	// The fsync (writing back the whole file) and SQLite's check (reading
	// it from the page cache) overlap: together they took a third of a
	// restore's time one after the other.
	synced := make(chan error, 1)
	go func() { synced <- syncFile(dbPath) }()
	checkErr := quickCheck(ctx, dbPath)
	if err := <-synced; err != nil {
		return fmt.Errorf("write restored database: %w", err)
	}
	if checkErr != nil {
		return fmt.Errorf("restored database fails SQLite's check, the replica is damaged (%s): %w", plan, checkErr)
	}
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
	if err := SyncDir(dir); err != nil {
		return err
	}
	logger.Info("restore complete", "output", outputPath, "pages_written", pages,
		"download", downloaded.Round(time.Millisecond), "apply", (applied - downloaded).Round(time.Millisecond),
		"check", (time.Since(start) - applied).Round(time.Millisecond), "total", time.Since(start).Round(time.Millisecond))
	return nil
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

// quickCheck opens the restored file with SQLite and runs PRAGMA quick_check.
// It reads the file through a memory map (as far as SQLite's build allows),
// faster than a read call per page (docs/performance.md, "Restore").
func quickCheck(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", sqliteDSN(path)+"&_pragma=mmap_size(1099511627776)")
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, "PRAGMA quick_check").Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return errors.New(res)
	}
	return nil
}

// downloader fetches and decodes the plan's objects.
type downloader struct {
	plan     *RestorePlan
	parallel int
	progress func(done, total int64)
	done     atomic.Int64
	total    int64
	mu       sync.Mutex // serializes progress calls
}

func newDownloader(plan *RestorePlan, opt RestoreOptions) *downloader {
	d := &downloader{plan: plan, parallel: opt.Parallelism, progress: opt.Progress, total: plan.Snapshot.Size}
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
// dir and, once they are all there, onSegments reads them (it indexes
// their pages, which needs no snapshot). The snapshot is one LZ4 stream,
// decoded on one core; one after the other, the segments waited for it. In
// three interleaved pairs of bench restores (1 GB snapshot, 520 MB of
// segments), the download phase went from 0.85 to 1.09 s to 0.73 to 0.78 s
// from a file replica, and from 1.22 to 1.36 s to 1.00 to 1.25 s from S3.
func (d *downloader) all(ctx context.Context, dbPath, dir string, onSegments func(files []string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	snapErr := make(chan error, 1)
	go func() {
		err := d.snapshot(ctx, dbPath)
		if err != nil {
			cancel()
		}
		snapErr <- err
	}()
	files, err := d.segments(ctx, dir)
	if err == nil {
		err = onSegments(files)
	}
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

// snapshot downloads and decodes the snapshot into path.
func (d *downloader) snapshot(ctx context.Context, path string) error {
	s := d.plan.Snapshot
	name := d.plan.Generation + "/snapshots/" + SnapshotName(s.Index)
	return withRetry(ctx, name, func() error {
		rc, err := d.plan.Replica.Client.OpenSnapshot(ctx, s.Generation, s.Index)
		if err != nil {
			return err
		}
		defer rc.Close()
		return d.decodeTo(rc, name, path, s.Size)
	})
}

// segments downloads every segment, decoded, into dir, parallel; it
// returns the file of each segment in plan order.
func (d *downloader) segments(ctx context.Context, dir string) ([]string, error) {
	segs := d.plan.Segments
	files := make([]string, len(segs))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan int)
	errc := make(chan error, len(segs))
	var wg sync.WaitGroup
	for w := 0; w < min(d.parallel, max(len(segs), 1)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				s := segs[i]
				files[i] = filepath.Join(dir, SegmentName(s.Index, s.Offset))
				name := d.plan.Generation + "/wal/" + SegmentName(s.Index, s.Offset)
				err := withRetry(ctx, name, func() error {
					rc, err := d.plan.Replica.Client.OpenSegment(ctx, s.Pos())
					if err != nil {
						return err
					}
					defer rc.Close()
					return d.decodeTo(rc, name, files[i], s.Size)
				})
				if err != nil {
					errc <- err
					cancel()
				}
			}
		}()
	}
feed:
	for i := range segs {
		select {
		case jobs <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(jobs)
	wg.Wait()
	close(errc)
	if err := <-errc; err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return files, nil
}

// decodeTo decodes the stored bytes of the replica's file name from r
// into a new file at path.
func (d *downloader) decodeTo(r io.Reader, name, path string, size int64) error {
	dec, err := d.plan.Replica.Codec.NewDecoder(r)
	if err != nil {
		if ke := keysError(d.plan.Replica.Name, name, err); ke != nil {
			return ke
		}
		return errCorrupt{err}
	}
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	defer f.Close()
	if _, err := io.Copy(f, dec); err != nil {
		return errCorrupt{err}
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	d.report(size)
	return nil
}

// errCorrupt marks content that does not decode; it is retried only once,
// since a cut transfer looks the same as a damaged file.
type errCorrupt struct{ err error }

func (e errCorrupt) Error() string { return "damaged or unreadable: " + e.err.Error() }
func (e errCorrupt) Unwrap() error { return e.err }

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
		var ce errCorrupt
		if errors.As(err, &ce) {
			if corrupt++; corrupt > 1 {
				break
			}
		}
	}
	return fmt.Errorf("%s: %w", name, err)
}
