package file

import (
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
)

// Modes of new replica files and directories (before the umask). Files are
// as readable as the directories that hold them, so that a restore run by
// another user of the group works as it did with v0.3.
const (
	fileMode = 0o644
	dirMode  = 0o755
)

// writeFile stores r at rel atomically: a temporary file ending in ".tmp"
// in the same directory (never listed as a replica file), fsync, rename,
// fsync of the directory. On any error the temporary file is removed and
// whatever was at rel before is left as it was.
func (c *ReplicaClient) writeFile(ctx context.Context, rel string, r io.Reader) (fs.FileInfo, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	dst := c.path(rel)
	dir := filepath.Dir(dst)
	if err := mkdirSynced(dir); err != nil {
		return nil, c.describe("create directory", dir, err)
	}
	f, err := createTemp(dir, filepath.Base(dst))
	if err != nil {
		return nil, c.describe("create temporary file in", dir, err)
	}
	tmp := f.Name()
	done := false
	defer func() {
		if !done {
			_ = f.Close()
			_ = os.Remove(tmp)
		}
	}()

	buf := copyBufs.Get().(*[]byte)
	// Through a plain writer, so that the copy uses buf: *os.File's
	// ReadFrom would copy from a pipe 32 KiB at a time.
	n, err := io.CopyBuffer(struct{ io.Writer }{f}, ctxReader{ctx: ctx, r: r}, *buf)
	copyBufs.Put(buf)
	if err != nil {
		return nil, c.describe("write", dst, err)
	}
	if err := f.Sync(); err != nil {
		return nil, c.describe("sync", dst, err)
	}
	fi, err := f.Stat() // rename keeps size and mtime
	if err != nil {
		return nil, c.describe("stat", tmp, err)
	}
	if err := f.Close(); err != nil {
		return nil, c.describe("close", tmp, err)
	}
	if err := os.Rename(tmp, dst); err != nil {
		return nil, c.describe("rename into", dst, err)
	}
	done = true
	// The file is in place; without this sync a crash could still lose
	// the rename, so report the failure and let the caller write again.
	if err := litestream.SyncDir(dir); err != nil {
		return nil, err
	}
	c.op("PUT", n)
	return fi, nil
}

// copyBufs are writeFile's copy buffers: 128 KiB, the size of the
// encoder's writes, so that each is one read of the pipe and one write of
// the file (docs/performance.md, "CPU per GB, 2026-12-03").
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// createTemp creates a new file in dir named storeclient.TempName(base). The
// leading dot and the ".tmp" end keep it out of every listing; if a kill
// leaves it, the next replicate removes it (RemoveLeftovers).
func createTemp(dir, base string) (*os.File, error) {
	for range 10 {
		name := filepath.Join(dir, storeclient.TempName(base))
		f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, fileMode)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, &fs.PathError{Op: "create", Path: dir, Err: fs.ErrExist}
}

// mkdirSynced creates dir and its missing parents, and fsyncs the parent of
// each directory it creates so that the new entries survive a crash.
func mkdirSynced(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.ENOTDIR}
		}
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := mkdirSynced(parent); err != nil {
			return err
		}
	}
	// Another writer may create it at the same time: that is fine.
	if err := os.Mkdir(dir, dirMode); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return litestream.SyncDir(parent)
}

// ctxReader stops a copy when the context ends.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
