package litestream

import (
	"context"
	"time"
)

// LeftoverRemover is a ReplicaClient that can remove what its interrupted
// writes left behind, which no listing shows but which takes space: the
// file and sftp backends' temporary files, when the process is killed (or
// the machine stops) between creating one and renaming it into place, and
// S3's unfinished multipart uploads. A snapshot's leftover is as large as
// the snapshot, so a replica that is killed often would fill its disk
// without them being removed; replication removes them once per start.
type LeftoverRemover interface {
	// RemoveLeftovers removes what writes cut short left behind, if it was
	// last modified before before, and returns how many files it removed.
	RemoveLeftovers(ctx context.Context, before time.Time) (int, error)
}

// removeLeftovers clears what earlier processes' interrupted writes left in
// the replica, once per start of replication. Only what was last modified
// (or begun) before start goes, so this process's own writes never do, and
// a write in progress elsewhere keeps its time recent: another process
// writing to the same replica by mistake is at worst made to retry.
func (r *Replica) removeLeftovers(ctx context.Context, start time.Time) {
	lr, ok := r.Client.(LeftoverRemover)
	if !ok {
		return
	}
	n, err := lr.RemoveLeftovers(ctx, start)
	if err != nil {
		r.logger().Warn("cannot remove temporary files left in the replica by interrupted writes; will try again at the next start", "error", err)
	}
	if n > 0 {
		r.logger().Info("removed temporary files left in the replica by interrupted writes", "files", n)
	}
}
