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
	// IntegrityCheck is the SQLite check of the result: "" or
	// IntegrityQuick, IntegrityFull, IntegrityNone.
	IntegrityCheck IntegrityCheck
	// OnFallback, if set, is called when the restore from failed could not
	// finish (err names the file and the replica) and next is tried
	// instead; how says whether next reaches the same point or an earlier
	// one.
	OnFallback func(failed, next *RestorePlan, how string, err error)

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
	// Fallbacks are the plans of the same generation on the other
	// replicas, in the order Restore tries them when this one fails: those
	// that reach as far first (cheapest first), then the nearest earlier.
	// Empty when one replica was pinned.
	Fallbacks []*RestorePlan

	reach  reach       // where the restored database ends
	listed listedNames // names listed unlike the canonical ones (directory replicas)
}

// Reach says where the restored database ends in its generation:
// "00000003:00004080" (an offset of an index), "00000003:end" (all of an
// index, a later one exists), or "at least 00000003:00001000" when the
// listing does not tell the end of the last segment.
func (p *RestorePlan) Reach() string { return p.reach.String() }

// Time is when the last file the plan applies was written to the replica:
// the time of the restored state.
func (p *RestorePlan) Time() time.Time {
	if n := len(p.Segments); n > 0 {
		return p.Segments[n-1].CreatedAt
	}
	return p.Snapshot.CreatedAt
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
	listed    listedNames
	err       error // its files cannot be trusted (auditGeneration): never restored
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
//
// A replica that cannot be listed is left out, with a warning, when
// another can; the others of the generation become the plan's Fallbacks.
func PlanRestore(ctx context.Context, replicas []*Replica, opt RestoreOptions) (*RestorePlan, error) {
	rs, err := filterReplicas(replicas, opt.ReplicaName)
	if err != nil {
		return nil, err
	}
	logger := opt.Logger
	if logger == nil {
		logger = slog.Default()
	}
	cands, unlisted, err := loadCandidates(ctx, rs, opt)
	if err != nil {
		return nil, err
	}
	for r, err := range unlisted {
		logger.Warn("cannot list this replica; restoring from the others", "replica", r.Name, "error", err)
	}
	newest := cands[0]
	for _, c := range cands[1:] {
		if c.updatedAt.After(newest.updatedAt) {
			newest = c
		}
	}
	if len(rs) == 1 {
		plan, err := planGeneration(newest, opt)
		if err != nil {
			return nil, err
		}
		plan.reach, _ = planReach(newest, plan)
		return plan, nil
	}
	var same []candidate // in the order of rs
	for _, c := range cands {
		if c.gen == newest.gen {
			same = append(same, c)
		}
	}
	return chooseReplica(ctx, rs, same, newest, unlisted, opt)
}

// loadCandidates lists every generation of rs that can serve opt, and
// the replicas that could not be listed, with why. None listed is an
// error naming each; none that can serve is an error wrapping ErrNoBackup
// that says why.
func loadCandidates(ctx context.Context, rs []*Replica, opt RestoreOptions) ([]candidate, map[*Replica]error, error) {
	if opt.Generation != "" && !IsGeneration(opt.Generation) {
		return nil, nil, fmt.Errorf("generation %q is not a generation name (16 hex characters)", opt.Generation)
	}
	var cands []candidate
	var earliest time.Time
	unlisted := map[*Replica]error{}
	var failures []string
	for _, r := range rs {
		rc, err := loadReplica(ctx, r, opt.Generation)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, ctx.Err()
			}
			unlisted[r] = err
			failures = append(failures, err.Error())
			continue
		}
		if i := slices.IndexFunc(rc, func(c candidate) bool { return c.err != nil && len(c.snaps) == 0 }); i >= 0 {
			// A generation whose snapshots are all untrusted may be the
			// newest: the replica cannot tell what it holds.
			unlisted[r] = rc[i].err
			failures = append(failures, rc[i].err.Error())
			continue
		}
		for _, c := range rc {
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
		return cands, unlisted, nil
	}
	// Nothing to restore, and a replica that might hold it did not answer:
	// that is not "no backup".
	switch len(failures) {
	case 0:
	case 1:
		return nil, nil, errors.New(failures[0])
	default:
		return nil, nil, fmt.Errorf("no replica could be listed: %s", strings.Join(failures, "; "))
	}
	var err error
	switch {
	case earliest.IsZero() && opt.Generation != "":
		err = fmt.Errorf("%w: generation %s has no snapshot in %s", ErrNoBackup, opt.Generation, replicaNames(rs))
	case earliest.IsZero():
		err = fmt.Errorf("%w: no generation with a snapshot in %s", ErrNoBackup, replicaNames(rs))
	case !opt.Timestamp.IsZero():
		err = fmt.Errorf("%w: %s is before the oldest backup (%s)", ErrNoBackup, opt.Timestamp.Format(time.RFC3339), earliest.UTC().Format(time.RFC3339))
	default:
		err = fmt.Errorf("%w: no snapshot at or before index %s", ErrNoBackup, FormatIndex(opt.Index))
	}
	return nil, nil, err
}

// loadReplica lists the generations of r (only gen, if set) with their
// files. A directory replica's generations directory is checked first
// (auditGenerationsDir), and each generation (auditGeneration): a
// generation that fails it is listed with its error, and only fails the
// restore if it is chosen.
func loadReplica(ctx context.Context, r *Replica, gen string) ([]candidate, error) {
	root := localRoot(r)
	if root != "" {
		if err := auditGenerationsDir(root); err != nil {
			return nil, fmt.Errorf("replica %s: %w", r.Name, err)
		}
	}
	gens := []string{gen}
	if gen == "" {
		var err error
		if gens, err = r.Client.Generations(ctx); err != nil {
			return nil, fmt.Errorf("replica %s: %w", r.Name, err) // the client's error names the listing
		}
	}
	var out []candidate
	for _, g := range gens {
		c, err := loadCandidate(ctx, r, g)
		if err != nil {
			return nil, err
		}
		if root != "" {
			c.listed, c.err = auditGeneration(root, g)
			if c.err != nil {
				c.err = fmt.Errorf("replica %s: %w", r.Name, c.err)
			}
		}
		out = append(out, c)
	}
	return out, nil
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
// furthest, the cheapest of those that reach as far, with its Choice and
// the others as its Fallbacks, best first. unlisted are the replicas
// that could not be listed.
func chooseReplica(ctx context.Context, rs []*Replica, same []candidate, newest candidate, unlisted map[*Replica]error, opt RestoreOptions) (*RestorePlan, error) {
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
	var rest []replicaOption
	for i, o := range opts {
		if o.err != nil {
			logger.Warn("cannot restore from this replica; choosing among the others", "replica", same[i].replica.Name, "error", o.err)
		} else if i != best {
			rest = append(rest, o)
		}
	}
	// Stable: of equals, the one listed first.
	slices.SortStableFunc(rest, func(a, b replicaOption) int {
		switch {
		case a.better(b):
			return -1
		case b.better(a):
			return 1
		}
		return 0
	})
	plan := opts[best].plan
	plan.reach = opts[best].reach
	for _, o := range rest {
		o.plan.reach = o.reach
		plan.Fallbacks = append(plan.Fallbacks, o.plan)
	}
	plan.Choice = describeChoice(rs, same, opts, best, unlisted)
	return plan, nil
}

// describeChoice says why opts[best] was chosen over each other replica,
// in one line: "local (file, 12 MB) over s3 (s3, 14 MB): same position,
// local directory".
func describeChoice(rs []*Replica, same []candidate, opts []replicaOption, best int, unlisted map[*Replica]error) string {
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
		case unlisted[r] != nil:
			parts = append(parts, fmt.Sprintf("%s (%s): cannot list it: %s", r.Name, r.Client.Type(), strings.TrimPrefix(unlisted[r].Error(), "replica "+r.Name+": ")))
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
	if c.err != nil {
		return nil, c.err
	}
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
	if snap.Size == 0 {
		return nil, fmt.Errorf("replica %s: generation %s: snapshot %s is an empty object (0 bytes): not a database; %w",
			c.replica.Name, c.gen, SnapshotName(snap.Index), ErrReplicaDamaged)
	}
	plan := &RestorePlan{Replica: c.replica, Generation: c.gen, Snapshot: *snap, Target: snap.Pos(), listed: c.listed}
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
