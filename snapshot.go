package litestream

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"time"
)

// Snapshot stores a snapshot of the database in the replica at the current
// shadow WAL index.
func (r *Replica) Snapshot(ctx context.Context) (SnapshotInfo, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	end, _ := r.db.shadowPos()
	if end.IsZero() {
		return SnapshotInfo{}, errDBNotReady
	}
	if r.pos.Generation != end.Generation {
		if err := r.locate(ctx, end); err != nil {
			return SnapshotInfo{}, err
		}
	}
	return r.snapshotLocked(ctx)
}

// snapshotLocked writes the snapshot. It holds off checkpoints while it
// reads the database file, and first ships every segment up to the shadow
// end, so that the snapshot's index replays from offset 0 to at least every
// frame a checkpoint by another connection could have copied into the file,
// and so that those segments are older than the snapshot. Caller holds r.mu.
func (r *Replica) snapshotLocked(ctx context.Context) (SnapshotInfo, error) {
	db := r.db
	db.ckptMu.RLock()
	defer db.ckptMu.RUnlock()

	db.mu.Lock()
	err := db.syncLocked(ctx)
	db.mu.Unlock()
	if err != nil {
		return SnapshotInfo{}, err
	}
	if err := r.syncSegments(ctx); err != nil {
		return SnapshotInfo{}, err
	}
	end, _ := db.shadowPos()
	if end.Generation != r.pos.Generation || end.Index != r.pos.Index {
		return SnapshotInfo{}, fmt.Errorf("snapshot: replica at %s, shadow at %s; retrying at the next sync", r.pos, end)
	}

	// Read through the engine's own descriptor, never one opened here:
	// closing it would drop SQLite's locks (invariant 1 of db_files.go).
	f, err := db.databaseFile()
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("snapshot: %w", err)
	}
	start := time.Now()
	rc := r.Codec.EncodeReader(io.NewSectionReader(f, 0, math.MaxInt64))
	defer rc.Close()
	info, err := r.Client.WriteSnapshot(ctx, end.Generation, end.Index, rc)
	if err != nil {
		return SnapshotInfo{}, fmt.Errorf("write snapshot %s: %w", SnapshotName(end.Index), err)
	}
	r.needSnapshot = false
	r.lastSnapshot = time.Now()
	r.logger().Info("snapshot written", "generation", end.Generation, "index", FormatIndex(end.Index),
		"stored_bytes", info.Size, "elapsed", time.Since(start).Round(time.Millisecond))
	return info, nil
}

// databaseFile returns the engine's descriptor of the database file, to
// read from and never to close. Should the engine reopen the database
// meanwhile, reads through it fail with os.ErrClosed.
func (db *DB) databaseFile() (*os.File, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.files == nil {
		return nil, errDBNotReady
	}
	return db.files.db, nil
}
