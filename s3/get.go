package s3

import (
	"context"
	"fmt"
	"io"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// maxResumes bounds how often a GET body cut short is resumed.
const maxResumes = 5

// get opens an object. A body that fails mid-way is resumed from where it
// stopped with a ranged GET, so one dropped connection does not fail a long
// restore.
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
	return &resumableBody{ctx: ctx, c: c, client: client, key: key, body: out.Body, size: aws.ToInt64(out.ContentLength), etag: out.ETag}, nil
}

type resumableBody struct {
	ctx     context.Context
	c       *ReplicaClient
	client  *s3.Client
	key     string
	body    io.ReadCloser
	size    int64 // -1 when unknown
	etag    *string
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
			return n, fmt.Errorf("read %s at byte %d: %w", b.key, b.off, err)
		}
		b.resumes++
		b.body.Close()
		out, gerr := b.client.GetObject(b.ctx, &s3.GetObjectInput{
			Bucket: aws.String(b.c.Bucket), Key: aws.String(b.key),
			Range: aws.String(fmt.Sprintf("bytes=%d-", b.off)), IfMatch: b.etag,
		})
		if gerr != nil {
			b.body = io.NopCloser(errReader{gerr})
			return n, b.c.describe(fmt.Sprintf("resume %s at byte %d", b.key, b.off), gerr)
		}
		b.c.op("GET", aws.ToInt64(out.ContentLength))
		b.body = out.Body
		if n > 0 {
			return n, nil
		}
	}
}

func (b *resumableBody) Close() error { return b.body.Close() }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
