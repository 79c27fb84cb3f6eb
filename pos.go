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
