package abs

import (
	"context"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"

	"github.com/litestream-go/litestream/internal/storeclient"
)

// get opens a blob. A body that fails mid-way is resumed from where it
// stopped with a ranged Get Blob of the same version (If-Match its ETag;
// storeclient.ResumableReader), so one dropped connection does not fail a
// long restore.
func (c *ReplicaClient) get(ctx context.Context, name string) (io.ReadCloser, error) {
	client, err := c.Init(ctx)
	if err != nil {
		return nil, err
	}
	bc := client.NewBlobClient(name)
	resp, err := bc.DownloadStream(ctx, nil)
	if err != nil {
		return nil, c.describe("get "+name, err)
	}
	size := int64(-1)
	if resp.ContentLength != nil {
		size = *resp.ContentLength
	}
	etag := resp.ETag
	return storeclient.NewResumableReader(ctx, resp.Body, size, storeclient.Reopen{
		Open: func(ctx context.Context, off int64) (io.ReadCloser, error) {
			opts := &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: off}}
			if etag != nil {
				opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: etag}}
			}
			resp, err := bc.DownloadStream(ctx, opts)
			if err != nil {
				return nil, err
			}
			return resp.Body, nil
		},
		OpenFailed: func(err error, off int64) error {
			return c.describe(fmt.Sprintf("resume %s at byte %d", name, off), err)
		},
		ReadFailed: func(err error, off int64, _ int) error {
			return fmt.Errorf("read %s at byte %d: %w", name, off, err)
		},
	}), nil
}
