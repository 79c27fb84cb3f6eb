package storeclient

import (
	"path"
	"sort"
	"time"

	"github.com/litestream-go/litestream"
)

// Object is a stored object as a listing names it.
type Object struct {
	Name string // its key or path; the last element is its file name
	Size int64
	Time time.Time // its creation (or modification) time, the store's
}

// Snapshots returns the snapshots of generation among objs, by index; an
// object whose name is not a snapshot's is left out.
func Snapshots(generation string, objs []Object) []litestream.SnapshotInfo {
	var out []litestream.SnapshotInfo
	for _, o := range objs {
		index, err := litestream.ParseSnapshotName(path.Base(o.Name))
		if err != nil {
			continue
		}
		out = append(out, litestream.SnapshotInfo{Generation: generation, Index: index, Size: o.Size, CreatedAt: o.Time})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out
}

// Segments returns the WAL segments of generation among objs, by index
// and offset; an object whose name is not a segment's is left out.
func Segments(generation string, objs []Object) []litestream.SegmentInfo {
	var out []litestream.SegmentInfo
	for _, o := range objs {
		index, offset, err := litestream.ParseSegmentName(path.Base(o.Name))
		if err != nil {
			continue
		}
		out = append(out, litestream.SegmentInfo{Generation: generation, Index: index, Offset: offset, Size: o.Size, CreatedAt: o.Time})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pos().Less(out[j].Pos()) })
	return out
}
