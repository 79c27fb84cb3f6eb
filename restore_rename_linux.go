//go:build linux

package litestream

import (
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// renameNoReplace renames oldpath to newpath in one step, and fails with
// an error wrapping fs.ErrExist when newpath exists: nothing that appears
// at newpath is ever replaced. It returns errors.ErrUnsupported where the
// kernel or the file system refuses RENAME_NOREPLACE (EINVAL on some
// network and FUSE file systems, ENOSYS before Linux 3.15).
func renameNoReplace(oldpath, newpath string) error {
	err := unix.Renameat2(unix.AT_FDCWD, oldpath, unix.AT_FDCWD, newpath, unix.RENAME_NOREPLACE)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.EINVAL), errors.Is(err, unix.ENOSYS), errors.Is(err, unix.EOPNOTSUPP):
		return errors.ErrUnsupported
	}
	return &os.LinkError{Op: "renameat2", Old: oldpath, New: newpath, Err: err}
}
