package litestream

import (
	"context"
	"io"
)

// ReplicaClient is the storage of one replica: a stateless store of
// snapshots and WAL segments in the layout of SPEC section 1. It moves
// stored bytes only (LZ4 frames, maybe age-encrypted); encoding is done by
// the Replica above it, so every backend shares it.
//
// Every method that reads a missing object returns an error that wraps
// os.ErrNotExist. Writes are atomic: a reader never sees half an object.
type ReplicaClient interface {
	// Type is the backend name used in config and metrics ("file", "s3").
	Type() string

	// Generations returns the names of the generations in the replica,
	// sorted; entries that are not valid generation names are ignored.
	Generations(ctx context.Context) ([]string, error)
	// DeleteGeneration removes a generation and everything in it.
	DeleteGeneration(ctx context.Context, generation string) error

	// Snapshots lists a generation's snapshots sorted by index; names that
	// do not parse are ignored. A missing generation gives an empty list.
	Snapshots(ctx context.Context, generation string) ([]SnapshotInfo, error)
	// WriteSnapshot stores r as the snapshot at index.
	WriteSnapshot(ctx context.Context, generation string, index int, r io.Reader) (SnapshotInfo, error)
	// OpenSnapshot opens the stored bytes of a snapshot.
	OpenSnapshot(ctx context.Context, generation string, index int) (io.ReadCloser, error)
	// DeleteSnapshot removes one snapshot; a missing one is not an error.
	DeleteSnapshot(ctx context.Context, generation string, index int) error

	// Segments lists a generation's WAL segments sorted by (index, offset);
	// names that do not parse are ignored. A missing generation gives an
	// empty list.
	Segments(ctx context.Context, generation string) ([]SegmentInfo, error)
	// WriteSegment stores r as the segment at pos.
	WriteSegment(ctx context.Context, pos Pos, r io.Reader) (SegmentInfo, error)
	// OpenSegment opens the stored bytes of a segment.
	OpenSegment(ctx context.Context, pos Pos) (io.ReadCloser, error)
	// DeleteSegments removes segments; missing ones are not an error.
	DeleteSegments(ctx context.Context, positions []Pos) error
}
