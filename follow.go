package litestream

// A follower keeps a restored database current as a live read replica
// (`litestream restore -follow`). What must hold, and why it does:
//
//  1. Readers see only the primary's committed states. Every change to the
//     follower database after its first restore is one SQLite write
//     transaction on the follower's own connection, in WAL mode, that
//     writes whole page images through the sqlite_dbpage virtual table
//     and ends with "INSERT INTO sqlite_dbpage(pgno, data) VALUES(N+1,
//     NULL)", which sets the database size to N pages at commit (dbpage.c:
//     the truncation is applied in xSync, so it must be the transaction's
//     last write: a later page write cancels it). A reader in any process
//     that opens the file with SQLite reads either the state before the
//     commit or the state after it, through SQLite's WAL index, and keeps
//     its snapshot while later transactions commit: no byte is written
//     behind SQLite's back (followDB.applyStep, followDB.resync).
//  2. Each such state is a state of the primary. A step applies whole
//     segments, each of which ends on a commit frame (refused otherwise:
//     followStep.addSegment), with every frame validated (salts, the
//     cumulative checksum continued from the previous segment of the
//     index, page numbers). For each page it writes the image of the last
//     frame in the step, and the size of the last commit. The follower was
//     the primary's state at the step's first segment; a page the primary
//     did not write since is unchanged, and a page it wrote gets its image
//     as of the last commit; pages past the new size are cut. So the
//     result is the primary's state at the end of the step. (The same
//     argument as restore's "last version of each page once".)
//  3. A kill -9 at any moment loses nothing and corrupts nothing. The
//     position lives in the sidecar file .NAME-follow (JSON, written to a
//     temporary name, fsynced, renamed, directory fsynced), written after
//     the step's commit (synchronous=FULL, so the commit is durable
//     first). Killed between the two, the database is at the step's end E
//     and the sidecar says the step's start S. The restart re-applies from
//     S to some E' >= E (segments are never removed from the middle of a
//     chain; if they were, see 5). For a page written in (S, E'] it
//     writes its image at E'; a page not written in (S, E'] has the same
//     image at S, E and E'. So the result is the state at E' whatever the
//     database held, E or S: re-applying is idempotent, and it never
//     applies out of order, since it always continues from a position the
//     database has reached or passed within the same chain.
//  4. A new generation (or a gap in the chain, or another process writing
//     to the follower) is handled by a resync: the new state is restored
//     with Restore into a temporary file that no one uses, then copied
//     into the follower in one transaction like a step (the pages that
//     differ, then the size): readers keep their snapshots across it, as
//     across a step, instead of having a file renamed under them. Before
//     the resync's commit the sidecar says "resync pending"; a restart that
//     finds it resyncs again, which is idempotent (every page of the result
//     is compared and written), so a kill between the commit and the
//     sidecar cannot leave a new generation's state under an old
//     generation's position.
//  5. The output exists only with its sidecar: the first restore goes to a
//     temporary file, the sidecar is written, and only then is the file
//     linked into place. An output without a sidecar is not a follower's
//     and is refused (CheckFollowOutput).
//  6. Nothing else writes to the output: the follower opens it only through
//     followDB, whose writes are the two transactions above. A write by
//     another process is seen through PRAGMA data_version, read inside
//     the next step's write transaction (so none can slip in between), and
//     answered with a resync from the replica.
//  7. The apply path refuses input that would make the file larger than
//     the replica can justify: a page number above SQLite's limit or equal
//     to the lock-byte page, a commit size above SQLite's limit or above
//     the follower's pages plus the step's frames plus one (the lock-byte
//     page). Restore keeps the same rules in its own files.
//  8. Polling is cheap and memory is bounded. A poll asks the store for
//     the next expected segment by name (a GET, or an open for a
//     directory): index I at the offset reached, else index I+1 at offset
//     0, then I at the offset again (uploads are sequential, so I+1 at 0
//     existing while I at the offset does not means index I ended there).
//     It LISTs only when nothing new came for GenerationCheckInterval, to
//     see a new generation. A step holds one frame in memory and a map of
//     its pages; the page images wait in a temporary file, and a step
//     stops taking segments past MaxStepBytes.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Defaults of FollowOptions.
const (
	DefaultFollowInterval          = time.Second
	DefaultGenerationCheckInterval = 30 * time.Second // idle LISTs: 2 a minute
	DefaultFollowMaxStepBytes      = 64 << 20         // page images per step, on disk
)

// ErrNotFollower is wrapped by the error for an output that exists and was
// not made by a follower (it has no sidecar).
var ErrNotFollower = errors.New("the output exists and was not made by a follower")

// FollowOptions say what a follower reads and how often.
type FollowOptions struct {
	ReplicaName string        // "" follows the replica restore would choose
	Interval    time.Duration // poll the replica this often (default 1s)
	// GenerationCheckInterval is how long nothing new may come before the
	// follower lists the generations, to see a new one (default 30s).
	GenerationCheckInterval time.Duration
	MaxStepBytes            int64 // page images per step (default 64 MiB)
	Parallelism             int   // downloads of a (re)restore; <= 0 means 8
	Logger                  *slog.Logger
	// OnStep, if set, is called after each step or resync is durable.
	OnStep func(FollowStatus)
}

// FollowStatus is what the follower last achieved, for metrics and health.
type FollowStatus struct {
	Replica      string    // replica followed
	Pos          Pos       // position the follower database holds
	CurrentAt    time.Time // start of the last poll that found nothing newer
	LastApplied  time.Time // last step or resync committed
	Steps        int64     // steps committed
	Resyncs      int64     // resyncs committed
	LastErr      error     // error of the last poll; nil if it succeeded
	FailingSince time.Time // first failure of the current run of failures
}

// Follower keeps outputPath a live read replica of replicas.
type Follower struct {
	replicas []*Replica
	output   string
	opt      FollowOptions
	logger   *slog.Logger

	statusMu sync.Mutex
	status   FollowStatus
}

// NewFollower returns a follower of replicas into outputPath.
func NewFollower(replicas []*Replica, outputPath string, opt FollowOptions) *Follower {
	if opt.Interval <= 0 {
		opt.Interval = DefaultFollowInterval
	}
	if opt.GenerationCheckInterval <= 0 {
		opt.GenerationCheckInterval = DefaultGenerationCheckInterval
	}
	if opt.MaxStepBytes <= 0 {
		opt.MaxStepBytes = DefaultFollowMaxStepBytes
	}
	logger := opt.Logger
	if logger == nil {
		logger = slog.Default()
	}
	return &Follower{replicas: replicas, output: outputPath, opt: opt, logger: logger.With("db", outputPath)}
}

// Status returns a copy of the follower's status.
func (f *Follower) Status() FollowStatus {
	f.statusMu.Lock()
	defer f.statusMu.Unlock()
	return f.status
}

func (f *Follower) setStatus(fn func(*FollowStatus)) FollowStatus {
	f.statusMu.Lock()
	defer f.statusMu.Unlock()
	fn(&f.status)
	return f.status
}

// FollowSidecarPath returns the sidecar of a follower's output:
// /dir/.NAME-follow for /dir/NAME.
func FollowSidecarPath(outputPath string) string {
	return filepath.Join(filepath.Dir(outputPath), "."+filepath.Base(outputPath)+"-follow")
}

// CheckFollowOutput returns nil when a follower may start on outputPath:
// nothing is there (a first restore), or a database with its sidecar (a
// resume). An output without its sidecar is refused with an error that
// names the sidecar and wraps ErrNotFollower.
func CheckFollowOutput(outputPath string) error {
	if fi, err := os.Lstat(outputPath); errors.Is(err, os.ErrNotExist) {
		return checkOutputSidecars(outputPath)
	} else if err != nil {
		return fmt.Errorf("check output %s: %w", outputPath, err)
	} else if !fi.Mode().IsRegular() {
		return fmt.Errorf("output %s is not a regular file", outputPath)
	}
	sc := FollowSidecarPath(outputPath)
	if _, err := os.Lstat(sc); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s exists and has no follower sidecar %s: %w; a follower resumes only what a follower made "+
			"(restore never overwrites): remove it or choose another -o", outputPath, sc, ErrNotFollower)
	} else if err != nil {
		return fmt.Errorf("check %s: %w", sc, err)
	}
	return nil
}

// Run restores the output if it is not there, then keeps it current until
// ctx ends, when it returns nil. A failing replica is retried forever
// while the output keeps serving its last state; the status and the log
// say so. It returns an error only for what no retry can change: another
// follower on the output, an output that is not a follower's, a local
// disk that fails.
func (f *Follower) Run(ctx context.Context) error {
	if err := CheckFollowOutput(f.output); err != nil {
		return err
	}
	dir := filepath.Dir(f.output)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("create output directory: %w", err)
	}
	unlock, err := lockFollower(f.output)
	if err != nil {
		return err
	}
	defer unlock()
	removeFollowTemps(f.output, f.logger)
	tmpDir, err := os.MkdirTemp(dir, followTempPrefix(f.output))
	if err != nil {
		return fmt.Errorf("create temporary directory next to %s: %w", f.output, err)
	}
	defer os.RemoveAll(tmpDir)

	st, db, err := f.start(ctx, tmpDir)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	defer db.close()
	s := &followSession{f: f, db: db, state: st, tmpDir: tmpDir}
	return s.loop(ctx)
}

// start returns the follower's state and its open database: from the
// sidecar of an existing output, else from a first restore.
func (f *Follower) start(ctx context.Context, tmpDir string) (followState, *followDB, error) {
	if _, err := os.Lstat(f.output); err == nil {
		st, err := readFollowState(FollowSidecarPath(f.output))
		if err != nil {
			return st, nil, err
		}
		db, err := openFollowDB(ctx, f.output)
		if err != nil {
			return st, nil, err
		}
		f.logger.Info("resuming follower", "replica", st.Replica, "position", st.Pos.String(), "resync_pending", st.Resync)
		f.setStatus(func(s *FollowStatus) { s.Replica, s.Pos = st.Replica, st.Pos })
		return st, db, nil
	}
	for {
		st, err := f.firstRestore(ctx, tmpDir)
		if err == nil {
			db, err := openFollowDB(ctx, f.output)
			return st, db, err
		}
		if ctx.Err() != nil || errors.Is(err, ErrOutputExists) || errors.Is(err, ErrNoBackup) {
			return st, nil, err // ErrNoBackup: the caller decides (-if-replica-exists)
		}
		f.logger.Warn("first restore of the follower failed; retrying", "error", err, "retry_in", f.opt.Interval)
		select {
		case <-ctx.Done():
			return st, nil, ctx.Err()
		case <-time.After(max(f.opt.Interval, time.Second)):
		}
	}
}

// firstRestore restores the newest state into a temporary file, makes it
// a WAL database, writes the sidecar, and only then links it into place
// (invariant 5).
func (f *Follower) firstRestore(ctx context.Context, tmpDir string) (followState, error) {
	img, err := f.restoreImage(ctx, tmpDir)
	if err != nil {
		return followState{}, err
	}
	defer os.Remove(img.path)
	if err := setWALMode(ctx, img.path); err != nil {
		return followState{}, localError{err}
	}
	st := img.state
	if err := writeFollowState(FollowSidecarPath(f.output), st); err != nil {
		return st, localError{err}
	}
	if err := linkIntoPlace(img.path, f.output); err != nil {
		return st, err
	}
	f.logger.Info("restored the follower", "replica", st.Replica, "position", st.Pos.String())
	f.setStatus(func(s *FollowStatus) {
		s.Replica, s.Pos, s.LastApplied = st.Replica, st.Pos, time.Now()
	})
	return st, nil
}

// linkIntoPlace puts tmp at outputPath unless something is there: a hard
// link refuses an existing name; without hard links, a check then a
// rename (the window between them is that file system's).
func linkIntoPlace(tmp, outputPath string) error {
	err := os.Link(tmp, outputPath)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s appeared while restoring the follower and was left as it is (%w)", outputPath, ErrOutputExists)
	} else if err != nil {
		if _, serr := os.Lstat(outputPath); serr == nil {
			return fmt.Errorf("%s appeared while restoring the follower and was left as it is (%w)", outputPath, ErrOutputExists)
		}
		if err := os.Rename(tmp, outputPath); err != nil {
			return localError{fmt.Errorf("move restored follower into %s: %w", outputPath, err)}
		}
	}
	return syncDirectory(filepath.Dir(outputPath))
}
