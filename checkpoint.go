package litestream

import (
	"context"
	"fmt"
	"time"
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
	// After a checkpoint that a reader kept from completing, the page
	// count tier waits for another MinCheckpointPageN pages: trying again
	// at every sync would take the write lock, and delay the application's
	// commits, for nothing while the reader lasts.
	minPages := db.MinCheckpointPageN
	if b := db.ckptBlocked; b.pages > 0 && b.generation == db.generation && b.index == db.shadow.Index() {
		minPages = b.pages + db.MinCheckpointPageN
	}
	due := (db.MinCheckpointPageN > 0 && pages >= minPages) ||
		(db.CheckpointInterval > 0 && pages > 1 && time.Since(db.lastCheckpoint) >= db.CheckpointInterval)
	db.mu.Unlock()
	if !due {
		return nil
	}
	// Never checkpoint while a snapshot reads the database file.
	if !db.ckptMu.TryLock() {
		return nil
	}
	defer db.ckptMu.Unlock()
	return db.Checkpoint(ctx, db.MaxCheckpointPageN > 0 && pages >= db.MaxCheckpointPageN)
}

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
	return db.checkpointLocked(ctx, shrink)
}

// startLocked is the first sync of a process. It takes the write lock
// before the read lock and copies the WAL to its end, so the same argument
// as for Checkpoint holds: with our read transaction open before the write
// lock is released, at most one WAL restart can follow, and only if no
// frame was appended to the old WAL. A WAL that the previous process (killed
// between its checkpoint and the restart, say) had fully checkpointed is
// thus rolled over like any other instead of starting a new generation.
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
	if uerr := db.conns.unlockWrite(ctx); err == nil {
		err = uerr
	}
	if err != nil {
		return fmt.Errorf("first sync: %w", err)
	}
	db.started, db.restartAllowed = true, true
	return nil
}

// checkpointLocked runs the checkpoint. Caller holds mu.
func (db *DB) checkpointLocked(ctx context.Context, shrink bool) (err error) {
	ctx = context.WithoutCancel(ctx) // short, and must not stop half way through the lock dance
	start := time.Now()
	db.lastCheckpoint = start
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
	// Most pages, too: with our read transaction moved up to the frames
	// just copied, a PASSIVE checkpoint copies their pages into the
	// database while the application goes on writing, and the checkpoint
	// under the lock is left with the last few frames. That brought the
	// lock and the restart write together under the ~1 ms that a blocked
	// application sleeps before its first retry (its busy handler's next
	// sleeps take it to 3 ms).
	if db.readBehind() {
		if err := db.conns.advanceRead(ctx); err != nil {
			return err
		}
		db.readFloor = Pos{} // a new snapshot: the copy under the lock records it
		res, err := db.conns.checkpointPassive(ctx)
		if err != nil {
			return err
		}
		// Stopped short of what we copied: a reader of the application
		// holds the checkpoint back, and would under the lock too. Do not
		// block the application's writers for nothing; try again later.
		if !res.busy && res.done < db.shadowPages() {
			db.Logger.Debug("checkpoint held back by a reader", "db", db.path, "frames", res.walFrames, "checkpointed", res.done)
			db.ckptBlocked = ckptBlocked{generation: db.generation, index: db.shadow.Index(), pages: db.shadowPages()}
			return nil
		}
	}
	if err := db.conns.lockWrite(ctx); err != nil {
		return err
	}
	locked := time.Now()
	// Named results, so that an unlock error is not overwritten by the
	// function's own.
	res, err := func() (res ckptResult, err error) {
		defer func() {
			if uerr := db.conns.unlockWrite(ctx); uerr != nil && err == nil {
				err = uerr
			}
		}()
		if err := db.acquireRead(ctx); err != nil {
			return ckptResult{}, err
		}
		if err := db.copyWAL(ctx); err != nil {
			return ckptResult{}, err
		}
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
	if !res.complete() || res.walFrames == 0 {
		db.ckptBlocked = ckptBlocked{generation: db.generation, index: db.shadow.Index(), pages: db.shadowPages()}
		return nil
	}
	db.ckptBlocked = ckptBlocked{}
	db.restartAllowed = true
	if err := db.conns.bumpSeq(ctx, shrink); err != nil {
		return err
	}
	return db.copyWAL(ctx)
}

// ckptBlocked records where a checkpoint last failed to complete.
type ckptBlocked struct {
	generation string
	index      int
	pages      int
}

// shadowPages returns the number of frames in the current shadow index.
// Caller holds mu.
func (db *DB) shadowPages() int {
	return int((db.shadow.Size() - WALHeaderSize) / db.shadow.Header().FrameSize())
}
