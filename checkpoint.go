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
	// After a checkpoint of this WAL (one that a reader kept from
	// completing, or a complete one the application has not yet followed
	// with a write that restarts the WAL), both tiers wait for new frames,
	// and the page count tier for another MinCheckpointPageN of them:
	// trying again at every sync would take the write lock, and delay the
	// application's commits, for nothing.
	minPages, last := db.MinCheckpointPageN, 0
	if c := db.lastCkpt; c.generation == db.generation && c.index == db.shadow.Index() {
		minPages, last = c.pages+db.MinCheckpointPageN, c.pages
	}
	due := (db.MinCheckpointPageN > 0 && pages >= minPages) ||
		(db.CheckpointInterval > 0 && pages > max(last, 1) && time.Since(db.lastCheckpoint) >= db.CheckpointInterval)
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
// the last copy and the checkpoint. If every frame was backfilled, the
// application's next write restarts the WAL, and the copy after it moves to
// the next shadow index. shrink asks SQLite to truncate the WAL file on
// restart; the engine then makes that write itself.
//
// Why this is safe: SQLite restarts a WAL only when a checkpoint backfilled
// all of it and no reader holds a WAL read mark. Our read transaction is
// re-opened on the complete WAL before the write lock is released: it does
// not stop the restart, but it stops any later backfill. So at most one
// restart can follow this checkpoint, and only before any other frame is
// appended to the old WAL; copyWAL accepts exactly that one restart as a
// rollover, once the frames copied under the lock are synced.
//
// The application's commits wait for the write lock, and SQLite's busy
// handler sleeps 1, 2, 5 ms and so on between tries: a hold of 2 ms costs a
// waiting commit 3 ms. So the lock is held only to copy the frames committed
// since the copy before it (synced once it is released) and to checkpoint;
// and the engine no longer writes to restart the WAL, which took the lock a
// second time. Under a stream of small transactions the hold went from 1.3
// to 2.5 ms down to about 0.7 ms, most of it SQLite's two fsyncs.
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
	if err := db.conns.lockWrite(ctx, nil); err != nil {
		return err
	}
	err = func() error {
		if err := db.conns.acquireRead(ctx); err != nil {
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

	if err := db.conns.acquireRead(ctx); err != nil {
		return err
	}
	if err := db.copyWAL(ctx); err != nil { // most bytes, before blocking writers
		return err
	}
	held, complete, frames, err := db.checkpointUnderLock(ctx)
	if held > db.stats.MaxLockHeld {
		db.stats.MaxLockHeld = held
	}
	if err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	db.Logger.Debug("checkpoint", "db", db.path, "frames", frames, "complete", complete, "lock_held", held)
	db.lastCkpt = ckptMark{generation: db.generation, index: db.shadow.Index(), pages: db.shadowPages()}
	if !complete || frames == 0 {
		return nil
	}
	db.restartAllowed = true
	if !shrink {
		return nil
	}
	if err := db.conns.bumpSeq(ctx, true); err != nil {
		return err
	}
	return db.copyWAL(ctx)
}

// checkpointUnderLock takes the write lock, copies the frames committed
// since the last copy, checkpoints and releases the lock; then it syncs
// what it copied. It returns how long the lock was held. While it waits for
// the lock it keeps copying (without syncing), so that few frames are left
// to copy under the lock: an application committing back to back leaves the
// lock free only for moments, and it can take tens of milliseconds to get.
func (db *DB) checkpointUnderLock(ctx context.Context) (held time.Duration, complete bool, frames int, err error) {
	db.deferSync = true
	defer func() {
		db.deferSync = false
		// The frames copied must be on disk before the WAL restart that
		// may now follow overwrites them. If they cannot be, the caller
		// leaves restartAllowed false and that restart starts a new
		// generation.
		if serr := db.commitShadow(); err == nil {
			err = serr
		}
	}()
	lastCopy := time.Now()
	var copyErr error
	if err := db.conns.lockWrite(ctx, func() {
		if copyErr == nil && time.Since(lastCopy) >= time.Millisecond {
			copyErr = db.copyWAL(ctx)
			lastCopy = time.Now()
		}
	}); err != nil {
		return 0, false, 0, err
	}
	locked := time.Now()
	defer func() {
		if uerr := db.conns.unlockWrite(ctx); uerr != nil && err == nil {
			err = uerr
		}
		held = time.Since(locked)
	}()
	if copyErr != nil {
		return 0, false, 0, copyErr
	}
	if err := db.copyWAL(ctx); err != nil {
		return 0, false, 0, err
	}
	if err := db.conns.releaseRead(ctx); err != nil {
		return 0, false, 0, err
	}
	complete, frames, err = db.conns.checkpointPassive(ctx)
	// Re-take the read lock before other writers can run.
	if rerr := db.conns.acquireRead(ctx); rerr != nil {
		return 0, false, 0, rerr
	}
	return 0, complete, frames, err
}

// ckptMark records the WAL a checkpoint last ran on, and its size then.
type ckptMark struct {
	generation string
	index      int
	pages      int
}

// shadowPages returns the number of frames in the current shadow index.
// Caller holds mu.
func (db *DB) shadowPages() int {
	return int((db.shadow.Size() - WALHeaderSize) / db.shadow.Header().FrameSize())
}
