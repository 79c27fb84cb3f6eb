package litestream

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// NoIndex means "no index limit" in RestoreOptions.Index.
const NoIndex = -1

// ErrNoBackup means there is nothing to restore: no replica data, no
// generation, or nothing at or before the requested time or index.
var ErrNoBackup = errors.New("no backup to restore from")

// RestoreOptions selects what to restore.
type RestoreOptions struct {
	ReplicaName string    // "" considers every replica
	Generation  string    // "" picks the newest-updated generation
	Index       int       // restore up to and including this shadow WAL index; NoIndex for no limit
	Timestamp   time.Time // zero for the latest state; else the state as of this time
	Parallelism int       // concurrent segment downloads; <= 0 means 8
	Logger      *slog.Logger
	// Progress, if set, is called with the stored bytes downloaded so far
	// and the total planned.
	Progress func(done, total int64)

	// until, when set, restores exactly to this position of its generation
	// (a commit boundary), for validation.
	until *Pos
}

// RestorePlan is what a restore will do: one snapshot, then every segment
// from the snapshot's index up to Target, in (index, offset) order.
type RestorePlan struct {
	Replica    *Replica
	Generation string
	Snapshot   SnapshotInfo
	Segments   []SegmentInfo
	Target     Pos // position of the last segment applied (its start), or the snapshot's
}

// String describes the plan in one line, with hex indexes.
func (p *RestorePlan) String() string {
	var size int64 = p.Snapshot.Size
	for _, s := range p.Segments {
		size += s.Size
	}
	return fmt.Sprintf("replica %s, generation %s, snapshot %s, %d WAL segments up to %s (%d stored bytes)",
		p.Replica.Name, p.Generation, SnapshotName(p.Snapshot.Index), len(p.Segments), p.Target, size)
}

// candidate is one generation that could be restored.
type candidate struct {
	replica   *Replica
	gen       string
	snaps     []SnapshotInfo
	segs      []SegmentInfo
	start     time.Time // oldest snapshot
	updatedAt time.Time // newest object
}

// PlanRestore picks the replica, generation, snapshot and segments to
// restore (SPEC section 4) and checks that the segments form an unbroken
// chain.
func PlanRestore(ctx context.Context, replicas []*Replica, opt RestoreOptions) (*RestorePlan, error) {
	rs, err := filterReplicas(replicas, opt.ReplicaName)
	if err != nil {
		return nil, err
	}
	var cands []candidate
	var earliest time.Time
	for _, r := range rs {
		gens := []string{opt.Generation}
		if opt.Generation == "" {
			if gens, err = r.Client.Generations(ctx); err != nil {
				return nil, fmt.Errorf("replica %s: list generations: %w", r.Name, err)
			}
		} else if !IsGeneration(opt.Generation) {
			return nil, fmt.Errorf("generation %q is not a generation name (16 hex characters)", opt.Generation)
		}
		for _, gen := range gens {
			c, err := loadCandidate(ctx, r, gen)
			if err != nil {
				return nil, err
			}
			if len(c.snaps) == 0 {
				continue
			}
			if earliest.IsZero() || c.start.Before(earliest) {
				earliest = c.start
			}
			if !opt.Timestamp.IsZero() && c.start.After(opt.Timestamp) {
				continue
			}
			if opt.Index != NoIndex && c.snaps[0].Index > opt.Index {
				continue
			}
			cands = append(cands, c)
		}
	}
	if len(cands) == 0 {
		switch {
		case earliest.IsZero() && opt.Generation != "":
			return nil, fmt.Errorf("%w: generation %s has no snapshot in %s", ErrNoBackup, opt.Generation, replicaNames(rs))
		case earliest.IsZero():
			return nil, fmt.Errorf("%w: no generation with a snapshot in %s", ErrNoBackup, replicaNames(rs))
		case !opt.Timestamp.IsZero():
			return nil, fmt.Errorf("%w: %s is before the oldest backup (%s)", ErrNoBackup, opt.Timestamp.Format(time.RFC3339), earliest.UTC().Format(time.RFC3339))
		default:
			return nil, fmt.Errorf("%w: no snapshot at or before index %s", ErrNoBackup, FormatIndex(opt.Index))
		}
	}
	best := cands[0]
	for _, c := range cands[1:] {
		if c.updatedAt.After(best.updatedAt) {
			best = c
		}
	}
	return planGeneration(best, opt)
}

func filterReplicas(replicas []*Replica, name string) ([]*Replica, error) {
	if len(replicas) == 0 {
		return nil, errors.New("no replicas to restore from")
	}
	if name == "" {
		return replicas, nil
	}
	for _, r := range replicas {
		if r.Name == name {
			return []*Replica{r}, nil
		}
	}
	return nil, fmt.Errorf("no replica named %q (replicas: %s)", name, replicaNames(replicas))
}

func replicaNames(rs []*Replica) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}

func loadCandidate(ctx context.Context, r *Replica, gen string) (candidate, error) {
	c := candidate{replica: r, gen: gen}
	var err error
	if c.snaps, err = r.Client.Snapshots(ctx, gen); err != nil {
		return c, fmt.Errorf("replica %s: list snapshots of %s: %w", r.Name, gen, err)
	}
	if c.segs, err = r.Client.Segments(ctx, gen); err != nil {
		return c, fmt.Errorf("replica %s: list WAL segments of %s: %w", r.Name, gen, err)
	}
	for _, s := range c.snaps {
		if c.start.IsZero() || s.CreatedAt.Before(c.start) {
			c.start = s.CreatedAt
		}
		if s.CreatedAt.After(c.updatedAt) {
			c.updatedAt = s.CreatedAt
		}
	}
	for _, s := range c.segs {
		if s.CreatedAt.After(c.updatedAt) {
			c.updatedAt = s.CreatedAt
		}
	}
	return c, nil
}

// planGeneration picks the snapshot and segments within one generation.
func planGeneration(c candidate, opt RestoreOptions) (*RestorePlan, error) {
	maxIndex := 0
	for _, s := range c.snaps {
		maxIndex = max(maxIndex, s.Index)
	}
	for _, s := range c.segs {
		maxIndex = max(maxIndex, s.Index)
	}
	if opt.Index != NoIndex && opt.Index > maxIndex {
		return nil, fmt.Errorf("index %s is past the end of generation %s: the highest index is %s", FormatIndex(opt.Index), c.gen, FormatIndex(maxIndex))
	}
	var snap *SnapshotInfo
	for i := range c.snaps {
		s := &c.snaps[i]
		if (!opt.Timestamp.IsZero() && s.CreatedAt.After(opt.Timestamp)) || (opt.Index != NoIndex && s.Index > opt.Index) {
			continue
		}
		if snap == nil || s.Index > snap.Index || (s.Index == snap.Index && s.CreatedAt.After(snap.CreatedAt)) {
			snap = s
		}
	}
	if snap == nil {
		return nil, fmt.Errorf("%w: generation %s has no snapshot at or before the requested point", ErrNoBackup, c.gen)
	}
	plan := &RestorePlan{Replica: c.replica, Generation: c.gen, Snapshot: *snap, Target: snap.Pos()}
	for _, s := range c.segs {
		if s.Index < snap.Index || (opt.Index != NoIndex && s.Index > opt.Index) {
			continue
		}
		if u := opt.until; u != nil && (s.Index > u.Index || (s.Index == u.Index && s.Offset >= u.Offset)) {
			continue
		}
		if !opt.Timestamp.IsZero() && s.CreatedAt.After(opt.Timestamp) {
			break // later segments are later in time too
		}
		plan.Segments = append(plan.Segments, s)
	}
	if err := checkChain(c.gen, snap.Index, plan.Segments); err != nil {
		return nil, err
	}
	if n := len(plan.Segments); n > 0 {
		plan.Target = plan.Segments[n-1].Pos()
	}
	return plan, nil
}

// checkChain verifies that segments continue the snapshot's index with no
// missing index and each index starting at offset 0. Exact offsets are
// checked while applying, once decoded lengths are known.
func checkChain(gen string, snapIndex int, segs []SegmentInfo) error {
	want := snapIndex
	for i, s := range segs {
		newIndex := i == 0 || s.Index != segs[i-1].Index
		if !newIndex {
			if s.Offset <= segs[i-1].Offset {
				return fmt.Errorf("generation %s: WAL segments out of order at %s", gen, SegmentName(s.Index, s.Offset))
			}
			continue
		}
		if s.Index != want {
			return fmt.Errorf("generation %s: WAL index %s is missing (the next segment found is %s)", gen, FormatIndex(want), SegmentName(s.Index, s.Offset))
		}
		if s.Offset != 0 {
			return fmt.Errorf("generation %s: WAL segment %s is missing: index %s must start at offset 0, first found is %s",
				gen, SegmentName(s.Index, 0), FormatIndex(s.Index), SegmentName(s.Index, s.Offset))
		}
		want = s.Index + 1
	}
	return nil
}
