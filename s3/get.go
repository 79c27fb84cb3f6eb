package s3

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/litestream-go/litestream/internal/storeclient"
)

// get opens an object. A body that fails mid-way is resumed from where it
// stopped with a ranged GET of the same ETag (storeclient.ResumableReader),
// so one dropped connection does not fail a long restore.
func (c *ReplicaClient) get(ctx context.Context, key string) (io.ReadCloser, error) {
	client, err := c.Init(ctx)
	if err != nil {
		return nil, err
	}
	out, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(c.Bucket), Key: aws.String(key)})
	if err != nil {
		return nil, c.describe("get "+key, err)
	}
	c.op("GET", aws.ToInt64(out.ContentLength))
	etag := out.ETag
	return storeclient.NewResumableReader(ctx, out.Body, aws.ToInt64(out.ContentLength), storeclient.Reopen{
		Open: func(ctx context.Context, off int64) (io.ReadCloser, error) {
			out, err := client.GetObject(ctx, &s3.GetObjectInput{
				Bucket: aws.String(c.Bucket), Key: aws.String(key),
				Range: aws.String(fmt.Sprintf("bytes=%d-", off)), IfMatch: etag,
			})
			if err != nil {
				return nil, err
			}
			c.op("GET", aws.ToInt64(out.ContentLength))
			return out.Body, nil
		},
		OpenFailed: func(err error, off int64) error {
			return c.describe(fmt.Sprintf("resume %s at byte %d", key, off), err)
		},
		ReadFailed: func(err error, off int64, _ int) error {
			return fmt.Errorf("read %s at byte %d: %w", key, off, err)
		},
	}), nil
}
