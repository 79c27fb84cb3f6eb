package litestream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
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
	// Choice says in one line why Replica was chosen over the other
	// replicas considered; "" when there was no other.
	Choice string
}

// Size returns the stored bytes the plan downloads.
func (p *RestorePlan) Size() int64 {
	n := p.Snapshot.Size
	for _, s := range p.Segments {
		n += s.Size
	}
	return n
}

// String describes the plan in one line, with hex indexes.
func (p *RestorePlan) String() string {
	noun := "WAL segments"
	if len(p.Segments) == 1 {
		noun = "WAL segment"
	}
	s := fmt.Sprintf("replica %s, generation %s, snapshot %s, %d %s up to %s (%d stored bytes)",
		p.Replica.Name, p.Generation, SnapshotName(p.Snapshot.Index), len(p.Segments), noun, p.Target, p.Size())
	if p.Choice != "" {
		s += "; chose " + p.Choice
	}
	return s
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
//
// The generation is the most recently updated one of any replica. Among
// the replicas that hold it, the one whose plan reaches furthest wins, so
// that no commit any replica holds is left out; at the same position the
// cheaper one wins: a local directory over object storage, then fewer
// stored bytes, then the first listed. The plan's Choice says why. A
// listing gives where a segment starts, not where it ends, so to compare
// ends it may read the last segment of each replica that could win.
func PlanRestore(ctx context.Context, replicas []*Replica, opt RestoreOptions) (*RestorePlan, error) {
	rs, err := filterReplicas(replicas, opt.ReplicaName)
	if err != nil {
		return nil, err
	}
	cands, err := loadCandidates(ctx, rs, opt)
	if err != nil {
		return nil, err
	}
	newest := cands[0]
	for _, c := range cands[1:] {
		if c.updatedAt.After(newest.updatedAt) {
			newest = c
		}
	}
	if len(rs) == 1 {
		return planGeneration(newest, opt)
	}
	var same []candidate // in the order of rs
	for _, c := range cands {
		if c.gen == newest.gen {
			same = append(same, c)
		}
	}
	return chooseReplica(ctx, rs, same, newest, opt)
}

// loadCandidates lists every generation of rs that can serve opt; none is
// an error wrapping ErrNoBackup that says why.
func loadCandidates(ctx context.Context, rs []*Replica, opt RestoreOptions) ([]candidate, error) {
	if opt.Generation != "" && !IsGeneration(opt.Generation) {
		return nil, fmt.Errorf("generation %q is not a generation name (16 hex characters)", opt.Generation)
	}
	var cands []candidate
	var earliest time.Time
	for _, r := range rs {
		gens := []string{opt.Generation}
		if opt.Generation == "" {
			var err error
			if gens, err = r.Client.Generations(ctx); err != nil {
				// The client's error names the listing.
				return nil, fmt.Errorf("replica %s: %w", r.Name, err)
			}
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
	if len(cands) > 0 {
		return cands, nil
	}
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

// reach is where a plan's restored database ends in its generation: at
// offset of index, or, with whole, at the end of index (the replica holds
// a later index, so the plan has all of this one). lowerBound marks an end
// that could not be read, of which only the start of the last segment is
// known.
type reach struct {
	index      int
	offset     int64
	whole      bool
	lowerBound bool
}

func (r reach) String() string {
	s := FormatIndex(r.index) + ":" + FormatOffset(r.offset)
	if r.whole {
		s = FormatIndex(r.index) + ":end"
	}
	if r.lowerBound {
		s = "at least " + s
	}
	return s
}

// compare returns -1, 0 or 1 as r ends before, with or after q.
func (r reach) compare(q reach) int {
	switch {
	case r.index != q.index:
		return cmpInt(r.index, q.index)
	case r.whole != q.whole:
		if r.whole {
			return 1
		}
		return -1
	case r.whole:
		return 0
	}
	return cmpInt(r.offset, q.offset)
}

func cmpInt[T int | int64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// planReach returns where plan ends, from the listing of c alone when it
// can: a segment after the plan's last one starts where it ends. Else it
// returns the start of the last segment and needsRead: only the segment's
// decoded length tells its end.
func planReach(c candidate, plan *RestorePlan) (r reach, needsRead bool) {
	n := len(plan.Segments)
	if n == 0 {
		return reach{index: plan.Snapshot.Index}, false
	}
	last := plan.Segments[n-1]
	for _, s := range c.segs { // sorted by position
		if !last.Pos().Less(s.Pos()) {
			continue
		}
		if s.Index == last.Index {
			return reach{index: last.Index, offset: s.Offset}, false
		}
		return reach{index: last.Index, whole: true}, false
	}
	return reach{index: last.Index, offset: last.Offset, lowerBound: true}, true
}

// segmentLength reads a stored segment through the replica's codec and
// returns its decoded length.
func segmentLength(ctx context.Context, r *Replica, s SegmentInfo) (int64, error) {
	rc, err := r.Client.OpenSegment(ctx, s.Pos())
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	dec, err := r.Codec.NewDecoder(rc)
	if err != nil {
		return 0, err
	}
	return io.Copy(io.Discard, dec)
}

// replicaOption is one replica's plan of the chosen generation.
type replicaOption struct {
	plan  *RestorePlan
	reach reach
	err   error // planning failed: never chosen
}

// isLocal reports whether the replica is a directory, read without a
// network round trip per object.
func isLocal(r *Replica) bool { return r.Client.Type() == "file" }

// better reports whether a is preferred over b, which is listed before it:
// a must reach further, or as far and cost less.
func (a replicaOption) better(b replicaOption) bool {
	if c := a.reach.compare(b.reach); c != 0 {
		return c > 0
	}
	if la, lb := isLocal(a.plan.Replica), isLocal(b.plan.Replica); la != lb {
		return la
	}
	return a.plan.Size() < b.plan.Size()
}

// chooseReplica plans the generation of newest on every replica in same
// (its candidates, in replica order) and returns the plan that reaches
// furthest, the cheapest of those that reach as far, with its Choice.
func chooseReplica(ctx context.Context, rs []*Replica, same []candidate, newest candidate, opt RestoreOptions) (*RestorePlan, error) {
	logger := opt.Logger
	if logger == nil {
		logger = slog.Default()
	}
	opts := make([]replicaOption, len(same))
	needsRead := make([]bool, len(same))
	maxIndex, viable := -1, 0
	for i, c := range same {
		o := &opts[i]
		if o.plan, o.err = planGeneration(c, opt); o.err != nil {
			continue
		}
		o.reach, needsRead[i] = planReach(c, o.plan)
		maxIndex = max(maxIndex, o.reach.index)
		viable++
	}
	// Only the options that end in the furthest index can win; of those,
	// one whose end the listing does not give has its last segment read.
	for i := range opts {
		o := &opts[i]
		if o.err != nil || !needsRead[i] || viable < 2 || o.reach.index != maxIndex {
			continue
		}
		last := o.plan.Segments[len(o.plan.Segments)-1]
		n, err := segmentLength(ctx, o.plan.Replica, last)
		if err != nil {
			logger.Warn("cannot read the last WAL segment to tell how far the replica reaches; ranking it by the segment's start",
				"replica", o.plan.Replica.Name, "segment", SegmentName(last.Index, last.Offset), "error", err)
			continue
		}
		o.reach = reach{index: last.Index, offset: last.Offset + n}
	}
	best := -1
	for i, o := range opts {
		if o.err == nil && (best < 0 || o.better(opts[best])) {
			best = i
		}
	}
	if best < 0 {
		// No replica can restore the generation: the error of the one
		// updated last.
		i := slices.IndexFunc(same, func(c candidate) bool { return c.replica == newest.replica })
		return nil, opts[max(i, 0)].err
	}
	for _, o := range opts {
		if o.err != nil {
			logger.Warn("cannot restore from this replica; choosing among the others", "replica", o.plan.Replica.Name, "error", o.err)
		}
	}
	plan := opts[best].plan
	plan.Choice = describeChoice(rs, same, opts, best)
	return plan, nil
}

// describeChoice says why opts[best] was chosen over each other replica,
// in one line: "local (file, 12 MB) over s3 (s3, 14 MB): same position,
// local directory".
func describeChoice(rs []*Replica, same []candidate, opts []replicaOption, best int) string {
	w := opts[best]
	label := func(p *RestorePlan) string {
		return fmt.Sprintf("%s (%s, %s)", p.Replica.Name, p.Replica.Client.Type(), formatBytes(p.Size()))
	}
	var parts []string
	for _, r := range rs {
		i := slices.IndexFunc(same, func(c candidate) bool { return c.replica == r })
		switch {
		case i == best:
			continue
		case i < 0:
			parts = append(parts, fmt.Sprintf("%s (%s): nothing to restore in generation %s", r.Name, r.Client.Type(), w.plan.Generation))
		case opts[i].err != nil:
			parts = append(parts, fmt.Sprintf("%s (%s): cannot restore from it: %v", r.Name, r.Client.Type(), opts[i].err))
		default:
			o := opts[i]
			why := "same position and cost, listed first"
			switch {
			case w.reach.compare(o.reach) > 0:
				why = fmt.Sprintf("reaches further (%s vs %s)", w.reach, o.reach)
			case isLocal(w.plan.Replica) && !isLocal(o.plan.Replica):
				why = "same position, local directory"
			case w.plan.Size() < o.plan.Size():
				why = "same position, fewer stored bytes"
			}
			parts = append(parts, label(o.plan)+": "+why)
		}
	}
	return label(w.plan) + " over " + strings.Join(parts, "; over ")
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
		return c, fmt.Errorf("replica %s: %w", r.Name, err) // the client's error names the listing
	}
	if c.segs, err = r.Client.Segments(ctx, gen); err != nil {
		return c, fmt.Errorf("replica %s: %w", r.Name, err)
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
