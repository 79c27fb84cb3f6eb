package litestream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/litestream-go/litestream/internal/walformat"
)

// Engine defaults: Litestream v0.3's, but for MinCheckpointPageN and
// LargeTxCheckpointPageN (see docs/performance.md, "db.go").
const (
	DefaultMonitorInterval    = 1 * time.Second
	DefaultCheckpointInterval = 1 * time.Minute
	// DefaultMinCheckpointPageN is below SQLite's own wal_autocheckpoint
	// (1000) so that the engine, not the application's commit, checkpoints.
	DefaultMinCheckpointPageN = 500
	DefaultMaxCheckpointPageN = 10000
	// DefaultLargeTxCheckpointPageN replaces MinCheckpointPageN while
	// transactions are large: each checkpoint's write lock blocks a commit.
	DefaultLargeTxCheckpointPageN = 1000
)

// largeTxPages is the average transaction size, in pages, from which
// LargeTxCheckpointPageN applies (see docs/performance.md, "db.go").
const largeTxPages = 4

// DB watches one SQLite database: it copies committed WAL frames into the
// shadow WAL of the current generation, runs checkpoints, and feeds its
// replicas. All access to the database goes through SQLite.
type DB struct {
	path     string
	metaPath string
	Logger   *slog.Logger

	MonitorInterval    time.Duration // copy the WAL this often
	CheckpointInterval time.Duration // checkpoint at least this often when the WAL has frames
	MinCheckpointPageN int           // PASSIVE checkpoint at this many WAL pages
	MaxCheckpointPageN int           // at this many pages, also shrink the WAL file when it restarts
	// LargeTxCheckpointPageN, when above MinCheckpointPageN, replaces it
	// while the current shadow index averages largeTxPages pages or more
	// per transaction; 0 turns that off.
	LargeTxCheckpointPageN int

	Replicas []*Replica

	// Notifier, when set before Open, tells the monitor when the
	// database's files change, in place of a look every walWatchInterval.
	Notifier *WALNotifier

	// ckptMu keeps checkpoints out while snapshots read the database file:
	// snapshots take it shared, a checkpoint takes it exclusive.
	ckptMu sync.RWMutex

	mu             sync.Mutex // guards everything below
	conns          *dbConns
	files          *dbFiles // open exactly while conns is (invariant 1 of db_files.go)
	pageSize       int
	newGenReason   string // set when the shadow WAL can no longer be trusted: the next copy starts a new generation
	walIndexAgrees bool   // the last copy reached the end SQLite's wal-index counts as committed
	failingSince   time.Time
	failedSyncs    int   // syncs in a row that failed
	lastSyncErr    error // of the last sync, nil when it succeeded
	generation     string
	shadow         *shadowWAL
	restartAllowed bool // our last checkpoint backfilled the whole WAL; one restart may follow
	readFloor      Pos  // at or past our read transaction's snapshot: the end of the first copy after it began, or the WAL end a checkpoint saw
	started        bool // the first sync under the write lock is done
	ckpt           checkpointState
	changed        chan struct{}
	ahead          chan struct{} // closed by signalCommittedAhead
	stats          DBStats
	marks          copyMarks // when recent shadow positions were reached, for replica lag

	cancel context.CancelFunc
	wg     sync.WaitGroup
	closed atomic.Bool
	// closeHook, when set (by tests: checkInvariantsOnClose), runs in
	// Close after the final syncs, with mu held and the files still open.
	closeHook func()
}

// DBStats are counters kept for metrics and tests.
type DBStats struct {
	Generation        string
	ShadowIndex       int
	ShadowSize        int64 // committed bytes of the current shadow file
	WALBytes          int64 // committed WAL bytes copied into the shadow WAL
	Syncs             int64
	SyncErrs          int64
	SyncTime          time.Duration
	Checkpoints       int64
	CheckpointErrs    int64
	CheckpointTime    time.Duration
	CheckpointRounds  int64         // PASSIVE checkpoints before the write lock
	CheckpointsPutOff int64         // policy checkpoints that gave up waiting for the write lock
	MaxLockHeld       time.Duration // longest time the write lock was held by a checkpoint
	Generations       int64         // generations started by this process
	LastNewGenCause   string
	// FailedSyncs counts the syncs in a row that failed, since
	// FailingSince; LastSyncErr is the last one's error.
	FailedSyncs  int
	FailingSince time.Time
	LastSyncErr  error
}

// NewDB returns a DB for the database at path, with v0.3's defaults. The
// meta directory defaults to "<dir>/.<name>-litestream".
func NewDB(path string) *DB {
	dir, base := filepath.Split(path)
	return &DB{
		path:                   path,
		metaPath:               filepath.Join(dir, "."+base+"-litestream"),
		Logger:                 slog.Default(),
		MonitorInterval:        DefaultMonitorInterval,
		CheckpointInterval:     DefaultCheckpointInterval,
		MinCheckpointPageN:     DefaultMinCheckpointPageN,
		MaxCheckpointPageN:     DefaultMaxCheckpointPageN,
		LargeTxCheckpointPageN: DefaultLargeTxCheckpointPageN,
		changed:                make(chan struct{}),
		ahead:                  make(chan struct{}),
	}
}

// Path returns the database path.
func (db *DB) Path() string { return db.path }

// WALPath returns the path of the database's WAL file.
func (db *DB) WALPath() string { return db.path + "-wal" }

// MetaPath returns the meta directory.
func (db *DB) MetaPath() string { return db.metaPath }

// SetMetaPath overrides the meta directory; call before Open.
func (db *DB) SetMetaPath(p string) { db.metaPath = p }

// shadowDir returns the shadow WAL directory of a generation.
func (db *DB) shadowDir(generation string) string {
	return filepath.Join(db.metaPath, "generations", generation, "wal")
}

// AddReplica attaches a replica to the database, which then feeds it;
// call it before Open.
func (db *DB) AddReplica(r *Replica) {
	r.db = db
	db.Replicas = append(db.Replicas, r)
}

// Open starts watching the database in the background: the monitor loop and
// one loop per replica. The database file may not exist yet; the engine
// waits for it. Close stops everything after a last sync.
func (db *DB) Open() error {
	if db.MonitorInterval <= 0 {
		return errors.New("monitor interval must be positive")
	}
	if err := os.MkdirAll(db.metaPath, 0o755); err != nil {
		return fmt.Errorf("create meta directory: %w", err)
	}
	db.removeValidationLeftovers(time.Now()) // before any validation of ours starts
	ctx, cancel := context.WithCancel(context.Background())
	db.cancel = cancel
	db.wg.Add(1)
	go func() { defer db.wg.Done(); db.monitor(ctx) }()
	for _, r := range db.Replicas {
		db.wg.Add(1)
		go func() { defer db.wg.Done(); r.run(ctx) }()
	}
	return nil
}

// Close stops the loops, makes a last sync of the database and of every
// replica (bounded by ctx), releases the read lock and closes the database.
// Calls after the first do nothing.
func (db *DB) Close(ctx context.Context) error {
	if db.closed.Swap(true) {
		return nil
	}
	if db.cancel != nil {
		db.cancel()
		db.wg.Wait()
	}
	var errs []error
	if err := db.Sync(ctx); err != nil && !errors.Is(err, errDBNotReady) {
		errs = append(errs, fmt.Errorf("final sync: %w", err))
	}
	for _, r := range db.Replicas {
		if err := r.Sync(ctx); err != nil && !errors.Is(err, errDBNotReady) {
			errs = append(errs, fmt.Errorf("final sync of replica %s: %w", r.Name, err))
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.closeHook != nil {
		db.closeHook()
	}
	if db.shadow != nil {
		errs = append(errs, db.shadow.Close())
		db.shadow = nil
	}
	errs = append(errs, db.closeConns())
	return errors.Join(errs...)
}

// closeConns closes the engine's connections, then its own descriptors of
// the database's files (in that order: invariant 1 of db_files.go). The
// connections never checkpoint on close (engineConnector). Caller holds mu.
func (db *DB) closeConns() error {
	var errs []error
	if db.conns != nil {
		errs = append(errs, db.conns.close())
		db.conns = nil
	}
	if db.files != nil {
		errs = append(errs, db.files.close())
		db.files = nil
	}
	db.restartAllowed, db.started = false, false
	return errors.Join(errs...)
}

// monitor copies the WAL every monitor interval until ctx ends, and sooner
// when the WAL reaches the checkpoint threshold or runs ahead of the shadow
// WAL (see walFull).
//
// With a Notifier, the database's files are looked at only after the
// kernel reports a change (and every walWatchInterval while a look finds
// work pending), and the monitor interval's sync runs only after a change,
// after a sync that failed, or every idleSyncEvery: an idle database costs
// nothing. Without one, or when its directory cannot be watched, the WAL
// is looked at every walWatchInterval.
func (db *DB) monitor(ctx context.Context) {
	tick := time.NewTimer(db.MonitorInterval)
	defer tick.Stop()
	lookEvery := min(walWatchInterval, db.MonitorInterval)
	look := time.NewTimer(lookEvery)
	defer look.Stop()
	var notes <-chan struct{}
	var sub *walSubscription
	if db.Notifier != nil {
		var err error
		if sub, err = db.Notifier.subscribe(db.path); err != nil {
			db.Logger.Warn("cannot watch the database's directory; looking at its WAL every 25 ms instead", "db", db.path, "error", err)
		} else {
			defer sub.cancel()
			notes = sub.C()
		}
	}
	var waiting string // the last reason logged for waiting for the database
	failing := false
	var seen walWatch
	var lastLook, lastSync time.Time
	dirty := true   // a change was reported since the last sync began
	lookDue := true // the look timer is set
	for {
		lastSync, dirty = time.Now(), false
		err := db.Sync(ctx)
		switch {
		case err == nil:
			if failing {
				db.Logger.Info("sync recovered", "db", db.path)
			}
			waiting, failing = "", false
		case ctx.Err() != nil:
			return
		case errors.Is(err, errDBNotReady):
			if msg := err.Error(); msg != waiting {
				db.Logger.Info("waiting for database", "db", db.path, "reason", msg)
				waiting = msg
			}
			dirty = true // keep trying every tick
		default:
			// Logged at every sync until it recovers: a sync that fails
			// quietly is a replica that silently falls behind.
			st := db.Stats()
			db.Logger.Error("sync failed; will retry", "db", db.path, "error", err,
				"failed_syncs", st.FailedSyncs, "failing_for", time.Since(st.FailingSince).Round(time.Millisecond))
			failing, dirty = true, true
		}
		// The next sync: a monitor interval after this one, or, with no
		// change reported, idleSyncEvery after it (no wake-up until then).
		next := lastSync.Add(db.MonitorInterval)
		if notes != nil && !dirty {
			next = lastSync.Add(max(db.MonitorInterval, db.idleSyncEvery()))
		}
		tick.Reset(time.Until(next))
	wait:
		for {
			// Reports are heard, and the kernel asked for them, only while
			// no look is due: a busy database is looked at every
			// walWatchInterval anyway, and an event per write of its WAL
			// would cost more than the looks (three times the CPU at one
			// row a transaction, measured).
			var heard <-chan struct{}
			if !lookDue {
				heard = notes
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				break wait
			case <-heard:
				sub.mute()
				if !dirty {
					dirty = true
					tick.Reset(time.Until(lastSync.Add(db.MonitorInterval)))
				}
				// Look now, or a walWatchInterval after the last look.
				look.Reset(time.Until(lastLook.Add(lookEvery)))
				lookDue = true
			case <-look.C:
				lastLook, lookDue = time.Now(), false
				full, pending := db.walFull(&seen)
				if notes != nil && !pending && !full {
					// Going quiet: listen again, then look once more, for
					// a write between the look and the listen.
					if err := sub.listen(); err != nil {
						db.Logger.Warn("cannot watch the database's directory; looking at its WAL every 25 ms instead", "db", db.path, "error", err)
						notes = nil
					} else {
						full, pending = db.walFull(&seen)
					}
				}
				if (notes == nil || pending) && sub != nil {
					sub.mute()
				}
				if notes == nil || pending {
					look.Reset(lookEvery) // polling, or work pending: look again
					lookDue = true
				}
				if pending && !dirty {
					dirty = true
					tick.Reset(time.Until(lastSync.Add(db.MonitorInterval)))
				}
				if full {
					break wait
				}
			}
		}
	}
}

// idleSyncEvery is how often a monitor with a Notifier syncs a database
// that reports no change: for the checkpoint interval's checkpoint of a
// WAL left with frames, and as a backstop.
func (db *DB) idleSyncEvery() time.Duration {
	if db.CheckpointInterval > 0 {
		return min(db.CheckpointInterval, idleBackstop)
	}
	return idleBackstop
}

// errDBNotReady means the database file does not exist (yet).
var errDBNotReady = errors.New("database not ready")

// Sync copies new committed WAL frames into the shadow WAL, starting a new
// generation or shadow index when needed, then checkpoints per the policy.
func (db *DB) Sync(ctx context.Context) error {
	db.mu.Lock()
	start := time.Now()
	err := db.syncLocked(ctx)
	if !errors.Is(err, errDBNotReady) {
		db.stats.Syncs++
		db.stats.SyncTime += time.Since(start)
		if err != nil {
			db.stats.SyncErrs++
		}
	}
	db.recordSync(err)
	db.mu.Unlock()
	if err != nil {
		return err
	}
	return db.checkpointIfNeeded(ctx)
}

// reopenAfterFailedSyncs is how many syncs in a row may fail before the
// engine drops its connections and opens the database afresh, which
// re-checks the WAL's continuity and starts a new generation if it broke:
// an error that a new generation cures is never retried forever.
const reopenAfterFailedSyncs = 3

// recordSync keeps the failure streak of syncs. Caller holds mu.
func (db *DB) recordSync(err error) {
	if err == nil || errors.Is(err, errDBNotReady) || errors.Is(err, context.Canceled) {
		if err == nil {
			db.failedSyncs, db.failingSince, db.lastSyncErr = 0, time.Time{}, nil
		}
		return
	}
	if db.failedSyncs == 0 {
		db.failingSince = time.Now()
	}
	db.failedSyncs++
	db.lastSyncErr = err
	if db.failedSyncs%reopenAfterFailedSyncs == 0 && db.conns != nil {
		db.Logger.Warn("syncs keep failing; reopening the database", "db", db.path, "failed_syncs", db.failedSyncs, "error", err)
		if cerr := db.closeConns(); cerr != nil {
			db.Logger.Warn("closing the database's connections", "db", db.path, "error", cerr)
		}
		if db.shadow != nil {
			db.newGenReason = fmt.Sprintf("%d syncs in a row failed (last: %v)", db.failedSyncs, err)
		}
	}
}

func (db *DB) syncLocked(ctx context.Context) error {
	if err := db.checkReplaced(); err != nil {
		return err
	}
	if err := db.init(ctx); err != nil {
		return err
	}
	if !db.started {
		return db.startLocked(ctx)
	}
	if err := db.acquireRead(ctx); err != nil {
		return err
	}
	return db.copyWAL(ctx)
}

// acquireRead opens our read transaction if none is open. The copy that
// follows reads the WAL at least up to the new snapshot, and records where
// it ended as readFloor. Caller holds mu.
func (db *DB) acquireRead(ctx context.Context) error {
	if db.conns.readHeld {
		return nil
	}
	db.readFloor = Pos{}
	return db.conns.acquireRead(ctx)
}

// readBehind reports whether the shadow WAL holds a frame past our read
// transaction's snapshot, the condition for advanceRead. Caller holds mu.
func (db *DB) readBehind() bool {
	end := db.shadowEnd()
	return db.conns.readHeld && !db.readFloor.IsZero() && db.readFloor.Generation == end.Generation && db.readFloor.Less(end)
}

// checkReplaced notices a database file, -wal or -shm deleted or replaced
// under the engine: its connections would keep the old files open, write
// where nobody reads and guard nothing. It closes them without a
// checkpoint; the next init opens the files now at the paths, and the next
// copy starts a new generation.
func (db *DB) checkReplaced() error {
	if db.files == nil {
		return nil
	}
	which := db.files.replaced(db.path)
	if which == "" {
		return nil
	}
	reason := "the " + which + " was deleted or replaced behind litestream's back"
	db.Logger.Warn(reason+"; reopening the database and starting a new generation", "db", db.path)
	if err := db.closeConns(); err != nil {
		db.Logger.Warn("closing the database's connections", "db", db.path, "error", err)
	}
	if db.shadow != nil {
		db.newGenReason = reason
	}
	return nil
}

// init opens the database on first use and recovers the generation.
func (db *DB) init(ctx context.Context) error {
	if db.conns != nil {
		return nil
	}
	if _, err := os.Stat(db.path); errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%w: %s does not exist yet", errDBNotReady, db.path)
	} else if err != nil {
		return fmt.Errorf("stat database: %w", err)
	}
	conns, err := openDBConns(ctx, db.path, func(from string) {
		db.Logger.Warn("database was in "+from+" journal mode; switched it to WAL", "db", db.path)
	})
	if err != nil {
		return err
	}
	pageSize, err := conns.pageSize(ctx)
	if err != nil {
		conns.close()
		return err
	}
	// Opened after the connections, so that the -wal and -shm exist.
	files, err := openDBFiles(db.path)
	if err != nil {
		conns.close()
		return err
	}
	db.conns, db.files, db.pageSize = conns, files, pageSize
	db.ckpt.last = time.Now() // the interval counts from the start

	if db.shadow != nil {
		db.Logger.Info("database reopened", "db", db.path, "generation", db.generation)
		return nil // the next copy checks continuity
	}
	// Recover the generation from the meta directory, if any.
	gen, err := readGenerationFile(db.metaPath)
	if err != nil {
		db.Logger.Warn("cannot read generation file; a new generation will start", "db", db.path, "error", err)
	}
	if gen != "" {
		s, err := openShadowWAL(db.shadowDir(gen))
		if err != nil {
			db.Logger.Info("no usable shadow WAL for generation "+gen, "db", db.path, "error", err)
		} else {
			db.generation, db.shadow = gen, s
		}
	}
	db.Logger.Info("database opened", "db", db.path, "generation", db.generation, "page_size", pageSize)
	return nil
}

// copyWAL checks that the WAL continues the shadow WAL and copies the new
// committed frames. Any loss of continuity starts a new generation.
func (db *DB) copyWAL(ctx context.Context) error {
	if err := db.copyWALFrames(ctx); err != nil {
		return err
	}
	if db.readFloor.IsZero() && db.conns.readHeld {
		db.readFloor = db.shadowEnd()
	}
	return nil
}

// copyWALFrames is copyWAL without the read floor bookkeeping. What it
// copies is bounded by SQLite's wal-index: the frames it counts as
// committed (invariant 3 of db_files.go). Any loss of continuity, or a
// disagreement between the WAL, the wal-index and the shadow WAL, starts a
// new generation.
func (db *DB) copyWALFrames(ctx context.Context) error {
	wal, hdr, _, err := db.openWAL(ctx)
	if err != nil {
		return err
	}
	defer func() { wal.Close() }() // the WAL may be reopened below
	idx, err := db.readWALIndexHeader()
	if err != nil {
		return err
	}
	if !idx.describes(hdr) && !db.conns.writeHeld {
		// A writer restarted the WAL in the wal-index and never committed
		// in the new WAL (it may not even have written its header): one
		// write of ours completes the restart.
		wal.Close()
		if err := db.conns.bumpSeq(ctx, false); err != nil {
			return err
		}
		if wal, hdr, _, err = db.openWAL(ctx); err != nil {
			return err
		}
		if idx, err = db.readWALIndexHeader(); err != nil {
			return err
		}
	}
	db.walIndexAgrees = false
	if !idx.describes(hdr) {
		return nil // nothing in the WAL file is known to be committed
	}
	end, sum := idx.committedEnd(hdr), idx.frameCksum
	switch {
	case db.shadow == nil:
		err = db.newGeneration(ctx, wal, hdr, end, sum, "no generation yet")
	case db.newGenReason != "":
		reason := db.newGenReason
		db.newGenReason = ""
		err = db.newGeneration(ctx, wal, hdr, end, sum, reason)
	case !hdr.SameWAL(db.shadow.Header()):
		if db.restartAllowed && int(hdr.PageSize) == int(db.shadow.Header().PageSize) && hdr.Salt1 == db.shadow.Header().Salt1+1 {
			// Our checkpoint copied every frame of the old WAL under the
			// write lock; this is the restart that followed it.
			err = db.nextIndex(ctx, wal, hdr, end, sum)
			break
		}
		err = db.newGeneration(ctx, wal, hdr, end, sum, fmt.Sprintf("WAL header changed (checkpoint sequence %d to %d, salt %08x to %08x): the WAL was restarted or rewritten outside of litestream, for example by a checkpoint while litestream was stopped",
			db.shadow.Header().CheckpointSeq, hdr.CheckpointSeq, db.shadow.Header().Salt1, hdr.Salt1))
	case !db.shadow.Matches(wal):
		err = db.newGeneration(ctx, wal, hdr, end, sum, "WAL frames differ from the shadow WAL: the WAL was overwritten outside of litestream")
	case end < db.shadow.Size():
		fs := hdr.FrameSize()
		err = db.newGeneration(ctx, wal, hdr, end, sum, fmt.Sprintf("SQLite's wal-index counts %d committed WAL frames, the shadow WAL holds %d",
			(end-walformat.HeaderSize)/fs, (db.shadow.Size()-walformat.HeaderSize)/fs))
	default:
		err = db.appendWAL(wal, end, sum)
		if errors.Is(err, errCommittedFrames) && db.shadow.Size() > walformat.HeaderSize {
			err = db.newGeneration(ctx, wal, hdr, end, sum, err.Error())
		}
	}
	db.walIndexAgrees = err == nil
	return err
}

// readWALIndexHeader reads SQLite's wal-index header. Without the write
// lock a writer may be updating it, which takes microseconds, or a
// connection initialising it, which a writer descheduled mid-way (a loaded
// machine, the race detector) can stretch to milliseconds: it is read
// again, at once walIndexTries times, then every millisecond up to
// walIndexWait, until its two copies agree. Caller holds mu.
func (db *DB) readWALIndexHeader() (walIndexHeader, error) {
	var deadline time.Time
	for try := 0; ; try++ {
		idx, err := db.files.readWALIndexHeader()
		if !errors.Is(err, errWALIndexBusy) || (try > walIndexTries && time.Now().After(deadline)) {
			if err != nil {
				return walIndexHeader{}, fmt.Errorf("read SQLite's wal-index (%s-shm): %w", db.path, err)
			}
			return idx, nil
		}
		switch {
		case try < walIndexTries:
			runtime.Gosched()
		case try == walIndexTries:
			deadline = time.Now().Add(walIndexWait)
			fallthrough
		default:
			time.Sleep(time.Millisecond)
		}
	}
}

// walIndexTries and walIndexWait bound the reads of a wal-index header
// being updated.
const (
	walIndexTries = 1000
	walIndexWait  = 100 * time.Millisecond
)

// appendWAL copies frames and signals replicas when committed bytes grew.
func (db *DB) appendWAL(wal io.ReaderAt, end int64, sum [2]uint32) error {
	added, err := db.shadow.Append(wal, end, sum, db.conns != nil && db.conns.writeHeld)
	if err != nil {
		return fmt.Errorf("copy WAL to shadow WAL: %w", err)
	}
	if added > 0 {
		db.stats.WALBytes += added
		db.marks.add(Pos{Generation: db.generation, Index: db.shadow.Index(), Offset: db.shadow.Size()}, time.Now())
		db.notifyChanged()
	}
	return nil
}

// openWAL opens the WAL and reads its header, writing a frame first when the
// WAL is empty so that there is a header to follow.
func (db *DB) openWAL(ctx context.Context) (*os.File, walformat.Header, int64, error) {
	f, hdr, size, err := readWALHeader(db.WALPath())
	if err == nil || !errors.Is(err, errNoWALHeader) {
		return f, hdr, size, err
	}
	if db.conns.writeHeld {
		// A write inside our write-lock transaction would be rolled back.
		return nil, walformat.Header{}, 0, errors.New("WAL has no valid header")
	}
	// An empty or missing WAL (after a TRUNCATE checkpoint): write one row
	// so that SQLite writes a header.
	if err := db.conns.bumpSeq(ctx, false); err != nil {
		return nil, walformat.Header{}, 0, err
	}
	f, hdr, size, err = readWALHeader(db.WALPath())
	if errors.Is(err, errNoWALHeader) {
		return nil, walformat.Header{}, 0, errors.New("WAL has no valid header even after a write")
	}
	return f, hdr, size, err
}

// errNoWALHeader means the WAL is missing, empty or has no valid header.
var errNoWALHeader = errors.New("no WAL header")

// readWALHeader opens a WAL file and parses its header.
func readWALHeader(path string) (*os.File, walformat.Header, int64, error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil, walformat.Header{}, 0, errNoWALHeader
	} else if err != nil {
		return nil, walformat.Header{}, 0, fmt.Errorf("open WAL: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, walformat.Header{}, 0, fmt.Errorf("stat WAL: %w", err)
	}
	buf := make([]byte, walformat.HeaderSize)
	if fi.Size() >= walformat.HeaderSize {
		if _, err := f.ReadAt(buf, 0); err != nil {
			f.Close()
			return nil, walformat.Header{}, 0, fmt.Errorf("read WAL header: %w", err)
		}
		if hdr, err := walformat.ParseHeader(buf); err == nil {
			return f, hdr, fi.Size(), nil
		}
	}
	f.Close()
	return nil, walformat.Header{}, 0, errNoWALHeader
}

// newGeneration starts a generation: a new name, a shadow WAL at index 0
// that copies the whole current WAL. Replicas notice the new generation and
// take a snapshot.
func (db *DB) newGeneration(ctx context.Context, wal io.ReaderAt, hdr walformat.Header, end int64, sum [2]uint32, reason string) error {
	gen := newGenerationName()
	s, err := createShadowWAL(db.shadowDir(gen), 0, hdr)
	if err != nil {
		return fmt.Errorf("start generation: %w", err)
	}
	if err := writeGenerationFile(db.metaPath, gen); err != nil {
		s.Close()
		return fmt.Errorf("start generation: %w", err)
	}
	old := db.generation
	if db.shadow != nil {
		db.shadow.Close()
	}
	db.generation, db.shadow = gen, s
	db.restartAllowed = false
	db.marks = copyMarks{}
	db.stats.Generations++
	db.stats.LastNewGenCause = reason
	db.Logger.Info("new generation", "db", db.path, "generation", gen, "previous", old, "reason", reason)
	db.removeOldGenerations(gen)
	if err := db.appendWAL(wal, end, sum); err != nil {
		return err
	}
	db.notifyChanged()
	return nil
}

// nextIndex rolls the shadow WAL over to the next index after a WAL restart.
func (db *DB) nextIndex(ctx context.Context, wal io.ReaderAt, hdr walformat.Header, end int64, sum [2]uint32) error {
	if db.shadow.Index() >= MaxIndex {
		return db.newGeneration(ctx, wal, hdr, end, sum, "shadow WAL index limit reached")
	}
	// Replicas read earlier index files by path, so the old file stays.
	if err := db.shadow.startIndex(db.shadow.Index()+1, hdr); err != nil {
		return err
	}
	db.restartAllowed = false
	db.Logger.Debug("shadow WAL rolled over", "db", db.path, "generation", db.generation, "index", FormatIndex(db.shadow.Index()))
	return db.appendWAL(wal, end, sum)
}

// removeOldGenerations deletes the shadow WALs of other generations.
func (db *DB) removeOldGenerations(keep string) {
	dir := filepath.Join(db.metaPath, "generations")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if e.Name() != keep && IsGeneration(e.Name()) {
			if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
				db.Logger.Warn("cannot remove old shadow WAL", "db", db.path, "error", err)
			}
		}
	}
}

// notifyChanged wakes replicas waiting for new WAL data. Caller holds mu.
func (db *DB) notifyChanged() {
	close(db.changed)
	db.changed = make(chan struct{})
}

// shadowPos returns the current generation and the committed end of the
// shadow WAL, and a channel closed at the next change.
func (db *DB) shadowPos() (Pos, <-chan struct{}) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.shadowEnd(), db.changed
}

// shadowEnd returns the generation and the shadow WAL's committed end, or
// the zero Pos before the first generation. Caller holds mu.
func (db *DB) shadowEnd() Pos {
	if db.shadow == nil {
		return Pos{}
	}
	return Pos{Generation: db.generation, Index: db.shadow.Index(), Offset: db.shadow.Size()}
}

// Stats returns a copy of the counters.
func (db *DB) Stats() DBStats {
	db.mu.Lock()
	defer db.mu.Unlock()
	st := db.stats
	st.FailedSyncs, st.FailingSince, st.LastSyncErr = db.failedSyncs, db.failingSince, db.lastSyncErr
	if db.shadow != nil {
		st.Generation, st.ShadowIndex, st.ShadowSize = db.generation, db.shadow.Index(), db.shadow.Size()
	}
	return st
}

// ReplicaLag returns how long ago the oldest committed transaction that a
// replica at pos does not have yet was copied from the WAL; 0 when the
// replica has everything.
func (db *DB) ReplicaLag(pos Pos, now time.Time) time.Duration {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.shadow == nil || db.holdsEndLocked(pos) {
		return 0
	}
	at, ok := db.marks.firstAfter(pos)
	if !ok {
		return 0
	}
	return now.Sub(at)
}

// holdsEndLocked reports whether a replica at pos holds every commit of the
// shadow WAL: it is at the end, or the current index holds no commit yet
// (only its header) and pos is at that index's start or at the end of the
// complete index before it. Caller holds mu; db.shadow is not nil.
func (db *DB) holdsEndLocked(pos Pos) bool {
	end := db.shadowEnd()
	if pos == end {
		return true
	}
	if pos.Generation != end.Generation || end.Offset != walformat.HeaderSize {
		return false
	}
	switch pos.Index {
	case end.Index:
		return pos.Offset == 0
	case end.Index - 1:
		size, err := db.shadow.FileSize(pos.Index)
		return err == nil && size == pos.Offset
	}
	return false
}

// caughtUp reports whether a replica at pos holds every commit of the
// shadow WAL and, with it, a channel closed at the next change: the two
// are taken together, so that no copy between them goes unseen.
func (db *DB) caughtUp(pos Pos) (bool, <-chan struct{}) {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.shadow != nil && db.holdsEndLocked(pos), db.changed
}

// readGenerationFile reads <meta>/generation; "" when absent.
func readGenerationFile(metaPath string) (string, error) {
	b, err := os.ReadFile(filepath.Join(metaPath, "generation"))
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	gen := strings.TrimSpace(string(b))
	if !IsGeneration(gen) {
		return "", fmt.Errorf("generation file holds %q, not a generation name", gen)
	}
	return gen, nil
}

// writeGenerationFile writes <meta>/generation atomically.
func writeGenerationFile(metaPath, gen string) error {
	tmp := filepath.Join(metaPath, "generation.tmp")
	if err := os.WriteFile(tmp, []byte(gen+"\n"), 0o644); err != nil {
		return fmt.Errorf("write generation file: %w", err)
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("sync generation file: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(metaPath, "generation")); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("write generation file: %w", err)
	}
	return SyncDir(metaPath)
}
