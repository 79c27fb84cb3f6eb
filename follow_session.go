package litestream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"
)

// followSession is one run of a follower on its open database.
type followSession struct {
	f      *Follower
	db     *followDB
	state  followState
	tmpDir string

	lastNew      time.Time // a step or resync committed, or the session began
	lastGenCheck time.Time
	knownGens    map[string]bool

	pollErr, genErr error  // the last poll's and the last generation check's
	resyncWanted    string // why a resync is due; retried each poll until one commits
	failingSince    time.Time
	lastWarn        time.Time
}

// followWarnEvery is how often a follower that keeps failing says so again.
const followWarnEvery = time.Minute

func (s *followSession) replica() *Replica {
	for _, r := range s.f.replicas {
		if r.Name == s.state.Replica {
			return r
		}
	}
	return nil
}

// loop polls until ctx ends. Every failure is retried; the database keeps
// serving the last state it reached.
func (s *followSession) loop(ctx context.Context) error {
	s.lastNew = time.Now()
	backoff := s.f.opt.Interval
	for {
		start := time.Now()
		progressed, err := s.poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		s.pollErr = err
		s.report(start)
		wait := s.f.opt.Interval
		switch {
		case err != nil:
			wait = backoff
			backoff = min(backoff*2, max(30*time.Second, s.f.opt.Interval))
		case progressed:
			backoff = s.f.opt.Interval
			continue // more may be waiting: catch up at once
		default:
			backoff = s.f.opt.Interval
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
}

// report records the outcome of a poll in the status and the log: the
// first failure, then once a minute while it lasts, then the recovery.
func (s *followSession) report(pollStart time.Time) {
	err := s.pollErr
	if err == nil {
		err = s.genErr
	}
	now := time.Now()
	log := s.f.logger.With("replica", s.state.Replica, "position", s.state.Pos.String())
	switch {
	case err != nil && s.failingSince.IsZero():
		s.failingSince, s.lastWarn = now, now
		log.Warn("cannot follow the replica; serving the last state and retrying", "error", err)
	case err != nil && now.Sub(s.lastWarn) >= followWarnEvery:
		s.lastWarn = now
		log.Warn("still cannot follow the replica; serving the last state and retrying", "for", now.Sub(s.failingSince).Round(time.Second), "error", err)
	case err == nil && !s.failingSince.IsZero():
		log.Info("following the replica again", "after", now.Sub(s.failingSince).Round(time.Second))
		s.failingSince = time.Time{}
	}
	s.f.setStatus(func(st *FollowStatus) {
		st.Replica, st.Pos, st.LastErr, st.FailingSince = s.state.Replica, s.state.Pos, err, s.failingSince
		if err == nil {
			st.CurrentAt = pollStart
		}
	})
}

// poll applies what is new, if anything, and reports whether it did.
func (s *followSession) poll(ctx context.Context) (bool, error) {
	if s.state.Resync && s.resyncWanted == "" {
		s.resyncWanted = "a resync was under way when the follower stopped"
	}
	if s.resyncWanted != "" {
		return true, s.resync(ctx, s.resyncWanted)
	}
	if s.replica() == nil {
		return false, fmt.Errorf("the sidecar names replica %q, which is not among the replicas given", s.state.Replica)
	}
	step, err := s.collect(ctx)
	if step != nil {
		defer step.close()
	}
	if step != nil && len(step.segments) > 0 {
		if aerr := s.apply(ctx, step); aerr != nil {
			if errors.Is(aerr, errForeignWrite) {
				s.resyncWanted = aerr.Error() + "; its changes are discarded"
				return true, s.resync(ctx, s.resyncWanted)
			}
			return false, aerr
		}
		return true, err // a bad segment after good ones: reported once these are in
	}
	if err != nil {
		return false, err
	}
	if time.Since(s.lastNew) >= s.f.opt.GenerationCheckInterval && time.Since(s.lastGenCheck) >= s.f.opt.GenerationCheckInterval {
		return s.checkGeneration(ctx)
	}
	return false, nil
}

// collect gathers the next segments into a step, up to MaxStepBytes. It
// returns the segments it could take, and the error that stopped it, if
// any; a next segment that is not there yet is no error.
func (s *followSession) collect(ctx context.Context) (*followStep, error) {
	step, err := newFollowStep(filepath.Join(s.tmpDir, "step"), s.state, s.db.pageSize, s.db.pages)
	if err != nil {
		return nil, err
	}
	r := s.replica()
	st := s.state
	for step.bytes < s.f.opt.MaxStepBytes {
		next, rc, err := s.openNext(ctx, r, st)
		if errors.Is(err, os.ErrNotExist) {
			break
		} else if err != nil {
			return step, err
		}
		name := st.Pos.Generation + "/wal/" + SegmentName(next.Pos.Index, next.Pos.Offset)
		dec, err := r.Codec.NewDecoder(rc)
		if err != nil {
			rc.Close()
			if ke := keysError(r.Name, name, err); ke != nil {
				return step, ke
			}
			return step, fmt.Errorf("WAL segment %s: %w", name, errCorrupt{err})
		}
		err = step.addSegment(dec, next, name)
		rc.Close()
		if err != nil {
			return step, err
		}
		st = step.end
	}
	return step, nil
}

// openNext opens the segment that follows st: at st's offset of its
// index, or else at offset 0 of the next index, if the index ended there.
// It returns the state the segment continues (the next index's has no
// header yet) and an error wrapping os.ErrNotExist when neither is there.
func (s *followSession) openNext(ctx context.Context, r *Replica, st followState) (followState, io.ReadCloser, error) {
	rc, err := r.Client.OpenSegment(ctx, st.Pos)
	if err == nil || !errors.Is(err, os.ErrNotExist) || st.Pos.Offset == 0 {
		return st, rc, err
	}
	next := Pos{Generation: st.Pos.Generation, Index: st.Pos.Index + 1}
	if next.Index > MaxIndex {
		return st, nil, os.ErrNotExist
	}
	rc2, err := r.Client.OpenSegment(ctx, next)
	if err != nil {
		return st, nil, err
	}
	// Segments are uploaded in order: look again at this index, which may
	// have grown before the next one began.
	if rc, err = r.Client.OpenSegment(ctx, st.Pos); err == nil {
		rc2.Close()
		return st, rc, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		rc2.Close()
		return st, nil, err
	}
	return followState{Replica: st.Replica, Pos: next, PageSize: st.PageSize}, rc2, nil
}

// apply commits a step, then records its end in the sidecar.
func (s *followSession) apply(ctx context.Context, step *followStep) error {
	start := time.Now()
	pages, err := s.db.applyStep(ctx, step)
	if err != nil {
		return err
	}
	if err := writeFollowState(FollowSidecarPath(s.f.output), step.end); err != nil {
		return localError{err}
	}
	s.state, s.lastNew, s.genErr = step.end, time.Now(), nil
	s.f.logger.Debug("applied WAL segments", "segments", len(step.segments), "first", step.segments[0],
		"pages", pages, "position", s.state.Pos.String(), "elapsed", time.Since(start).Round(time.Microsecond))
	st := s.f.setStatus(func(st *FollowStatus) {
		st.Pos, st.LastApplied = s.state.Pos, time.Now()
		st.Steps++
	})
	if s.f.opt.OnStep != nil {
		s.f.opt.OnStep(st)
	}
	return nil
}

// checkGeneration lists the followed replica's generations, once nothing
// new came for a while: a new generation, or ours gone, means a resync
// from the newest; a gap after our position in our generation (segments
// removed by retention while the follower was away) means one too.
func (s *followSession) checkGeneration(ctx context.Context) (bool, error) {
	s.lastGenCheck = time.Now()
	r := s.replica()
	gens, err := r.Client.Generations(ctx)
	if err != nil {
		s.genErr = fmt.Errorf("list generations: %w", err)
		return false, nil
	}
	// A generation becomes known once it has a snapshot: before that,
	// planning skips it, and it must be looked at again.
	known := s.knownGens
	s.knownGens = map[string]bool{}
	newGen, ours := false, false
	for _, g := range gens {
		switch {
		case g == s.state.Pos.Generation:
			ours = true
			s.knownGens[g] = true
		case known[g]:
			s.knownGens[g] = true
		default:
			snaps, err := r.Client.Snapshots(ctx, g)
			if err != nil {
				s.genErr = fmt.Errorf("list snapshots of generation %s: %w", g, err)
				return false, nil
			}
			if len(snaps) > 0 {
				s.knownGens[g] = true
				newGen = true
			}
		}
	}
	if !ours || newGen {
		plan, err := PlanRestore(ctx, s.f.replicas, RestoreOptions{ReplicaName: s.f.opt.ReplicaName, Index: NoIndex, Logger: s.f.logger})
		if err != nil {
			s.genErr = fmt.Errorf("replica %s: %w; the follower keeps serving %s", r.Name, err, s.state.Pos)
			if !ours {
				s.genErr = fmt.Errorf("replica %s no longer holds generation %s (%w); the follower keeps serving %s",
					r.Name, s.state.Pos.Generation, err, s.state.Pos)
			}
			return false, nil
		}
		if plan.Generation != s.state.Pos.Generation {
			s.genErr = nil
			s.resyncWanted = fmt.Sprintf("the primary started a new generation, %s", plan.Generation)
			return true, s.resync(ctx, s.resyncWanted)
		}
	}
	segs, err := r.Client.Segments(ctx, s.state.Pos.Generation)
	if err != nil {
		s.genErr = fmt.Errorf("list WAL segments: %w", err)
		return false, nil
	}
	s.genErr = nil
	var later *SegmentInfo
	for i := range segs {
		p := segs[i].Pos()
		if p == s.state.Pos || p == (Pos{Generation: p.Generation, Index: s.state.Pos.Index + 1}) {
			return false, nil // it came meanwhile: the next poll takes it
		}
		if s.state.Pos.Less(p) && later == nil {
			later = &segs[i]
		}
	}
	if later == nil {
		return false, nil
	}
	s.resyncWanted = fmt.Sprintf("the replica no longer holds WAL segment %s, and holds later ones from %s (removed by retention?)",
		SegmentName(s.state.Pos.Index, s.state.Pos.Offset), SegmentName(later.Index, later.Offset))
	return true, s.resync(ctx, s.resyncWanted)
}

// resync restores the newest state into a temporary file and copies it
// into the follower in one transaction (invariant 4 of follow.go).
func (s *followSession) resync(ctx context.Context, reason string) error {
	start := time.Now()
	s.f.logger.Warn("resyncing the follower from a full restore", "reason", reason, "position", s.state.Pos.String())
	img, err := s.f.restoreImage(ctx, s.tmpDir)
	if err != nil {
		return fmt.Errorf("resync (%s): %w", reason, err)
	}
	defer os.Remove(img.path)
	if img.state.PageSize != s.db.pageSize {
		return errPageSize{img.state.PageSize, s.db.pageSize}
	}
	pending := s.state
	pending.Resync = true
	if err := writeFollowState(FollowSidecarPath(s.f.output), pending); err != nil {
		return localError{err}
	}
	s.state = pending
	written, err := s.db.resync(ctx, img.path)
	if err != nil {
		return fmt.Errorf("resync (%s): %w", reason, err)
	}
	if err := writeFollowState(FollowSidecarPath(s.f.output), img.state); err != nil {
		return localError{err}
	}
	s.state, s.lastNew, s.resyncWanted = img.state, time.Now(), ""
	s.knownGens = nil
	s.f.logger.Info("resynced the follower", "position", s.state.Pos.String(), "pages_written", written,
		"elapsed", time.Since(start).Round(time.Millisecond))
	st := s.f.setStatus(func(st *FollowStatus) {
		st.Replica, st.Pos, st.LastApplied = s.state.Replica, s.state.Pos, time.Now()
		st.Resyncs++
	})
	if s.f.opt.OnStep != nil {
		s.f.opt.OnStep(st)
	}
	return nil
}
