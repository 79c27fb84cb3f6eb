package litestream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// run ships the shadow WAL every SyncInterval, and runs the snapshot and
// retention schedules, until ctx ends.
func (r *Replica) run(ctx context.Context) {
	start := time.Now()
	interval := r.SyncInterval
	if interval <= 0 {
		interval = DefaultSyncInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	r.mu.Lock()
	r.lastSnapshot, r.lastValidate = time.Now(), time.Now() // schedules count from the start
	r.mu.Unlock()
	var lastErr string
	cleaned := false
	for {
		err := r.Sync(ctx)
		if err == nil && !cleaned {
			// After the first sync that reached the replica, not before
			// it: with the store unreachable, retries would hold it up.
			r.removeLeftovers(ctx, start)
			cleaned = true
		}
		if err == nil {
			err = r.runSchedules(ctx)
		}
		switch {
		case err == nil:
			if lastErr != "" {
				r.logger().Info("replica sync recovered")
			}
			lastErr = ""
		case ctx.Err() != nil:
			return
		case errors.Is(err, errDBNotReady):
		default:
			if msg := err.Error(); msg != lastErr {
				r.logger().Error("replica sync failed; will retry, the shadow WAL keeps everything until it succeeds", "error", err)
				lastErr = msg
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// runSchedules takes interval snapshots and enforces retention when due.
func (r *Replica) runSchedules(ctx context.Context) error {
	r.mu.Lock()
	snapDue := r.SnapshotInterval > 0 && time.Since(r.lastSnapshot) >= r.SnapshotInterval
	retainDue := r.Retention > 0 && r.RetentionCheckInterval > 0 && time.Since(r.lastRetain) >= r.RetentionCheckInterval
	validateDue := r.ValidationInterval > 0 && time.Since(r.lastValidate) >= r.ValidationInterval
	if validateDue {
		r.lastValidate = time.Now()
	}
	r.mu.Unlock()
	if validateDue {
		// Logged and counted by Validate; a failed validation is not a
		// failed sync.
		_, _ = r.Validate(ctx)
	}
	if snapDue {
		if _, err := r.Snapshot(ctx); err != nil {
			return err
		}
	}
	if retainDue {
		if err := r.EnforceRetention(ctx); err != nil {
			return err
		}
	}
	return nil
}

// Sync ships everything from the replica's position to the end of the
// shadow WAL, one segment per shadow index, and takes the generation's
// first snapshot when the replica has none.
func (r *Replica) Sync(ctx context.Context) (err error) {
	defer func() { r.recordSync(err) }()
	r.mu.Lock()
	defer r.mu.Unlock()
	// Copy the WAL first, so that a commit waits for one sync interval,
	// not a monitor interval and then a sync interval. A failure here is
	// the monitor's to report; the replica ships what the shadow has.
	_ = r.db.copyNow(ctx)
	end, _ := r.db.ShadowPos()
	if end.IsZero() {
		return errDBNotReady
	}
	if r.pos.Generation != end.Generation {
		if err := r.locate(ctx, end); err != nil {
			return err
		}
	}
	if err := r.syncSegments(ctx); err != nil {
		return err
	}
	if r.needSnapshot {
		if _, err := r.snapshotLocked(ctx); err != nil {
			return err
		}
	}
	r.db.removeShadowBefore()
	return nil
}

// locate finds the replica's position in the database's current generation
// from the replica itself: the end of its last segment. A replica that has
// nothing usable there restarts at the shadow's current index.
func (r *Replica) locate(ctx context.Context, end Pos) error {
	gen := end.Generation
	snaps, err := r.Client.Snapshots(ctx, gen)
	if err != nil {
		return fmt.Errorf("list snapshots: %w", err)
	}
	segs, err := r.Client.Segments(ctx, gen)
	if err != nil {
		return fmt.Errorf("list WAL segments: %w", err)
	}
	r.needSnapshot = len(snaps) == 0
	fresh := Pos{Generation: gen, Index: end.Index}
	if len(segs) == 0 {
		r.setPos(fresh)
		return nil
	}
	last := segs[len(segs)-1]
	n, err := r.decodedSize(ctx, last)
	if err != nil {
		// A last segment that cannot be read cannot be continued: start
		// over with a snapshot (safe, if costly, when the cause was only the
		// network).
		r.logger().Warn("cannot read the replica's last segment; taking a new snapshot", "error", err)
		return r.restartAt(ctx, end, segs)
	}
	pos := Pos{Generation: gen, Index: last.Index, Offset: last.Offset + n}
	if r.db.shadowHas(pos) {
		r.setPos(pos)
		r.logger().Info("replica position recovered", "position", pos.String())
		return nil
	}
	r.logger().Warn("replica does not continue the shadow WAL; taking a new snapshot", "replica_pos", pos.String(), "shadow_pos", end.String())
	return r.restartAt(ctx, end, segs)
}

// restartAt makes the replica start over at the shadow's current index with
// a new snapshot. Segments at and after that index would clash with the new
// ones, so they are removed first.
func (r *Replica) restartAt(ctx context.Context, end Pos, segs []SegmentInfo) error {
	var stale []Pos
	for _, s := range segs {
		if s.Index >= end.Index {
			stale = append(stale, s.Pos())
		}
	}
	if len(stale) > 0 {
		if err := r.Client.DeleteSegments(ctx, stale); err != nil {
			return fmt.Errorf("delete stale segments: %w", err)
		}
	}
	r.needSnapshot = true
	r.setPos(Pos{Generation: end.Generation, Index: end.Index})
	return nil
}

// decodedSize downloads a segment and returns its raw length.
func (r *Replica) decodedSize(ctx context.Context, s SegmentInfo) (int64, error) {
	rc, err := r.Client.OpenSegment(ctx, s.Pos())
	if err != nil {
		return 0, fmt.Errorf("read segment %s: %w", SegmentName(s.Index, s.Offset), err)
	}
	defer rc.Close()
	dec, err := r.Codec.NewDecoder(rc)
	if err != nil {
		return 0, fmt.Errorf("read segment %s: %w", SegmentName(s.Index, s.Offset), err)
	}
	n, err := io.Copy(io.Discard, dec)
	if err != nil {
		return 0, fmt.Errorf("read segment %s: %w", SegmentName(s.Index, s.Offset), err)
	}
	return n, nil
}

// syncSegments uploads the shadow WAL from the replica's position to its
// committed end. Caller holds r.mu.
func (r *Replica) syncSegments(ctx context.Context) error {
	for {
		end, _ := r.db.ShadowPos()
		if end.Generation != r.pos.Generation {
			return nil // a new generation started; the next sync locates it
		}
		if r.pos.Index > end.Index {
			return fmt.Errorf("replica position %s is past the shadow WAL end %s", r.pos, end)
		}
		size, err := r.db.shadowFileSize(r.pos.Index)
		if errors.Is(err, os.ErrNotExist) {
			// The shadow file this replica needs is gone (the meta
			// directory was cleaned by hand?): start over from a snapshot.
			r.logger().Warn("shadow WAL file needed by the replica is missing; taking a new snapshot", "replica_pos", r.pos.String())
			segs, lerr := r.Client.Segments(ctx, r.pos.Generation)
			if lerr != nil {
				return fmt.Errorf("list WAL segments: %w", lerr)
			}
			return r.restartAt(ctx, end, segs)
		} else if err != nil {
			return err
		}
		// A header with no committed frame yet is not worth a segment.
		if r.pos.Offset < size && !(r.pos.Offset == 0 && size == WALHeaderSize && r.pos.Index == end.Index) {
			if err := r.uploadSegment(ctx, r.pos, size); err != nil {
				return err
			}
			r.setPos(Pos{Generation: r.pos.Generation, Index: r.pos.Index, Offset: size})
		}
		if r.pos.Index == end.Index {
			return nil
		}
		r.setPos(Pos{Generation: r.pos.Generation, Index: r.pos.Index + 1})
	}
}

// uploadSegment encodes shadow bytes [pos.Offset, end) of pos.Index and
// stores them as one segment.
func (r *Replica) uploadSegment(ctx context.Context, pos Pos, end int64) error {
	f, err := os.Open(r.db.shadowPath(pos.Generation, pos.Index))
	if err != nil {
		return fmt.Errorf("open shadow WAL: %w", err)
	}
	defer f.Close()
	rc := r.Codec.EncodeReader(io.NewSectionReader(f, pos.Offset, end-pos.Offset))
	defer rc.Close()
	if _, err := r.Client.WriteSegment(ctx, pos, rc); err != nil {
		return fmt.Errorf("write segment %s: %w", SegmentName(pos.Index, pos.Offset), err)
	}
	r.statusMu.Lock()
	r.status.WALBytes += end - pos.Offset
	r.statusMu.Unlock()
	return nil
}

func (r *Replica) setPos(p Pos) {
	r.pos = p
	r.statusMu.Lock()
	r.status.Pos = p
	r.statusMu.Unlock()
}

// Pos returns the replica's position: the end of what it holds.
func (r *Replica) Pos() Pos {
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	return r.status.Pos
}

func (r *Replica) recordSync(err error) {
	if errors.Is(err, errDBNotReady) {
		return
	}
	r.statusMu.Lock()
	defer r.statusMu.Unlock()
	if err != nil {
		r.status.LastSyncErr = err
		r.status.LastErrTime = time.Now()
		r.status.SyncErrCount++
		return
	}
	r.status.LastSyncErr = nil
	r.status.LastSync = time.Now()
	r.status.SyncCount++
}
