package litestream

import (
	"os"
	"time"

	"github.com/litestream-go/litestream/internal/walformat"
)

// walWatchInterval is how often the monitor looks at the WAL between syncs:
// two small reads from the page cache, and no request to the store (see
// docs/performance.md, "wal_watch.go").
const walWatchInterval = 25 * time.Millisecond

// walWatchRetry spaces the early syncs for one WAL header: a checkpoint
// that was put off (a snapshot was reading the database) or could not
// complete (behind a long reader) is retried this often, not at every look.
const walWatchRetry = 250 * time.Millisecond

// walWatch remembers the last WAL header walFull reported, and when.
type walWatch struct {
	hdr walformat.Header
	at  time.Time
}

// copyAheadFrames is how far the WAL may run ahead of the shadow WAL before
// the monitor copies it between syncs (1 MiB of 4 KiB pages), so that the
// copy and fsync before a checkpoint stay small.
const copyAheadFrames = 256

// walFull reports whether the WAL holds at least checkpointPageN frames
// written since its last restart (at most once per walWatchRetry for the
// same WAL header), or copyAheadFrames committed frames past what the
// shadow WAL holds.
//
// The first keeps the WAL file from growing past the size the application
// alone keeps it at (our read transaction holds off its own restarts, and
// a commit that extends the file costs far more than one that reuses it);
// looking for the frame at the threshold, not at the file's size, also
// sees a reused file fill up. The second spreads the copies over the
// cycle (see docs/performance.md, "wal_watch.go").
func (db *DB) walFull(seen *walWatch) bool {
	if db.MinCheckpointPageN <= 0 {
		return false
	}
	f, err := os.Open(db.WALPath())
	if err != nil {
		return false
	}
	defer f.Close()
	var b [walformat.HeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return false
	}
	hdr, err := walformat.ParseHeader(b[:])
	if err != nil {
		return false
	}
	copied, committed, threshold := db.watchState(hdr)
	if committed-copied >= copyAheadFrames*hdr.FrameSize() {
		return true
	}
	if hdr == seen.hdr && time.Since(seen.at) < walWatchRetry {
		return false
	}
	if !walformat.HasFrame(f, hdr, walformat.HeaderSize+int64(threshold-1)*hdr.FrameSize()) {
		return false
	}
	*seen = walWatch{hdr: hdr, at: time.Now()}
	return true
}

// watchState returns, when the shadow WAL follows the WAL with header hdr,
// the end of what it has copied and the end of what SQLite's wal-index
// counts as committed (both 0 otherwise: frames of a transaction still in
// progress are no reason to copy), and the checkpoint threshold in pages
// (checkpointPageN).
func (db *DB) watchState(hdr walformat.Header) (copied, committed int64, threshold int) {
	db.mu.Lock()
	defer db.mu.Unlock()
	threshold = db.checkpointPageN()
	if db.shadow == nil || db.files == nil || !db.shadow.Header().SameWAL(hdr) {
		return 0, 0, threshold
	}
	idx, err := db.files.readWALIndexHeader()
	if err != nil || !idx.describes(hdr) {
		return 0, 0, threshold
	}
	return db.shadow.Size(), idx.committedEnd(hdr), threshold
}
