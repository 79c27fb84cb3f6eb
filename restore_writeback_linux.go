//go:build linux

package litestream

import (
	"os"

	"golang.org/x/sys/unix"
)

// startWriteback asks the kernel to start writing back bytes [off,
// off+n) of f without waiting for it, so that the fsync at the end of a
// restore has less left to write. It is advice: errors are ignored.
func startWriteback(f *os.File, off, n int64) {
	_ = unix.SyncFileRange(int(f.Fd()), off, n, unix.SYNC_FILE_RANGE_WRITE)
}
