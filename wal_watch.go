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
// shadow WAL holds. Any committed frame past the shadow WAL also wakes the
// replicas (DB.committedAhead), which ship it at once when their last
// upload is a sync interval old.
//
// The first keeps the WAL file from growing past the size the application
// alone keeps it at (our read transaction holds off its own restarts, and
// a commit that extends the file costs far more than one that reuses it);
// looking for the frame at the threshold, not at the file's size, also
// sees a reused file fill up. The second spreads the copies over the
// cycle (see docs/performance.md, "wal_watch.go").
//
// pending reports whether the look found work that a later look may act on
// (a committed frame the shadow WAL lacks, the threshold reached), so that
// a monitor that looks only after changes looks again.
func (db *DB) walFull(seen *walWatch) (full, pending bool) {
	f, err := os.Open(db.WALPath())
	if err != nil {
		return false, false
	}
	defer f.Close()
	var b [walformat.HeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return false, false
	}
	hdr, err := walformat.ParseHeader(b[:])
	if err != nil {
		return false, false
	}
	w := db.watchState(hdr)
	if w.ahead {
		db.signalCommittedAhead()
	}
	if db.MinCheckpointPageN <= 0 {
		return false, w.ahead
	}
	if w.committed-w.copied >= copyAheadFrames*hdr.FrameSize() {
		return true, true
	}
	if hdr == seen.hdr && time.Since(seen.at) < walWatchRetry {
		return false, true // at the threshold already: retried soon
	}
	if !walformat.HasFrame(f, hdr, walformat.HeaderSize+int64(w.threshold-1)*hdr.FrameSize()) {
		return false, w.ahead
	}
	*seen = walWatch{hdr: hdr, at: time.Now()}
	return true, true
}

// watchView is what the monitor's look at the WAL found.
type watchView struct {
	// copied and committed are, when the shadow WAL follows the WAL with
	// the header looked at, the end of what it has copied and the end of
	// what SQLite's wal-index counts as committed (both 0 otherwise:
	// frames of a transaction still in progress are no reason to copy).
	copied, committed int64
	threshold         int  // the checkpoint threshold in pages (checkpointPageN)
	ahead             bool // the wal-index counts a committed frame the shadow WAL lacks
}

// watchState returns what the monitor needs to know of the WAL with
// header hdr (see watchView).
func (db *DB) watchState(hdr walformat.Header) watchView {
	db.mu.Lock()
	defer db.mu.Unlock()
	v := watchView{threshold: db.checkpointPageN()}
	if db.shadow == nil || db.files == nil {
		return v
	}
	idx, err := db.files.readWALIndexHeader()
	if err != nil || !idx.describes(hdr) {
		return v
	}
	end := idx.committedEnd(hdr)
	if !db.shadow.Header().SameWAL(hdr) {
		// The WAL restarted after a checkpoint and the shadow WAL has not
		// copied its new header yet: any committed frame in it is new.
		v.ahead = end > walformat.HeaderSize
		return v
	}
	v.copied, v.committed = db.shadow.Size(), end
	v.ahead = v.committed > v.copied
	return v
}

// signalCommittedAhead wakes whoever waits on committedAhead.
func (db *DB) signalCommittedAhead() {
	db.mu.Lock()
	defer db.mu.Unlock()
	close(db.ahead)
	db.ahead = make(chan struct{})
}

// committedAhead returns a channel closed when the monitor next sees a
// committed transaction in the WAL that the shadow WAL does not hold yet
// (within walWatchInterval of its commit).
func (db *DB) committedAhead() <-chan struct{} {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.ahead
}
