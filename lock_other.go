//go:build !unix

package litestream

import "os"

// fileLocks is false where flock is not available: restores run unlocked
// and leave their interrupted predecessors' directories alone.
const fileLocks = false

func tryLockFile(*os.File) (bool, error) { return true, nil }
