package litestream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/litestream-go/litestream/internal/walformat"
)

// checkpointIfNeeded applies the checkpoint policy: a PASSIVE checkpoint
// when the WAL holds MinCheckpointPageN pages, or every CheckpointInterval
// when it holds more than our own one-frame write. There is no blocking
// tier: v0.3's RESTART at MaxCheckpointPageN stalled every writer behind a
// long reader. At MaxCheckpointPageN the WAL file is shrunk instead when it
// restarts.
func (db *DB) checkpointIfNeeded(ctx context.Context) error {
	db.mu.Lock()
	if db.shadow == nil {
		db.mu.Unlock()
		return nil
	}
	pages := db.shadowPages()
	minPages := db.ckpt.minPages(db.generation, db.shadow.Index(), db.checkpointPageN())
	due := (db.MinCheckpointPageN > 0 && pages >= minPages) ||
		(db.CheckpointInterval > 0 && pages > 1 && time.Since(db.ckpt.last) >= db.CheckpointInterval)
	putOff := db.ckpt.putOff
	db.mu.Unlock()
	if !due {
		return nil
	}
	// Never checkpoint while a snapshot reads the database file.
	if !db.ckptMu.TryLock() {
		return nil
	}
	defer db.ckptMu.Unlock()
	shrink := db.MaxCheckpointPageN > 0 && pages >= db.MaxCheckpointPageN
	return db.checkpoint(ctx, shrink, shrink || putOff >= maxCheckpointPutOffs)
}

// maxCheckpointPutOffs is how many policy checkpoints in a row may give up
// on the write lock (see checkpointLocked) before one waits for it.
const maxCheckpointPutOffs = 8

// Checkpoint copies the WAL to its end and runs a PASSIVE checkpoint while
// holding the database's write lock, so no transaction can slip in between
// the last copy and the checkpoint. If every frame was backfilled, it then
// makes the write that restarts the WAL and copies the new header into the
// next shadow index. shrink asks SQLite to truncate the WAL file on restart.
//
// Why this is safe: SQLite restarts a WAL only when a checkpoint backfilled
// all of it and no reader holds a WAL read mark. Our read transaction is
// re-opened before the write lock is released, so at most one restart can
// follow this checkpoint, and only before any other frame is appended to
// the old WAL; copyWAL accepts exactly that one restart as a rollover.
func (db *DB) Checkpoint(ctx context.Context, shrink bool) (err error) {
	db.ckptMu.Lock() // never while a snapshot reads the database file
	defer db.ckptMu.Unlock()
	return db.checkpoint(ctx, shrink, true)
}

// checkpoint is Checkpoint; unless patient, it gives up when the write lock
// stays taken (see checkpointLocked).
func (db *DB) checkpoint(ctx context.Context, shrink, patient bool) (err error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if err := db.checkReplaced(); err != nil {
		return err
	}
	if err := db.init(ctx); err != nil {
		return err
	}
	if !db.started {
		if err := db.startLocked(ctx); err != nil {
			return err
		}
	}
	return db.checkpointLocked(ctx, shrink, patient)
}

// startLocked is the first sync of a process. It takes the write lock
// before the read lock and copies the WAL to its end, so the same argument
// as for Checkpoint holds: with our read transaction open before the write
// lock is released, at most one WAL restart can follow, and only if no
// frame was appended to the old WAL. A WAL that the previous process (killed
// between its checkpoint and the restart, say) had fully checkpointed is
// thus rolled over like any other instead of starting a new generation,
// provided the shadow WAL holds every frame the wal-index counts.
func (db *DB) startLocked(ctx context.Context) error {
	ctx = context.WithoutCancel(ctx) // short, and must not stop half way through the lock dance
	// An empty WAL (truncated while we were away) gets a header first:
	// under the write lock our own write would be rolled back.
	f, _, _, err := db.openWAL(ctx)
	if err != nil {
		return err
	}
	f.Close()
	if err := db.conns.lockWrite(ctx); err != nil {
		return err
	}
	err = func() error {
		if err := db.acquireRead(ctx); err != nil {
			return err
		}
		return db.copyWAL(ctx)
	}()
	if uerr := db.unlockWrite(ctx); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	db.started, db.restartAllowed = true, db.walIndexAgrees
	return nil
}

// checkpointLocked runs the checkpoint. Caller holds mu.
//
// Under the write lock no transaction can commit, so the copy made there
// reaches exactly the wal-index's committed end, and the checkpoint that
// follows counts the same frames: only then may the WAL restart as a
// rollover (invariant 3 of the shadow WAL). The copy is durable before the
// lock is released (unlockWrite), and our read transaction is open again
// before it is, so at most one restart can follow.
//
// Unless patient, it waits for the write lock only as long as retryBusy
// spins (lockSpin), and otherwise puts the checkpoint off to the next sync:
// a long wait ends with a large copy under the lock, which holds the
// application's commits longer (see docs/performance.md, "checkpoint.go").
func (db *DB) checkpointLocked(ctx context.Context, shrink, patient bool) (err error) {
	ctx = context.WithoutCancel(ctx) // short, and must not stop half way through the lock dance
	start := time.Now()
	db.ckpt.last = start
	db.restartAllowed = false
	defer func() {
		db.stats.Checkpoints++
		db.stats.CheckpointTime += time.Since(start)
		if err != nil {
			db.stats.CheckpointErrs++
		}
	}()

	if err := db.acquireRead(ctx); err != nil {
		return err
	}
	if err := db.copyWAL(ctx); err != nil { // most bytes, before blocking writers
		return err
	}
	if held, err := db.checkpointBeforeLock(ctx); err != nil || held {
		return err
	}
	if patient {
		if err := db.conns.lockWrite(ctx); err != nil {
			return err
		}
	} else if ok, err := db.conns.tryLockWrite(ctx, lockSpin); err != nil {
		return err
	} else if !ok {
		db.ckpt.putOff++
		db.stats.CheckpointsPutOff++
		db.Logger.Debug("checkpoint put off: the application kept the write lock", "db", db.path, "times_in_a_row", db.ckpt.putOff)
		return nil
	}
	db.ckpt.putOff = 0
	locked := time.Now()
	// Named results, so that an unlock error is not overwritten by the
	// function's own.
	res, err := func() (res ckptResult, err error) {
		defer func() {
			if uerr := db.unlockWrite(ctx); uerr != nil && err == nil {
				err = uerr
			}
		}()
		if err := db.acquireRead(ctx); err != nil {
			return ckptResult{}, err
		}
		if err := db.copyWAL(ctx); err != nil {
			return ckptResult{}, err
		}
		// The copy's fsync runs alongside the checkpoint
		// (shadowWAL.fsyncPending); it ends before the lock is released.
		synced := make(chan error, 1)
		go func() { synced <- db.shadow.fsyncPending() }()
		defer func() {
			if serr := <-synced; serr != nil && err == nil {
				err = serr
			}
		}()
		if err := db.conns.releaseRead(ctx); err != nil {
			return ckptResult{}, err
		}
		res, err = db.conns.checkpointPassive(ctx)
		// Re-take the read lock before other writers can run.
		if rerr := db.acquireRead(ctx); rerr != nil {
			return ckptResult{}, rerr
		}
		return res, err
	}()
	held := time.Since(locked)
	if held > db.stats.MaxLockHeld {
		db.stats.MaxLockHeld = held
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	db.Logger.Debug("checkpoint", "db", db.path, "frames", res.walFrames, "complete", res.complete(), "lock_held", held)
	// Invariant 3 of the shadow WAL: the restart that follows a complete
	// checkpoint is accepted as a rollover only if the shadow holds every
	// frame SQLite counts as committed, by the same count.
	if res.complete() && res.walFrames > 0 && (!db.walIndexAgrees || res.walFrames != db.shadowPages()) {
		db.newGenReason = fmt.Sprintf("a checkpoint counted %d committed WAL frames where the shadow WAL holds %d", res.walFrames, db.shadowPages())
		return fmt.Errorf("checkpoint: %s; a new generation starts", db.newGenReason)
	}
	if !res.complete() || res.walFrames == 0 {
		db.ckpt.block(db.generation, db.shadow.Index(), db.shadowPages())
		return nil
	}
	db.ckpt.blocked = ckptBlocked{}
	db.restartAllowed = true
	if err := db.conns.bumpSeq(ctx, shrink); err != nil {
		return err
	}
	return db.copyWAL(ctx)
}

// preCheckpointRounds bounds the PASSIVE checkpoints before the write lock,
// and preCheckpointFrames is how many frames the application must have
// written during one for another to pay (see docs/performance.md,
// "checkpoint.go").
const (
	preCheckpointRounds = 3
	preCheckpointFrames = 16
)

// checkpointBeforeLock copies most pages into the database while the
// application goes on writing, so that the checkpoint under the write lock
// is left with the last few frames, and the lock is held briefly (see
// docs/performance.md, "checkpoint.go"). Each round moves our read transaction to the WAL's committed end
// (the only way past our own read mark), copies the WAL up to at least
// that snapshot, and only then runs a PASSIVE checkpoint; another round
// follows when the application wrote at least preCheckpointFrames frames
// meanwhile.
//
// Invariant: a checkpoint, ours or the application's, can copy into the
// database file only frames at or below our read transaction's snapshot,
// and the shadow WAL holds every such frame before mu is released (here,
// before the checkpoint even runs). So a snapshot, which reads the
// database file after a sync, never holds a page of a commit that its
// index's segments lack.
//
// It reports held when a reader of the application holds the checkpoint
// back: the one under the lock would stop short too, so the caller does
// not take it. Caller holds mu.
func (db *DB) checkpointBeforeLock(ctx context.Context) (held bool, err error) {
	for round := 0; round < preCheckpointRounds && db.readBehind(); round++ {
		before := db.shadowPages() // at or below the new snapshot
		if err := db.conns.advanceRead(ctx); err != nil {
			return false, err
		}
		db.readFloor = Pos{} // a new snapshot: the next copy's end is its floor
		if err := db.copyWAL(ctx); err != nil {
			return false, err
		}
		res, err := db.conns.checkpointPassive(ctx)
		if err != nil {
			return false, err
		}
		db.stats.CheckpointRounds++
		if !res.busy && res.done < before {
			db.Logger.Debug("checkpoint held back by a reader", "db", db.path, "frames", res.walFrames, "checkpointed", res.done)
			db.ckpt.block(db.generation, db.shadow.Index(), db.shadowPages())
			return true, nil
		}
		if res.busy || res.walFrames < 0 || round == preCheckpointRounds-1 {
			return false, nil
		}
		fs := db.shadow.Header().FrameSize()
		if !db.walHasFrame(db.shadow.Size() + (preCheckpointFrames-1)*fs) {
			return false, nil
		}
		if err := db.copyWAL(ctx); err != nil {
			return false, err
		}
	}
	return false, nil
}

// walHasFrame reports whether the WAL holds a frame of the shadow WAL's
// WAL at offset off. Caller holds mu.
func (db *DB) walHasFrame(off int64) bool {
	f, err := os.Open(db.WALPath())
	if err != nil {
		return false
	}
	defer f.Close()
	return walformat.HasFrame(f, db.shadow.Header(), off)
}

// checkpointState is what the checkpoint policy remembers between syncs.
// DB.mu guards it. The rules it keeps:
//  1. last is the time of our last checkpoint attempt, or of the DB's
//     open: the CheckpointInterval tier counts from it.
//  2. putOff counts the policy checkpoints in a row that gave up on the
//     write lock; taking the lock resets it, and once it reaches
//     maxCheckpointPutOffs the next policy checkpoint waits for the lock.
//  3. blocked is where a checkpoint last stopped short of the WAL's end
//     (a reader held it back). It counts only for that generation and
//     shadow index, and a complete checkpoint clears it.
type checkpointState struct {
	last    time.Time
	putOff  int
	blocked ckptBlocked
}

// ckptBlocked records where a checkpoint last failed to complete.
type ckptBlocked struct {
	generation string
	index      int
	pages      int
}

// block records that a checkpoint at pages pages of the shadow index of
// generation gen did not complete.
func (s *checkpointState) block(gen string, index, pages int) {
	s.blocked = ckptBlocked{generation: gen, index: index, pages: pages}
}

// minPages returns the page count at which the page tier makes a
// checkpoint due in shadow index index of generation gen: threshold, or,
// after a checkpoint that a reader kept from completing there, another
// threshold's worth of pages past it. Trying again at every sync would
// take the write lock, and delay the application's commits, for nothing
// while the reader lasts.
func (s *checkpointState) minPages(gen string, index, threshold int) int {
	if b := s.blocked; b.pages > 0 && b.generation == gen && b.index == index {
		return b.pages + threshold
	}
	return threshold
}

// checkpointPageN returns the page count that makes a checkpoint due:
// MinCheckpointPageN, or LargeTxCheckpointPageN while the current shadow
// index averages largeTxPages pages or more per transaction. Caller holds
// mu.
func (db *DB) checkpointPageN() int {
	n := db.MinCheckpointPageN
	if db.LargeTxCheckpointPageN > n && db.shadow != nil {
		if c := db.shadow.Commits(); c > 0 && db.shadowPages() >= largeTxPages*c {
			n = db.LargeTxCheckpointPageN
		}
	}
	return n
}

// shadowPages returns the number of frames in the current shadow index.
// Caller holds mu.
func (db *DB) shadowPages() int {
	return int((db.shadow.Size() - walformat.HeaderSize) / db.shadow.Header().FrameSize())
}

// unlockWrite releases the write lock once the shadow WAL holds, durably,
// every frame copied under it: after the lock, the WAL may restart.
func (db *DB) unlockWrite(ctx context.Context) error {
	var serr error
	if db.shadow != nil {
		serr = db.shadow.fsyncPending()
	}
	return errors.Join(serr, db.conns.unlockWrite(ctx))
}
