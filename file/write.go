package file

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/litestream-go/litestream"
)

// writeFile stores r at rel atomically: a temporary file ending in ".tmp"
// in the same directory (never listed as a replica file), fsync, rename,
// fsync of the directory. On any error the temporary file is removed and
// nothing appears at rel.
func (c *ReplicaClient) writeFile(ctx context.Context, rel string, r io.Reader) (os.FileInfo, error) {
	dst := c.path(rel)
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, describeWriteError(c.root, err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".*.tmp")
	if err != nil {
		return nil, describeWriteError(c.root, err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			f.Close()
			os.Remove(tmp)
		}
	}()
	n, err := io.Copy(f, &ctxReader{ctx: ctx, r: r})
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", dst, err)
	}
	if err := f.Sync(); err != nil {
		return nil, fmt.Errorf("sync %s: %w", dst, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("close %s: %w", dst, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return nil, fmt.Errorf("rename into %s: %w", dst, err)
	}
	ok = true
	if err := litestream.SyncDir(dir); err != nil {
		return nil, err
	}
	c.op("PUT", n)
	fi, err := os.Stat(dst)
	if err != nil {
		return nil, fmt.Errorf("stat %s: %w", dst, err)
	}
	return fi, nil
}

// describeWriteError explains the usual causes of a failed write.
func describeWriteError(root string, err error) error {
	switch {
	case errors.Is(err, os.ErrPermission):
		return fmt.Errorf("replica directory %s is not writable (check its owner and mode): %w", root, err)
	case errors.Is(err, syscall.ENOSPC):
		return fmt.Errorf("replica directory %s: disk full: %w", root, err)
	case errors.Is(err, syscall.ENOTDIR), errors.Is(err, os.ErrExist):
		return fmt.Errorf("replica path %s is not a directory (a file is in the way): %w", root, err)
	}
	return fmt.Errorf("replica directory %s: %w", root, err)
}

// ctxReader stops a copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
