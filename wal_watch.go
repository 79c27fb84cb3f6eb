package litestream

import (
	"os"
	"time"
)

// walWatchInterval is how often the monitor looks at the WAL between syncs:
// two small reads from the page cache, and no object-store request.
const walWatchInterval = 25 * time.Millisecond

// walWatchRetry spaces the early syncs for one WAL header: a checkpoint
// that was put off (a snapshot was reading the database) or could not
// complete (behind a long reader) is retried this often, not at every look.
const walWatchRetry = 250 * time.Millisecond

// walWatch remembers the last WAL header walFull reported, and when.
type walWatch struct {
	hdr WALHeader
	at  time.Time
}

// walFull reports whether the WAL holds at least MinCheckpointPageN frames
// written since its last restart (at most once per walWatchRetry for the
// same WAL header).
//
// Why: our read lock keeps the application's own checkpoints from
// restarting the WAL, so between our syncs the WAL file grows past the size
// the application alone would keep it at, and a commit that extends the
// file costs far more than one that reuses it (its fsync must also commit
// the file's new blocks): with a sync only every second, small
// transactions ran at three quarters of their speed without replication.
// Checking the frame at the threshold, rather than the file's size, also
// sees a reused file fill up again.
func (db *DB) walFull(seen *walWatch) bool {
	if db.MinCheckpointPageN <= 0 {
		return false
	}
	f, err := os.Open(db.WALPath())
	if err != nil {
		return false
	}
	defer f.Close()
	var b [WALHeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return false
	}
	hdr, err := ParseWALHeader(b[:])
	if err != nil || (hdr == seen.hdr && time.Since(seen.at) < walWatchRetry) {
		return false
	}
	off := WALHeaderSize + int64(db.MinCheckpointPageN-1)*hdr.FrameSize()
	if _, err := f.ReadAt(b[:WALFrameHeaderSize], off); err != nil {
		return false
	}
	fh := parseFrameHeader(b[:WALFrameHeaderSize])
	if fh.Salt1 != hdr.Salt1 || fh.Salt2 != hdr.Salt2 {
		return false
	}
	*seen = walWatch{hdr: hdr, at: time.Now()}
	return true
}
