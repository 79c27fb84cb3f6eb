//go:build unix

package litestream

import (
	"errors"
	"os"
	"syscall"
)

// fileLocks reports that tryLockFile locks.
const fileLocks = true

// tryLockFile takes an exclusive advisory lock on f without waiting. It
// reports false when another open file description holds it.
func tryLockFile(f *os.File) (bool, error) {
	err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return false, nil
	}
	return err == nil, err
}
