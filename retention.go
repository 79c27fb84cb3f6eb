package litestream

import (
	"context"
	"fmt"
	"time"
)

// EnforceRetention keeps the snapshots newer than the retention period and
// whatever they need: in each generation, snapshots and segments older than
// the oldest kept snapshot go; generations with no kept snapshot and no
// recent segment go, except the current one, which gets a new snapshot
// instead so that it always has one.
//
// Everything it deletes is older than a kept snapshot that is already in
// the replica (the rule at the top of replica_sync.go). So the current
// generation goes first: its new snapshot, when one is needed, is written
// before anything in any generation is deleted.
//
// A run that fails is due again at the next sync: the replica's outage
// ends only when the step that failed succeeds (see Replica.run).
func (r *Replica) EnforceRetention(ctx context.Context) (err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	defer func() {
		if err == nil {
			r.lastRetain = time.Now()
		}
	}()
	if r.Retention <= 0 {
		return nil
	}
	end, _ := r.db.shadowPos()
	if end.IsZero() {
		return errDBNotReady
	}
	cutoff := time.Now().Add(-r.Retention)
	gens, err := r.Client.Generations(ctx)
	if err != nil {
		return fmt.Errorf("retention: list generations: %w", err)
	}
	order := []string{end.Generation}
	for _, gen := range gens {
		if gen != end.Generation {
			order = append(order, gen)
		}
	}
	for _, gen := range order {
		snaps, err := r.Client.Snapshots(ctx, gen)
		if err != nil {
			return fmt.Errorf("retention: list snapshots: %w", err)
		}
		oldestKept := -1
		for _, s := range snaps {
			if !s.CreatedAt.Before(cutoff) && (oldestKept < 0 || s.Index < oldestKept) {
				oldestKept = s.Index
			}
		}
		if oldestKept < 0 && gen == end.Generation {
			// Start the current index over with the new snapshot: if the
			// replica lost files (deleted by hand), segments of that index
			// may be gone too, and the snapshot needs every one of them.
			// restartAt writes what is missing and deletes nothing the
			// database still has.
			if err := r.restartAt(ctx, gen); err != nil {
				return fmt.Errorf("retention: %w", err)
			}
			info, err := r.snapshotLocked(ctx)
			if err != nil {
				return fmt.Errorf("retention: %w", err)
			}
			oldestKept = info.Index
		}
		if oldestKept < 0 {
			// Another engine may be writing this generation (a replica
			// shared by mistake, or a restarted process before its first
			// snapshot): keep it while anything in it is recent.
			recent, err := r.recentSegment(ctx, gen, cutoff)
			if err != nil {
				return err
			}
			if recent {
				continue
			}
			if err := r.Client.DeleteGeneration(ctx, gen); err != nil {
				return fmt.Errorf("retention: delete generation %s: %w", gen, err)
			}
			r.logger().Info("retention: generation deleted", "generation", gen)
			continue
		}
		if err := r.pruneGeneration(ctx, gen, snaps, oldestKept); err != nil {
			return err
		}
	}
	return nil
}

// pruneGeneration deletes the snapshots and segments before index keep.
func (r *Replica) pruneGeneration(ctx context.Context, gen string, snaps []SnapshotInfo, keep int) error {
	for _, s := range snaps {
		if s.Index < keep {
			if err := r.Client.DeleteSnapshot(ctx, gen, s.Index); err != nil {
				return fmt.Errorf("retention: delete snapshot: %w", err)
			}
		}
	}
	segs, err := r.Client.Segments(ctx, gen)
	if err != nil {
		return fmt.Errorf("retention: list segments: %w", err)
	}
	var old []Pos
	for _, s := range segs {
		if s.Index < keep {
			old = append(old, s.Pos())
		}
	}
	if len(old) > 0 {
		if err := r.Client.DeleteSegments(ctx, old); err != nil {
			return fmt.Errorf("retention: delete segments: %w", err)
		}
		r.logger().Info("retention: old WAL segments deleted", "generation", gen, "count", len(old), "before_index", FormatIndex(keep))
	}
	return nil
}

// recentSegment reports whether generation gen has a segment written after
// cutoff.
func (r *Replica) recentSegment(ctx context.Context, gen string, cutoff time.Time) (bool, error) {
	segs, err := r.Client.Segments(ctx, gen)
	if err != nil {
		return false, fmt.Errorf("retention: list segments: %w", err)
	}
	for _, s := range segs {
		if s.CreatedAt.After(cutoff) {
			return true, nil
		}
	}
	return false, nil
}
