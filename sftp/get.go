package sftp

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"

	"github.com/pkg/sftp"
)

// maxResumes bounds how often a download cut short is resumed.
const maxResumes = 5

// readBuffer is how much of a file a download reads ahead: one read of it
// is concurrency requests in flight.
const readBuffer = concurrency * 32 << 10

// get opens a file for reading. A read that fails because the connection
// broke reopens the file on a new connection and goes on from the offset
// reached (invariant 5).
func (c *ReplicaClient) get(ctx context.Context, p string) (io.ReadCloser, error) {
	f, size, err := c.openAt(ctx, "open "+p, p, 0)
	if err != nil {
		return nil, err
	}
	rf := &resumableFile{ctx: ctx, c: c, path: p, f: f, size: size}
	return &bufferedFile{Reader: bufio.NewReaderSize(rf, readBuffer), rf: rf}, nil
}

// openAt opens p, positioned at off, and returns it with the file's size.
func (c *ReplicaClient) openAt(ctx context.Context, action, p string, off int64) (*sftp.File, int64, error) {
	var f *sftp.File
	var size int64
	err := c.do(ctx, action, func(cn *conn) error {
		var err error
		if f, err = cn.sftp.Open(p); err != nil {
			return unwrapPathError(err)
		}
		fi, err := f.Stat()
		if err == nil && off > 0 {
			_, err = f.Seek(off, io.SeekStart)
		}
		if err != nil {
			f.Close()
			return err
		}
		size = fi.Size()
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	c.op("GET", size-off)
	return f, size, nil
}

type bufferedFile struct {
	*bufio.Reader
	rf *resumableFile
}

func (b *bufferedFile) Close() error { return b.rf.Close() }

// resumableFile reads a file to the size it had when opened.
type resumableFile struct {
	ctx     context.Context
	c       *ReplicaClient
	path    string
	f       *sftp.File
	size    int64
	off     int64
	resumes int
	err     error // sticky, once the resumes are spent
}

func (r *resumableFile) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	for {
		n, err := r.f.Read(p)
		r.off += int64(n)
		if err == nil || n > 0 && err != io.EOF {
			return n, nil
		}
		if err == io.EOF {
			if r.off >= r.size {
				return n, io.EOF
			}
			err = io.ErrUnexpectedEOF
		}
		if kind := classify(err).kind; kind != failConnLost && err != io.ErrUnexpectedEOF || r.resumes >= maxResumes || r.ctx.Err() != nil {
			r.err = r.c.describe(fmt.Sprintf("read %s at byte %d", r.path, r.off), err)
			return n, r.err
		}
		r.resumes++
		r.f.Close()
		f, _, oerr := r.c.openAt(r.ctx, fmt.Sprintf("resume %s at byte %d", r.path, r.off), r.path, r.off)
		if oerr != nil {
			r.f = nil
			r.err = oerr
			return n, oerr
		}
		r.f = f
		if n > 0 {
			return n, nil
		}
	}
}

func (r *resumableFile) Close() error {
	if r.f == nil {
		return nil
	}
	err := r.f.Close()
	r.f = nil
	failed := r.err != nil
	r.err = os.ErrClosed
	if err != nil && !failed && classify(err).kind != failConnLost {
		return fmt.Errorf("close %s: %w", r.path, err)
	}
	return nil
}
