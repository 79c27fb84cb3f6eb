package storeclient

import (
	"context"
	"io"
	"time"

	"github.com/litestream-go/litestream"
)

// ObjectStore is what the client of an object store (s3, gcs, abs) does
// with whole objects; its methods of the same names as
// litestream.ReplicaClient's validate the position, name the object and
// call these.
type ObjectStore struct {
	// Name returns the object name of a replica-relative path.
	Name func(rel string) string
	// List returns every object under a replica-relative directory.
	List func(ctx context.Context, dir string) ([]Object, error)
	// Put stores r as the object name, and returns its size and creation
	// time.
	Put func(ctx context.Context, name string, r io.Reader) (int64, time.Time, error)
	// Get opens the object name.
	Get func(ctx context.Context, name string) (io.ReadCloser, error)
	// Delete deletes the objects names; missing ones are not an error.
	Delete func(ctx context.Context, names []string) error
}

// Snapshots lists a generation's snapshots by index.
func (s ObjectStore) Snapshots(ctx context.Context, generation string) ([]litestream.SnapshotInfo, error) {
	if err := litestream.ValidateGeneration(generation); err != nil {
		return nil, err
	}
	objs, err := s.List(ctx, litestream.SnapshotsDir(generation))
	if err != nil {
		return nil, err
	}
	return Snapshots(generation, objs), nil
}

// Segments lists a generation's WAL segments by index and offset.
func (s ObjectStore) Segments(ctx context.Context, generation string) ([]litestream.SegmentInfo, error) {
	if err := litestream.ValidateGeneration(generation); err != nil {
		return nil, err
	}
	objs, err := s.List(ctx, litestream.SegmentsDir(generation))
	if err != nil {
		return nil, err
	}
	return Segments(generation, objs), nil
}

// WriteSnapshot stores r as a snapshot.
func (s ObjectStore) WriteSnapshot(ctx context.Context, generation string, index int, r io.Reader) (litestream.SnapshotInfo, error) {
	if err := (litestream.Pos{Generation: generation, Index: index}).Validate(); err != nil {
		return litestream.SnapshotInfo{}, err
	}
	n, t, err := s.Put(ctx, s.Name(litestream.SnapshotPath(generation, index)), r)
	if err != nil {
		return litestream.SnapshotInfo{}, err
	}
	return litestream.SnapshotInfo{Generation: generation, Index: index, Size: n, CreatedAt: t}, nil
}

// WriteSegment stores r as a WAL segment.
func (s ObjectStore) WriteSegment(ctx context.Context, pos litestream.Pos, r io.Reader) (litestream.SegmentInfo, error) {
	if err := pos.Validate(); err != nil {
		return litestream.SegmentInfo{}, err
	}
	n, t, err := s.Put(ctx, s.Name(litestream.SegmentPath(pos)), r)
	if err != nil {
		return litestream.SegmentInfo{}, err
	}
	return litestream.SegmentInfo{Generation: pos.Generation, Index: pos.Index, Offset: pos.Offset, Size: n, CreatedAt: t}, nil
}

// OpenSnapshot opens a stored snapshot.
func (s ObjectStore) OpenSnapshot(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	if err := (litestream.Pos{Generation: generation, Index: index}).Validate(); err != nil {
		return nil, err
	}
	return s.Get(ctx, s.Name(litestream.SnapshotPath(generation, index)))
}

// OpenSegment opens a stored WAL segment.
func (s ObjectStore) OpenSegment(ctx context.Context, pos litestream.Pos) (io.ReadCloser, error) {
	if err := pos.Validate(); err != nil {
		return nil, err
	}
	return s.Get(ctx, s.Name(litestream.SegmentPath(pos)))
}

// DeleteGeneration deletes every object of a generation.
func (s ObjectStore) DeleteGeneration(ctx context.Context, generation string) error {
	if err := litestream.ValidateGeneration(generation); err != nil {
		return err
	}
	objs, err := s.List(ctx, litestream.GenerationDir(generation))
	if err != nil {
		return err
	}
	names := make([]string, len(objs))
	for i, o := range objs {
		names[i] = o.Name
	}
	return s.Delete(ctx, names)
}

// DeleteSnapshot deletes a snapshot; a missing one is not an error.
func (s ObjectStore) DeleteSnapshot(ctx context.Context, generation string, index int) error {
	if err := (litestream.Pos{Generation: generation, Index: index}).Validate(); err != nil {
		return err
	}
	return s.Delete(ctx, []string{s.Name(litestream.SnapshotPath(generation, index))})
}

// DeleteSegments deletes WAL segments; missing ones are not an error.
func (s ObjectStore) DeleteSegments(ctx context.Context, positions []litestream.Pos) error {
	for _, p := range positions {
		if err := p.Validate(); err != nil {
			return err
		}
	}
	names := make([]string, len(positions))
	for i, p := range positions {
		names[i] = s.Name(litestream.SegmentPath(p))
	}
	return s.Delete(ctx, names)
}
