//go:build !unix

package litestream

import "os"

// fileLocks is false where flock is not available: restores run unlocked
// and leave their interrupted predecessors' directories alone.
const fileLocks = false

// tryLockFile takes no lock here: a restore's lock file keeps the name
// that marks it unlocked.
func tryLockFile(*os.File) (bool, error) { return false, nil }
