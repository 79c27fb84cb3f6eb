package gcs

import (
	"context"
	"fmt"
	"io"

	"cloud.google.com/go/storage"
)

// maxResumes bounds how often a download cut short is resumed.
const maxResumes = 5

// get opens an object for streaming. A body that fails mid-way is resumed
// from where it stopped with a ranged read of the same object generation,
// so one dropped connection does not fail a long restore, and an object
// replaced meanwhile is not spliced onto the old one's start.
func (c *ReplicaClient) get(ctx context.Context, name string) (io.ReadCloser, error) {
	bkt, err := c.Init(ctx)
	if err != nil {
		return nil, err
	}
	obj := bkt.Object(name)
	r, err := obj.NewRangeReader(ctx, 0, -1)
	if err != nil {
		return nil, c.describe("get "+name, false, err)
	}
	c.op("GET", r.Remain())
	return &resumableBody{ctx: ctx, c: c, obj: obj.Generation(r.Attrs.Generation), name: name, body: r, size: r.Attrs.Size}, nil
}

// resumableBody is a download that reopens at the offset reached when its
// body fails, at most maxResumes times.
type resumableBody struct {
	ctx     context.Context
	c       *ReplicaClient
	obj     *storage.ObjectHandle // pinned to the generation first read
	name    string
	body    io.ReadCloser
	size    int64
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
			if b.off >= b.size {
				return n, io.EOF
			}
			err = io.ErrUnexpectedEOF // the body ended early
		}
		if b.resumes >= maxResumes || b.ctx.Err() != nil {
			return n, b.c.describe(fmt.Sprintf("read %s at byte %d of %d (resumed %d times)", b.name, b.off, b.size, b.resumes), false, err)
		}
		b.resumes++
		b.body.Close()
		r, gerr := b.obj.NewRangeReader(b.ctx, b.off, -1)
		if gerr != nil {
			b.body = io.NopCloser(errReader{gerr})
			return n, b.c.describe(fmt.Sprintf("resume %s at byte %d", b.name, b.off), false, gerr)
		}
		b.c.op("GET", r.Remain())
		b.body = r
		if n > 0 {
			return n, nil
		}
	}
}

// Close ends the download.
func (b *resumableBody) Close() error { return b.body.Close() }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
