package litestream

import "testing"

// CheckInvariantsOnClose makes db check the engine's invariants when it
// closes, and when the test ends if it is still open (see
// checkInvariantsOnClose).
func CheckInvariantsOnClose(t testing.TB, db *DB) { checkInvariantsOnClose(t, db) }
