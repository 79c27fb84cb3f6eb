package litestream

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/litestream-go/litestream/internal/walformat"
)

// followImage is a finished restore in the follower's temporary
// directory, with the position it reached.
type followImage struct {
	path  string
	state followState
}

// restoreImage restores the newest state of the replicas (of the one
// pinned by ReplicaName, if set) into a temporary file and returns it with
// the position it holds. With several replicas it plans twice: once to
// choose, then pinned to the chosen one, so that the restore cannot fall
// back to another replica whose end differs from the plan's.
func (f *Follower) restoreImage(ctx context.Context, tmpDir string) (followImage, error) {
	opt := RestoreOptions{ReplicaName: f.opt.ReplicaName, Index: NoIndex, Parallelism: f.opt.Parallelism, Logger: f.logger}
	plan, err := PlanRestore(ctx, f.replicas, opt)
	if err != nil {
		return followImage{}, err
	}
	if opt.ReplicaName == "" && len(f.replicas) > 1 {
		opt.ReplicaName = plan.Replica.Name
		if plan, err = PlanRestore(ctx, f.replicas, opt); err != nil {
			return followImage{}, err
		}
	}
	path := filepath.Join(tmpDir, "image.db")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			return followImage{}, localError{err}
		}
	}
	f.logger.Info("restoring for the follower", "plan", plan.String())
	if err := Restore(ctx, plan, path, opt); err != nil {
		return followImage{}, err
	}
	st, err := planEnd(ctx, plan)
	if err != nil {
		os.Remove(path)
		return followImage{}, err
	}
	ps, err := walformat.ReadDBPageSize(path)
	if err != nil {
		os.Remove(path)
		return followImage{}, err
	}
	if st.Header != nil && int(st.Header.PageSize) != ps {
		os.Remove(path)
		return followImage{}, fmt.Errorf("generation %s: the WAL's page size %d differs from the snapshot's %d", plan.Generation, st.Header.PageSize, ps)
	}
	st.PageSize = ps
	return followImage{path: path, state: st}, nil
}

// planEnd returns the position a restore of plan reaches, with what the
// next segment's validation needs: the end of the plan's last segment, its
// index's WAL header, and the checksum in the segment's last frame. It
// reads the last segment and, when that is not its index's first, the
// first one's header.
func planEnd(ctx context.Context, plan *RestorePlan) (followState, error) {
	st := followState{Replica: plan.Replica.Name, Pos: plan.Snapshot.Pos()}
	n := len(plan.Segments)
	if n == 0 {
		return st, nil // the snapshot's index has no segment yet
	}
	last := plan.Segments[n-1]
	r := plan.Replica
	open := func(s SegmentInfo) (io.Reader, func(), error) {
		rc, err := r.Client.OpenSegment(ctx, s.Pos())
		if err != nil {
			return nil, nil, fmt.Errorf("WAL segment %s: %w", SegmentName(s.Index, s.Offset), err)
		}
		dec, err := r.Codec.NewDecoder(rc)
		if err != nil {
			rc.Close()
			return nil, nil, fmt.Errorf("WAL segment %s: %w", SegmentName(s.Index, s.Offset), err)
		}
		return bufio.NewReaderSize(dec, 256<<10), func() { rc.Close() }, nil
	}
	hdrBuf := make([]byte, walformat.HeaderSize)
	first := SegmentInfo{Generation: last.Generation, Index: last.Index}
	rd, done, err := open(first)
	if err != nil {
		return st, err
	}
	_, err = io.ReadFull(rd, hdrBuf)
	if last.Offset != 0 {
		done()
	}
	if err != nil {
		return st, fmt.Errorf("WAL segment %s: shorter than a WAL header", SegmentName(first.Index, 0))
	}
	hdr, err := walformat.ParseHeader(hdrBuf)
	if err != nil {
		return st, fmt.Errorf("WAL segment %s: %w", SegmentName(first.Index, 0), err)
	}
	off := int64(walformat.HeaderSize)
	if last.Offset != 0 {
		if rd, done, err = open(last); err != nil {
			return st, err
		}
		off = last.Offset
	}
	defer done()
	s1, s2 := hdr.Checksum1, hdr.Checksum2
	frame := make([]byte, hdr.FrameSize())
	committed := true
	for {
		if _, err := io.ReadFull(rd, frame); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return st, fmt.Errorf("WAL segment %s: frame at offset %s: %w", SegmentName(last.Index, last.Offset), FormatOffset(off), errCorrupt{err})
		}
		_, commit, c1, c2 := readFrameHeader(frame)
		s1, s2, committed = c1, c2, commit != 0
		off += hdr.FrameSize()
	}
	if !committed {
		return st, fmt.Errorf("WAL segment %s does not end on a commit frame: the replica is damaged", SegmentName(last.Index, last.Offset))
	}
	st.Pos = Pos{Generation: plan.Generation, Index: last.Index, Offset: off}
	st.Header, st.Sum1, st.Sum2 = &hdr, s1, s2
	return st, nil
}
