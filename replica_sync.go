package litestream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/litestream-go/litestream/internal/walformat"
)

// The rule of every change to a replica, kept here and in retention.go:
// nothing in a replica is deleted before what replaces it is durable in
// that replica. So whichever request fails, and whenever the process or
// the primary is lost, a restore from the replica still reaches every
// commit it held before. Only a definite answer from the store (an object
// is missing, or its bytes do not decode or differ from the shadow WAL's)
// makes a replica start over, see restartAt; an error that proves nothing
// (network, 5xx, timeout) fails the sync, which is retried.

// run ships the shadow WAL and runs the snapshot and retention schedules
// until ctx ends.
//
// Uploads are spaced by SyncInterval, and a commit waits no longer than
// that spacing asks: the loop wakes at news of a commit the replica lacks
// (the monitor's look at the WAL, or its copy) and syncs at once when the
// last sync that sent anything started a SyncInterval ago or more, else
// when it is that old. So a lone commit ships within walWatchInterval and
// an upload, and back-to-back commits ship once per SyncInterval, as
// v0.3's. An idle replica makes no sync, but for its schedules and a
// backstop every idleBackstop.
//
// A step that fails (the sync, a due snapshot, a due retention run) is due
// again a SyncInterval later, so an outage ends only when the step that
// failed succeeds: a sync with nothing to ship, which makes no request,
// would otherwise end it and the next failure begin another. A failed
// sync counts as one that sent: retries keep the same spacing.
func (r *Replica) run(ctx context.Context) {
	start := time.Now()
	interval := r.SyncInterval
	if interval <= 0 {
		interval = DefaultSyncInterval
	}
	timer := time.NewTimer(interval)
	defer timer.Stop()
	r.mu.Lock()
	r.lastSnapshot, r.lastValidate = time.Now(), time.Now() // schedules count from the start
	r.mu.Unlock()
	var out outage
	var lastSent time.Time // start of the last sync that sent, or tried to send, anything
	early := false         // this sync was woken by news before its SyncInterval was up
	cleaned := false
	for {
		// Taken before the sync copies the WAL, so that news of a commit
		// that comes after the copy is never missed.
		_, changed := r.db.shadowPos()
		ahead := r.db.committedAhead()
		began, before := time.Now(), r.Status().WALBytes
		err := r.Sync(ctx)
		notReady := errors.Is(err, errDBNotReady)
		if (err != nil && !notReady) || r.Status().WALBytes != before || early {
			// An early sync that found nothing to send still spaces the
			// next early one: a copy that keeps failing wakes no loop.
			lastSent = began
		}
		if err == nil && !cleaned {
			// After the first sync that reached the replica, not before
			// it: with the store unreachable, retries would hold it up.
			r.removeLeftovers(ctx, start)
			cleaned = true
		}
		if err == nil {
			err = r.runSchedules(ctx)
		}
		next := began.Add(max(interval, idleBackstop))
		switch {
		case err == nil:
			out.succeeded(r, time.Now())
		case ctx.Err() != nil:
			return
		case errors.Is(err, errDBNotReady):
		default:
			out.failed(r, err, time.Now())
			next = began.Add(interval)
		}
		if due := r.nextScheduleDue(); !due.IsZero() && due.Before(next) {
			next = due
		}
		if held, ch := r.db.caughtUp(r.Pos()); held {
			// The sync's own copy closed changed; what it copied is
			// shipped, so only later copies are news.
			changed = ch
		}
		var ok bool
		early, ok = waitForWork(ctx, timer, next, lastSent.Add(interval), changed, ahead)
		if !ok {
			return
		}
	}
}

// idleBackstop bounds the time between syncs of a replica that hears no
// news: a lost wake-up would cost a commit this long, not forever.
const idleBackstop = time.Minute

// nextScheduleDue returns when the next snapshot, retention run or
// validation is due, or the zero time when none is scheduled.
func (r *Replica) nextScheduleDue() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	var due time.Time
	add := func(last time.Time, every time.Duration) {
		if every > 0 && (due.IsZero() || last.Add(every).Before(due)) {
			due = last.Add(every)
		}
	}
	add(r.lastSnapshot, r.SnapshotInterval)
	if r.Retention > 0 {
		add(r.lastRetain, r.RetentionCheckInterval)
	}
	add(r.lastValidate, r.ValidationInterval)
	return due
}

// waitForWork returns at next, or at the first news of a commit (changed
// or ahead closed) once earliest has passed, at once if it has; early
// tells which. It returns ok false when ctx ends.
func waitForWork(ctx context.Context, timer *time.Timer, next, earliest time.Time, changed, ahead <-chan struct{}) (early, ok bool) {
	for {
		timer.Reset(time.Until(next))
		select {
		case <-ctx.Done():
			return false, false
		case <-timer.C:
			return false, true
		case <-changed:
		case <-ahead:
		}
		if !time.Now().Before(earliest) {
			return true, true
		}
		// Too soon after the last upload: wait until it is a SyncInterval
		// old (or next, if sooner), without further news.
		if earliest.Before(next) {
			next = earliest
		}
		changed, ahead = nil, nil
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
	start, from, shipped := time.Now(), r.pos, r.Status().WALBytes
	defer func() {
		// Only a sync that shipped something: an idle database would log
		// one line a second per replica.
		if n := r.Status().WALBytes - shipped; n > 0 {
			attrs := []any{"from", from.String(), "to", r.pos.String(), "wal_bytes", n, "elapsed", time.Since(start).Round(time.Microsecond)}
			if err != nil {
				attrs = append(attrs, "error", err)
			}
			r.logger().Debug("replica sync", attrs...)
		}
	}()
	// Copy the WAL first, so that a commit waits for one sync interval,
	// not a monitor interval and then a sync interval. A failure here is
	// the monitor's to report; the replica ships what the shadow has.
	_ = r.db.copyNow(ctx)
	end, _ := r.db.shadowPos()
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
// from the replica itself: the end of its last segment, if that segment
// holds the shadow WAL's bytes at its place. A replica that definitely does
// not continue the shadow starts over at its current index (restartAt); a
// store that cannot answer fails locate, and the next sync tries again.
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
	newest := -1
	for _, s := range snaps {
		newest = max(newest, s.Index)
	}
	if len(segs) == 0 {
		r.needSnapshot = newest != end.Index
		r.setPos(Pos{Generation: gen, Index: end.Index})
		return nil
	}
	last := segs[len(segs)-1]
	pos, m, err := r.continuation(ctx, end, last)
	if err != nil {
		return fmt.Errorf("locate the replica's position: %w", err)
	}
	switch m {
	case segmentDiverges:
		return r.diverged(last.Pos(), end)
	case segmentUnreadable:
		r.logger().Warn("the replica's last segment is missing or damaged; starting the current index over with a new snapshot",
			"segment", last.Pos().String(), "shadow_pos", end.String())
		return r.restartAt(ctx, gen)
	}
	// A snapshot is owed, besides when there is none, when the newest one
	// does not chain to the segments: a process stopped between a restart
	// and its snapshot leaves such a replica.
	var from []SegmentInfo
	for _, s := range segs {
		if s.Index >= newest {
			from = append(from, s)
		}
	}
	r.needSnapshot = newest < 0 || newest > min(last.Index+1, end.Index) || checkChain(gen, newest, from) != nil
	r.setPos(pos)
	r.logger().Info("replica position recovered", "position", pos.String())
	return nil
}

// continuation returns the end of the replica's last segment as the
// position to continue from, if the segment holds the shadow WAL's bytes at
// its place (segmentMatches). segmentDiverges: it lies past the shadow's
// end or holds other or more bytes. segmentUnreadable: its shadow file is
// gone, or it is missing or does not decode. err is set when the store
// could not answer.
func (r *Replica) continuation(ctx context.Context, end Pos, last SegmentInfo) (Pos, segmentMatch, error) {
	if last.Index > end.Index {
		return Pos{}, segmentDiverges, nil
	}
	size, err := r.db.shadowFileSize(last.Index)
	if errors.Is(err, os.ErrNotExist) {
		return Pos{}, segmentUnreadable, nil
	} else if err != nil {
		return Pos{}, segmentUnreadable, err
	}
	if last.Offset >= size {
		return Pos{}, segmentDiverges, nil
	}
	f, err := os.Open(r.db.shadowPath(end.Generation, last.Index))
	if errors.Is(err, os.ErrNotExist) {
		return Pos{}, segmentUnreadable, nil
	} else if err != nil {
		return Pos{}, segmentUnreadable, fmt.Errorf("open shadow WAL: %w", err)
	}
	defer f.Close()
	n, m, err := r.matchSegment(ctx, last.Pos(), f, size)
	if err != nil || m != segmentMatches {
		return Pos{}, m, err
	}
	pos := Pos{Generation: end.Generation, Index: last.Index, Offset: last.Offset + n}
	if !r.db.shadowHas(pos) {
		return Pos{}, segmentDiverges, nil
	}
	return pos, segmentMatches, nil
}

// restartAt starts the replica over at the shadow WAL's current index I:
// afterwards its segments of I hold the shadow's bytes from offset 0 to its
// position, and a new snapshot is due, which the caller takes next (Sync,
// Snapshot and retention do; locate finds one still owed after a stop).
//
// Why a restore never loses a commit meanwhile, whatever request fails. A
// restore replays the newest snapshot's index from offset 0, and segments
// are named by index and offset, so I's new segments have its old ones'
// names; overwriting is safe only with the same bytes. The shadow's
// committed bytes of I never change, so every object of I is checked
// against them: one that decodes to the shadow's bytes at its offset stays
// untouched; a gap gets a new object; only a missing or provably wrong one
// is overwritten, with the shadow's bytes up to the next object. Each
// object is at every moment its old self or the shadow's bytes there, so a
// restore reaches at least what it did. Only then go the objects past the
// shadow's end (I beyond its size, later indexes and their snapshots) and
// those overlapping a checked object: they hold no commit of this database
// that the checked objects lack, and would break a restore of the new
// snapshot. Older indexes are retention's, after the new snapshot exists.
func (r *Replica) restartAt(ctx context.Context, gen string) error {
	end, _ := r.db.shadowPos()
	if end.Generation != gen {
		return fmt.Errorf("restart replica: generation %s ended; the next sync finds the replica's place in the new one", gen)
	}
	idx := end.Index
	size, err := r.db.shadowFileSize(idx)
	if err != nil {
		return fmt.Errorf("restart replica at index %s: %w", FormatIndex(idx), err)
	}
	f, err := os.Open(r.db.shadowPath(gen, idx))
	if err != nil {
		return fmt.Errorf("restart replica: open shadow WAL: %w", err)
	}
	defer f.Close()
	snaps, err := r.Client.Snapshots(ctx, gen)
	if err != nil {
		return fmt.Errorf("restart replica: list snapshots: %w", err)
	}
	segs, err := r.Client.Segments(ctx, gen)
	if err != nil {
		return fmt.Errorf("restart replica: list WAL segments: %w", err)
	}
	var cur []SegmentInfo
	var stale []Pos
	for _, s := range segs {
		switch {
		case s.Index == idx && s.Offset < size:
			cur = append(cur, s)
		case s.Index >= idx:
			stale = append(stale, s.Pos())
		}
	}

	off := int64(0) // the shadow's bytes [0, off) of I are in the replica
	rewritten := 0
	for i, s := range cur {
		if s.Offset < off {
			stale = append(stale, s.Pos()) // inside the object before it
			continue
		}
		if s.Offset > off {
			if err := r.uploadSegment(ctx, Pos{Generation: gen, Index: idx, Offset: off}, s.Offset); err != nil {
				return fmt.Errorf("restart replica: %w", err)
			}
			rewritten++
		}
		n, m, err := r.matchSegment(ctx, s.Pos(), f, size)
		if err != nil {
			return fmt.Errorf("restart replica: %w", err)
		}
		switch m {
		case segmentMatches:
			off = s.Offset + n
			continue
		case segmentDiverges:
			return r.diverged(s.Pos(), end)
		}
		next := size
		if i+1 < len(cur) {
			next = cur[i+1].Offset
		}
		if err := r.uploadSegment(ctx, s.Pos(), next); err != nil {
			return fmt.Errorf("restart replica: %w", err)
		}
		rewritten++
		off = next
	}

	// Snapshots first: a restore takes the newest.
	for _, s := range snaps {
		if s.Index > idx {
			if err := r.Client.DeleteSnapshot(ctx, gen, s.Index); err != nil {
				return fmt.Errorf("restart replica: delete snapshot past the shadow WAL: %w", err)
			}
		}
	}
	if len(stale) > 0 {
		if err := r.Client.DeleteSegments(ctx, stale); err != nil {
			return fmt.Errorf("restart replica: delete segments past the shadow WAL: %w", err)
		}
	}
	r.needSnapshot = true
	r.setPos(Pos{Generation: gen, Index: idx, Offset: off})
	r.logger().Info("replica starts its current index over", "position", r.pos.String(),
		"segments_rewritten", rewritten, "segments_removed", len(stale))
	return nil
}

// diverged handles a replica that holds, at pos, commits the shadow WAL at
// end never had: nothing of it is overwritten or deleted; the database
// starts a new generation, which the replica takes up at its next sync,
// and the old generation stays restorable (-generation) until retention.
func (r *Replica) diverged(pos, end Pos) error {
	reason := fmt.Sprintf("replica %s holds WAL data at %s that the shadow WAL (at %s) never had, for example after the meta directory was restored from a backup", r.Name, pos, end)
	r.db.requestNewGeneration(end.Generation, reason)
	return fmt.Errorf("%s: a new generation starts, and the replica's data is kept", reason)
}

// otherHistory tells a segment whose bytes differ from the shadow WAL's
// apart: damaged (a flipped byte, a torn write: its frames do not chain)
// or another history of the same WAL (every frame chains, from the
// shadow's checksum at pos, to its end). Only the first may be replaced.
func (r *Replica) otherHistory(ctx context.Context, pos Pos, shadow io.ReaderAt) segmentMatch {
	var hb [walformat.HeaderSize]byte
	if _, err := shadow.ReadAt(hb[:], 0); err != nil {
		return segmentUnreadable
	}
	hdr, err := walformat.ParseHeader(hb[:])
	if err != nil {
		return segmentUnreadable
	}
	s1, s2 := hdr.Checksum1, hdr.Checksum2
	if pos.Offset > walformat.HeaderSize {
		if s1, s2, err = walformat.FrameChecksumAt(shadow, hdr, pos.Offset); err != nil {
			return segmentUnreadable
		}
	}
	rc, err := r.Client.OpenSegment(ctx, pos)
	if err != nil {
		return segmentUnreadable
	}
	defer rc.Close()
	dec, err := r.Codec.NewDecoder(rc)
	if err != nil {
		return segmentUnreadable
	}
	src := io.Reader(dec)
	if pos.Offset == 0 {
		if _, err := io.ReadFull(dec, hb[:]); err != nil || !bytes.Equal(hb[:], hdr.Encode()) {
			return segmentUnreadable
		}
	}
	rd := walformat.NewReader(src, hdr, s1, s2)
	frames := 0
	for {
		_, _, err := rd.Next()
		if errors.Is(err, io.EOF) && frames > 0 {
			return segmentDiverges
		} else if err != nil {
			return segmentUnreadable
		}
		frames++
	}
}

// segmentMatch is what matchSegment found of a stored segment.
type segmentMatch int

const (
	// segmentMatches: every byte is the shadow WAL's.
	segmentMatches segmentMatch = iota
	// segmentUnreadable: the segment is missing or does not decode; the
	// shadow WAL's bytes may take its place.
	segmentUnreadable
	// segmentDiverges: the segment decodes to other bytes than the shadow
	// WAL's, or to more: the replica holds commits this shadow WAL never
	// had (a restored meta directory, a second engine), which must not be
	// overwritten or deleted. A new generation starts instead.
	segmentDiverges
)

// matchSegment reads the stored segment at pos and compares its bytes with
// those of shadow from pos.Offset, of which the first size-pos.Offset are
// committed. It returns the decoded length and what it found; err is set
// when the store (or the shadow file) could not answer, which proves
// nothing about the segment.
func (r *Replica) matchSegment(ctx context.Context, pos Pos, shadow io.ReaderAt, size int64) (n int64, m segmentMatch, err error) {
	name := SegmentName(pos.Index, pos.Offset)
	rc, err := r.Client.OpenSegment(ctx, pos)
	if errors.Is(err, os.ErrNotExist) {
		return 0, segmentUnreadable, nil
	} else if err != nil {
		return 0, segmentUnreadable, fmt.Errorf("read segment %s: %w", name, err)
	}
	defer rc.Close()
	src := &storeReader{r: rc}
	undecodable := func(err error) (int64, segmentMatch, error) {
		if src.err != nil || ctx.Err() != nil {
			return 0, segmentUnreadable, fmt.Errorf("read segment %s: %w", name, err)
		}
		return 0, segmentUnreadable, nil
	}
	dec, err := r.Codec.NewDecoder(src)
	if err != nil {
		return undecodable(err)
	}
	want := io.NewSectionReader(shadow, pos.Offset, max(size-pos.Offset, 0))
	got, exp := make([]byte, 32<<10), make([]byte, 32<<10)
	for {
		k, rerr := dec.Read(got)
		if k > 0 {
			if _, err := io.ReadFull(want, exp[:k]); errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				return 0, segmentDiverges, nil // longer than the shadow
			} else if err != nil {
				return 0, segmentUnreadable, fmt.Errorf("read shadow WAL: %w", err)
			}
			if !bytes.Equal(got[:k], exp[:k]) {
				return 0, r.otherHistory(ctx, pos, shadow), nil
			}
			n += int64(k)
		}
		if rerr == io.EOF {
			return n, segmentMatches, nil
		} else if rerr != nil {
			return undecodable(rerr)
		}
	}
}

// storeReader passes a stored object's bytes on and keeps the store's own
// read error, so that a failing store (network, timeout) is told apart from
// bytes that do not decode.
type storeReader struct {
	r   io.Reader
	err error
}

func (s *storeReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// syncSegments uploads the shadow WAL from the replica's position to its
// committed end. Caller holds r.mu.
func (r *Replica) syncSegments(ctx context.Context) error {
	for {
		end, _ := r.db.shadowPos()
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
			r.logger().Warn("shadow WAL file needed by the replica is missing; starting the current index over with a new snapshot", "replica_pos", r.pos.String())
			if err := r.restartAt(ctx, r.pos.Generation); err != nil {
				return err
			}
			continue // ship the rest of the index before any snapshot
		} else if err != nil {
			return err
		}
		// A header with no committed frame yet is not worth a segment.
		if r.pos.Offset < size && !(r.pos.Offset == 0 && size == walformat.HeaderSize && r.pos.Index == end.Index) {
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
