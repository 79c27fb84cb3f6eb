package file

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
)

// describe wraps err from doing what to the file name, saying what is
// likely wrong and what to do for the usual causes. The result still wraps
// the cause, so errors.Is(err, fs.ErrNotExist) and the like hold.
func (c *ReplicaClient) describe(what, name string, err error) error {
	// The path is named once: drop the os wrapper when it names the same one.
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == name {
		err = pe.Err
	}
	switch {
	case errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("%s %s: replica directory %s is not %s (check its owner and mode): %w",
			what, name, c.root, access(what), err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%s %s: no space left for replica directory %s (free some or move the replica): %w",
			what, name, c.root, err)
	case errors.Is(err, syscall.ENOTDIR):
		switch b := blocker(name); b {
		case "", c.root:
			return fmt.Errorf("%s %s: replica path %s is not a directory (move the file away or choose another replica path): %w",
				what, name, c.root, err)
		default:
			return fmt.Errorf("%s %s: %s is a file where replica directory %s needs a directory (move it away): %w",
				what, name, b, c.root, err)
		}
	case errors.Is(err, syscall.EROFS):
		return fmt.Errorf("%s %s: replica directory %s is on a read-only file system: %w", what, name, c.root, err)
	}
	return fmt.Errorf("%s %s: %w", what, name, err)
}

// access names the permission an operation needs.
func access(what string) string {
	switch what {
	case "list", "open snapshot", "open WAL segment":
		return "readable"
	}
	return "writable"
}

// blocker returns the nearest existing ancestor of name (or name itself)
// that is not a directory, or "" when there is none.
func blocker(name string) string {
	for p := name; ; p = filepath.Dir(p) {
		if fi, err := os.Stat(p); err == nil {
			if fi.IsDir() {
				return ""
			}
			return p
		}
		if filepath.Dir(p) == p {
			return ""
		}
	}
}
