package gcs

import (
	"context"
	"fmt"
	"io"

	"github.com/litestream-go/litestream/internal/storeclient"
)

// get opens an object for streaming. A body that fails mid-way is resumed
// from where it stopped with a ranged read of the same object generation
// (storeclient.ResumableReader), so one dropped connection does not fail a
// long restore, and an object replaced meanwhile is not spliced onto the
// old one's start.
func (c *ReplicaClient) get(ctx context.Context, name string) (io.ReadCloser, error) {
	bkt, err := c.Init(ctx)
	if err != nil {
		return nil, err
	}
	r, err := bkt.Object(name).NewRangeReader(ctx, 0, -1)
	if err != nil {
		return nil, c.describe("get "+name, false, err)
	}
	c.op("GET", r.Remain())
	obj := bkt.Object(name).Generation(r.Attrs.Generation) // pinned to the generation first read
	size := r.Attrs.Size
	return storeclient.NewResumableReader(ctx, r, size, storeclient.Reopen{
		Open: func(ctx context.Context, off int64) (io.ReadCloser, error) {
			r, err := obj.NewRangeReader(ctx, off, -1)
			if err != nil {
				return nil, err
			}
			c.op("GET", r.Remain())
			return r, nil
		},
		OpenFailed: func(err error, off int64) error {
			return c.describe(fmt.Sprintf("resume %s at byte %d", name, off), false, err)
		},
		ReadFailed: func(err error, off int64, resumes int) error {
			return c.describe(fmt.Sprintf("read %s at byte %d of %d (resumed %d times)", name, off, size, resumes), false, err)
		},
	}), nil
}
