package litestream

// CommittedAhead returns a channel closed when db's monitor next sees a
// committed transaction that its shadow WAL does not hold.
func CommittedAhead(db *DB) <-chan struct{} { return db.committedAhead() }
