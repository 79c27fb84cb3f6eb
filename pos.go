package litestream

import (
	"fmt"
	"time"
)

// MaxIndex is the highest shadow WAL index; reaching it starts a new generation.
const MaxIndex = 0x7FFFFFFF

// Pos is a position in a generation: a shadow WAL index and a byte offset in
// that shadow WAL file (counting its 32-byte header).
type Pos struct {
	Generation string
	Index      int
	Offset     int64
}

// MaxOffset is the highest segment offset a segment name carries.
const MaxOffset = 1 << 62

// Validate returns nil only if p has a name in the replica layout: a
// generation name (see ValidateGeneration), an index from 0 to MaxIndex and
// an offset from 0 to MaxOffset. Every backend checks it before building a
// key or path from p.
func (p Pos) Validate() error {
	if err := ValidateGeneration(p.Generation); err != nil {
		return err
	}
	if p.Index < 0 || p.Index > MaxIndex {
		return fmt.Errorf("invalid index %d: want 0 to %x", p.Index, MaxIndex)
	}
	if p.Offset < 0 || p.Offset > MaxOffset {
		return fmt.Errorf("invalid offset %d: want 0 to %x", p.Offset, MaxOffset)
	}
	return nil
}

// ValidateGeneration returns nil only if generation is a generation name
// (IsGeneration): any other would never be listed, and one like "../x"
// would reach outside the replica.
func ValidateGeneration(generation string) error {
	if !IsGeneration(generation) {
		return fmt.Errorf("invalid generation name %q: want 16 lowercase hex characters", generation)
	}
	return nil
}

// IsZero reports whether p is the zero position (no generation).
func (p Pos) IsZero() bool { return p == Pos{} }

// String formats p as "generation/index:offset" with hex numbers, the way
// every command shows positions.
func (p Pos) String() string {
	if p.IsZero() {
		return "<none>"
	}
	return fmt.Sprintf("%s/%s:%s", p.Generation, FormatIndex(p.Index), FormatOffset(p.Offset))
}

// Less reports whether p comes before q in the same generation.
func (p Pos) Less(q Pos) bool {
	if p.Index != q.Index {
		return p.Index < q.Index
	}
	return p.Offset < q.Offset
}

// SnapshotInfo describes one stored snapshot.
type SnapshotInfo struct {
	Generation string
	Index      int
	Size       int64     // stored (compressed, maybe encrypted) bytes
	CreatedAt  time.Time // from the store: file mtime or object LastModified
}

// Pos returns the position at which the snapshot's WAL replay starts.
func (s SnapshotInfo) Pos() Pos { return Pos{Generation: s.Generation, Index: s.Index} }

// SegmentInfo describes one stored WAL segment.
type SegmentInfo struct {
	Generation string
	Index      int
	Offset     int64     // offset of the segment's first byte in its shadow WAL file
	Size       int64     // stored (compressed, maybe encrypted) bytes
	CreatedAt  time.Time // from the store: file mtime or object LastModified
}

// Pos returns the position of the segment's first byte.
func (s SegmentInfo) Pos() Pos {
	return Pos{Generation: s.Generation, Index: s.Index, Offset: s.Offset}
}
