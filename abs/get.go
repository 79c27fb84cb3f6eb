package abs

import (
	"context"
	"fmt"
	"io"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
)

// maxResumes bounds how often, in all, a download cut short is resumed.
const maxResumes = 5

// get opens a blob. A body that fails mid-way is resumed from where it
// stopped with a ranged Get Blob of the same version (If-Match its ETag),
// so one dropped connection does not fail a long restore.
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
	return &resumableBody{ctx: ctx, c: c, blob: bc, name: name, body: resp.Body, size: size, etag: resp.ETag}, nil
}

type resumableBody struct {
	ctx     context.Context
	c       *ReplicaClient
	blob    *blob.Client
	name    string
	body    io.ReadCloser
	size    int64 // -1 when unknown
	etag    *azcore.ETag
	off     int64
	resumes int
}

func (b *resumableBody) Read(p []byte) (int, error) {
	for {
		n, err := b.body.Read(p)
		b.off += int64(n)
		if err == nil || n > 0 && err != io.EOF {
			return n, nil
		}
		if err == io.EOF {
			if b.size >= 0 && b.off < b.size {
				err = io.ErrUnexpectedEOF // connection closed early
			} else {
				return n, io.EOF
			}
		}
		if b.resumes >= maxResumes || b.ctx.Err() != nil {
			return n, fmt.Errorf("read %s at byte %d: %w", b.name, b.off, err)
		}
		b.resumes++
		b.body.Close()
		opts := &blob.DownloadStreamOptions{Range: blob.HTTPRange{Offset: b.off}}
		if b.etag != nil {
			opts.AccessConditions = &blob.AccessConditions{ModifiedAccessConditions: &blob.ModifiedAccessConditions{IfMatch: b.etag}}
		}
		resp, gerr := b.blob.DownloadStream(b.ctx, opts)
		if gerr != nil {
			b.body = io.NopCloser(errReader{gerr})
			return n, b.c.describe(fmt.Sprintf("resume %s at byte %d", b.name, b.off), gerr)
		}
		b.body = resp.Body
		if n > 0 {
			return n, nil
		}
	}
}

func (b *resumableBody) Close() error { return b.body.Close() }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
