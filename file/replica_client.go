// Package file is the directory replica: snapshots and WAL segments stored
// as files in the layout of Litestream v0.3, written atomically.
package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/litestream-go/litestream"
)

// ReplicaClient stores a replica in a local directory.
type ReplicaClient struct {
	root string
	// OnOp, if set, is called after each successful operation with "GET",
	// "PUT", "LIST" or "DELETE" and the stored bytes moved (GET counts the
	// file size at open).
	OnOp func(op string, bytes int64)
}

var _ litestream.ReplicaClient = (*ReplicaClient)(nil)

// NewReplicaClient returns a client for the replica directory root.
func NewReplicaClient(root string) *ReplicaClient { return &ReplicaClient{root: root} }

// Type returns "file".
func (c *ReplicaClient) Type() string { return "file" }

// Root returns the replica directory.
func (c *ReplicaClient) Root() string { return c.root }

func (c *ReplicaClient) path(rel string) string {
	return filepath.Join(c.root, filepath.FromSlash(rel))
}

func (c *ReplicaClient) op(op string, n int64) {
	if c.OnOp != nil {
		c.OnOp(op, n)
	}
}

// Generations lists the valid generation directories, sorted.
func (c *ReplicaClient) Generations(ctx context.Context) ([]string, error) {
	ents, err := os.ReadDir(c.path(litestream.GenerationsDir()))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list generations in %s: %w", c.root, err)
	}
	c.op("LIST", 0)
	var out []string
	for _, e := range ents {
		if e.IsDir() && litestream.IsGeneration(e.Name()) {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// DeleteGeneration removes a generation directory.
func (c *ReplicaClient) DeleteGeneration(ctx context.Context, generation string) error {
	if !litestream.IsGeneration(generation) {
		return fmt.Errorf("invalid generation name %q", generation)
	}
	if err := os.RemoveAll(c.path(litestream.GenerationDir(generation))); err != nil {
		return fmt.Errorf("delete generation %s: %w", generation, err)
	}
	c.op("DELETE", 0)
	return nil
}

// Snapshots lists a generation's snapshots by index.
func (c *ReplicaClient) Snapshots(ctx context.Context, generation string) ([]litestream.SnapshotInfo, error) {
	ents, err := c.list(litestream.SnapshotsDir(generation))
	if err != nil {
		return nil, err
	}
	var out []litestream.SnapshotInfo
	for _, e := range ents {
		index, err := litestream.ParseSnapshotName(e.Name())
		if err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue // removed while listing
		}
		out = append(out, litestream.SnapshotInfo{Generation: generation, Index: index, Size: fi.Size(), CreatedAt: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// Segments lists a generation's WAL segments by index and offset.
func (c *ReplicaClient) Segments(ctx context.Context, generation string) ([]litestream.SegmentInfo, error) {
	ents, err := c.list(litestream.SegmentsDir(generation))
	if err != nil {
		return nil, err
	}
	var out []litestream.SegmentInfo
	for _, e := range ents {
		index, offset, err := litestream.ParseSegmentName(e.Name())
		if err != nil {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, litestream.SegmentInfo{Generation: generation, Index: index, Offset: offset, Size: fi.Size(), CreatedAt: fi.ModTime()})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Pos().Less(out[j].Pos()) })
	return out, nil
}

func (c *ReplicaClient) list(rel string) ([]os.DirEntry, error) {
	ents, err := os.ReadDir(c.path(rel))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	} else if err != nil {
		return nil, fmt.Errorf("list %s: %w", c.path(rel), err)
	}
	c.op("LIST", 0)
	var out []os.DirEntry
	for _, e := range ents {
		if e.Type().IsRegular() {
			out = append(out, e)
		}
	}
	return out, nil
}

// WriteSnapshot stores r as a snapshot.
func (c *ReplicaClient) WriteSnapshot(ctx context.Context, generation string, index int, r io.Reader) (litestream.SnapshotInfo, error) {
	fi, err := c.writeFile(ctx, litestream.SnapshotPath(generation, index), r)
	if err != nil {
		return litestream.SnapshotInfo{}, err
	}
	return litestream.SnapshotInfo{Generation: generation, Index: index, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

// WriteSegment stores r as a WAL segment.
func (c *ReplicaClient) WriteSegment(ctx context.Context, pos litestream.Pos, r io.Reader) (litestream.SegmentInfo, error) {
	fi, err := c.writeFile(ctx, litestream.SegmentPath(pos), r)
	if err != nil {
		return litestream.SegmentInfo{}, err
	}
	return litestream.SegmentInfo{Generation: pos.Generation, Index: pos.Index, Offset: pos.Offset, Size: fi.Size(), CreatedAt: fi.ModTime()}, nil
}

// OpenSnapshot opens a stored snapshot.
func (c *ReplicaClient) OpenSnapshot(ctx context.Context, generation string, index int) (io.ReadCloser, error) {
	return c.open(litestream.SnapshotPath(generation, index))
}

// OpenSegment opens a stored WAL segment.
func (c *ReplicaClient) OpenSegment(ctx context.Context, pos litestream.Pos) (io.ReadCloser, error) {
	return c.open(litestream.SegmentPath(pos))
}

func (c *ReplicaClient) open(rel string) (io.ReadCloser, error) {
	f, err := os.Open(c.path(rel))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", c.path(rel), err)
	}
	if fi, err := f.Stat(); err == nil {
		c.op("GET", fi.Size())
	}
	return f, nil
}

// DeleteSnapshot removes a snapshot; a missing one is not an error.
func (c *ReplicaClient) DeleteSnapshot(ctx context.Context, generation string, index int) error {
	return c.remove(litestream.SnapshotPath(generation, index))
}

// DeleteSegments removes WAL segments; missing ones are not an error.
func (c *ReplicaClient) DeleteSegments(ctx context.Context, positions []litestream.Pos) error {
	for _, p := range positions {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := c.remove(litestream.SegmentPath(p)); err != nil {
			return err
		}
	}
	return nil
}

func (c *ReplicaClient) remove(rel string) error {
	if err := os.Remove(c.path(rel)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", c.path(rel), err)
	}
	c.op("DELETE", 0)
	return nil
}
