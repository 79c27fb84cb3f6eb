package s3

import (
	"context"
	"errors"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/litestream-go/litestream"
)

var _ litestream.LeftoverRemover = (*ReplicaClient)(nil)

// RemoveLeftovers aborts the multipart uploads under the replica's
// generations that began before before: what an upload cut short by a kill
// leaves. Their parts are stored, and billed, until aborted, yet no object
// listing shows them. (A bucket lifecycle rule with
// AbortIncompleteMultipartUpload does the same on the store's side.)
func (c *ReplicaClient) RemoveLeftovers(ctx context.Context, before time.Time) (int, error) {
	client, err := c.Init(ctx)
	if err != nil {
		return 0, err
	}
	prefix := c.key(litestream.GenerationsDir()) + "/"
	pages := s3.NewListMultipartUploadsPaginator(client, &s3.ListMultipartUploadsInput{Bucket: aws.String(c.Bucket), Prefix: aws.String(prefix)})
	n := 0
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return n, c.describe("list unfinished uploads", err)
		}
		c.op("LIST", 0)
		for _, u := range page.Uploads {
			if u.Initiated == nil || !u.Initiated.Before(before) {
				continue // an upload in progress
			}
			if _, err := client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{
				Bucket: aws.String(c.Bucket), Key: u.Key, UploadId: u.UploadId,
			}); err != nil {
				err = c.describe("abort the unfinished upload of "+aws.ToString(u.Key), err)
				if errors.Is(err, os.ErrNotExist) {
					continue // finished or aborted meanwhile
				}
				return n, err
			}
			c.op("DELETE", 0)
			n++
		}
	}
	return n, nil
}
