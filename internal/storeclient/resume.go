package storeclient

import (
	"context"
	"io"
)

// MaxResumes bounds how often, in all, a download cut short is resumed.
const MaxResumes = 5

// Reopen says how a ResumableReader opens its object again and how it
// words what failed.
type Reopen struct {
	// Open opens the object again at off: the same version of it, so that
	// an object replaced meanwhile is not spliced onto the old one's
	// start.
	Open func(ctx context.Context, off int64) (io.ReadCloser, error)
	// OpenFailed describes Open's error.
	OpenFailed func(err error, off int64) error
	// ReadFailed describes the error of a read that is not resumed (the
	// resumes are spent, or ctx ended).
	ReadFailed func(err error, off int64, resumes int) error
}

// ResumableReader is a download that, when its body fails or ends before
// the object's size, reopens the object at the offset reached, at most
// MaxResumes times, so that one dropped connection does not fail a long
// restore.
type ResumableReader struct {
	ctx     context.Context
	reopen  Reopen
	body    io.ReadCloser
	size    int64 // -1 when unknown
	off     int64
	resumes int
}

// NewResumableReader returns a reader of body, the first answer for an
// object of size bytes (-1 when unknown), that resumes through r.
func NewResumableReader(ctx context.Context, body io.ReadCloser, size int64, r Reopen) *ResumableReader {
	return &ResumableReader{ctx: ctx, reopen: r, body: body, size: size}
}

// Read reads from the body, resuming it where it failed.
func (b *ResumableReader) Read(p []byte) (int, error) {
	for {
		n, err := b.body.Read(p)
		b.off += int64(n)
		if err == nil || n > 0 && err != io.EOF {
			return n, nil
		}
		if err == io.EOF {
			if b.size >= 0 && b.off < b.size {
				err = io.ErrUnexpectedEOF // the body ended early
			} else {
				return n, io.EOF
			}
		}
		if b.resumes >= MaxResumes || b.ctx.Err() != nil {
			return n, b.reopen.ReadFailed(err, b.off, b.resumes)
		}
		b.resumes++
		b.body.Close()
		body, oerr := b.reopen.Open(b.ctx, b.off)
		if oerr != nil {
			b.body = io.NopCloser(errReader{oerr})
			return n, b.reopen.OpenFailed(oerr, b.off)
		}
		b.body = body
		if n > 0 {
			return n, nil
		}
	}
}

// Close ends the download.
func (b *ResumableReader) Close() error { return b.body.Close() }

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }
