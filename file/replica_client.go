package file

import (
	"cmp"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"

	"github.com/litestream-go/litestream"
)

// ReplicaClient stores a replica in a local directory. It holds no state
// besides its root, so one client may be used from many goroutines.
type ReplicaClient struct {
	root string

	// OnOp, if set, is called after each successful operation with "GET",
	// "PUT", "LIST" or "DELETE" and the stored bytes it moved. A GET counts
	// the whole file size when it is opened (as Litestream v0.3 did), not
	// the bytes later read; PUT counts the bytes written; LIST and DELETE
	// count 0. A listing of a missing directory still counts as one LIST,
	// and a delete of a missing file as one DELETE, like requests to an
	// object store. It must be safe for concurrent use.
	OnOp func(op string, bytes int64)
}

var _ litestream.ReplicaClient = (*ReplicaClient)(nil)

// NewReplicaClient returns a client for the replica directory root, an
// absolute path. The directory is created on the first write.
func NewReplicaClient(root string) *ReplicaClient { return &ReplicaClient{root: root} }

// Type returns "file".
func (c *ReplicaClient) Type() string { return "file" }

// Root returns the replica directory.
func (c *ReplicaClient) Root() string { return c.root }

// path turns a replica-relative "/"-joined path into a file path.
func (c *ReplicaClient) path(rel string) string {
	return filepath.Join(c.root, filepath.FromSlash(rel))
}

func (c *ReplicaClient) op(op string, n int64) {
	if c.OnOp != nil {
		c.OnOp(op, n)
	}
}

// Generations lists the generation directories, sorted. Entries whose names
// are not generation names are ignored; a missing replica directory gives
// an empty list.
func (c *ReplicaClient) Generations(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := c.readDir(litestream.GenerationsDir())
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && litestream.IsGeneration(e.Name()) {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// DeleteGeneration removes a generation directory and everything in it; a
// missing generation is not an error.
func (c *ReplicaClient) DeleteGeneration(ctx context.Context, generation string) error {
	if err := litestream.ValidateGeneration(generation); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	dir := c.path(litestream.GenerationDir(generation))
	if err := os.RemoveAll(dir); err != nil {
		return c.describe("delete generation", dir, err)
	}
	c.op("DELETE", 0)
	return nil
}

// Snapshots lists a generation's snapshots sorted by index.
func (c *ReplicaClient) Snapshots(ctx context.Context, generation string) ([]litestream.SnapshotInfo, error) {
	if err := litestream.ValidateGeneration(generation); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := c.readDir(litestream.SnapshotsDir(generation))
	if err != nil {
		return nil, err
	}
	var out []litestream.SnapshotInfo
	for _, e := range ents {
		index, err := litestream.ParseSnapshotName(e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue // not ours: foreign file, .tmp leftover, directory
		}
		fi, err := e.Info()
		if err != nil {
			continue // deleted since the directory was read
		}
		out = append(out, litestream.SnapshotInfo{
			Generation: generation, Index: index, Size: fi.Size(), CreatedAt: fi.ModTime(),
		})
	}
	slices.SortFunc(out, func(a, b litestream.SnapshotInfo) int { return cmp.Compare(a.Index, b.Index) })
	return out, nil
}

// Segments lists a generation's WAL segments sorted by index, then offset
// (numerically, so offsets past 8 hex digits sort last).
func (c *ReplicaClient) Segments(ctx context.Context, generation string) ([]litestream.SegmentInfo, error) {
	if err := litestream.ValidateGeneration(generation); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ents, err := c.readDir(litestream.SegmentsDir(generation))
	if err != nil {
		return nil, err
	}
	var out []litestream.SegmentInfo
	for _, e := range ents {
		index, offset, err := litestream.ParseSegmentName(e.Name())
		if err != nil || !e.Type().IsRegular() {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, litestream.SegmentInfo{
			Generation: generation, Index: index, Offset: offset, Size: fi.Size(), CreatedAt: fi.ModTime(),
		})
	}
	slices.SortFunc(out, func(a, b litestream.SegmentInfo) int {
		return cmp.Or(cmp.Compare(a.Index, b.Index), cmp.Compare(a.Offset, b.Offset))
	})
	return out, nil
}

// readDir reads a replica directory; a missing one reads as empty.
func (c *ReplicaClient) readDir(rel string) ([]fs.DirEntry, error) {
	dir := c.path(rel)
	ents, err := os.ReadDir(dir)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, c.describe("list", dir, err)
	}
	c.op("LIST", 0)
	return ents, nil
}

// WriteSnapshot stores r as the snapshot at index, atomically.
func (c *ReplicaClient) WriteSnapshot(ctx context.Context, generation string, index int, r io.Reader) (litestream.SnapshotInfo, error) {
	if err := (litestream.Pos{Generation: generation, Index: index}).Validate(); err != nil {
		return litestream.SnapshotInfo{}, err
	}
	fi, err := c.writeFile(ctx, litestream.SnapshotPath(generation, index), r)
	if err != nil {
		return litestream.SnapshotInfo{}, err
	}
	return litestream.SnapshotInfo{Generation: generation, Index: index, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

// WriteSegment stores r as the WAL segment at pos, atomically.
func (c *ReplicaClient) WriteSegment(ctx context.Context, pos litestream.Pos, r io.Reader) (litestream.SegmentInfo, error) {
	if err := pos.Validate(); err != nil {
		return litestream.SegmentInfo{}, err
	}
	fi, err := c.writeFile(ctx, litestream.SegmentPath(pos), r)
	if err != nil {
		return litestream.SegmentInfo{}, err
	}
	return litestream.SegmentInfo{
		Generation: pos.Generation, Index: pos.Index, Offset: pos.Offset, Size: fi.Size(), CreatedAt: fi.ModTime(),
	}, nil
}

// OpenSnapshot opens the stored bytes of a snapshot. A missing snapshot
// gives an error wrapping os.ErrNotExist.
func (c *ReplicaClient) OpenSnapshot(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	if err := (litestream.Pos{Generation: generation, Index: index}).Validate(); err != nil {
		return nil, err
	}
	return c.open(ctx, "open snapshot", litestream.SnapshotPath(generation, index))
}

// OpenSegment opens the stored bytes of a WAL segment. A missing segment
// gives an error wrapping os.ErrNotExist.
func (c *ReplicaClient) OpenSegment(ctx context.Context, pos litestream.Pos) (io.ReadCloser, error) {
	if err := pos.Validate(); err != nil {
		return nil, err
	}
	return c.open(ctx, "open WAL segment", litestream.SegmentPath(pos))
}

func (c *ReplicaClient) open(ctx context.Context, what, rel string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	name := c.path(rel)
	f, err := os.Open(name)
	if err != nil {
		return nil, c.describe(what, name, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, c.describe(what, name, err)
	}
	c.op("GET", fi.Size())
	return f, nil
}

// DeleteSnapshot removes a snapshot; a missing one is not an error.
func (c *ReplicaClient) DeleteSnapshot(ctx context.Context, generation string, index int) error {
	if err := (litestream.Pos{Generation: generation, Index: index}).Validate(); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return c.remove("delete snapshot", litestream.SnapshotPath(generation, index))
}

// DeleteSegments removes WAL segments; missing ones are not an error. Empty
// directories are left in place: they cost nothing and are never listed as
// data.
func (c *ReplicaClient) DeleteSegments(ctx context.Context, positions []litestream.Pos) error {
	for _, pos := range positions {
		if err := pos.Validate(); err != nil {
			return err
		}
	}
	for _, pos := range positions {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.remove("delete WAL segment", litestream.SegmentPath(pos)); err != nil {
			return err
		}
	}
	return nil
}

func (c *ReplicaClient) remove(what, rel string) error {
	name := c.path(rel)
	if err := os.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return c.describe(what, name, err)
	}
	c.op("DELETE", 0)
	return nil
}
