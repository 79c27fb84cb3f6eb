package litestream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"

	"modernc.org/sqlite"
)

// writeLockTimeout bounds how long the engine waits for the write lock
// before reporting the checkpoint (or validation) as failed; the next sync
// tries again.
const writeLockTimeout = 30 * time.Second

// sqliteBusy is SQLite's primary result code for a lock held elsewhere.
const sqliteBusy = 5

// isBusy reports whether err is SQLITE_BUSY (any extended code).
func isBusy(err error) bool {
	var se *sqlite.Error
	return errors.As(err, &se) && se.Code()&0xff == sqliteBusy
}

// retryBusy runs fn until it does not fail with SQLITE_BUSY. A busy
// application frees the write lock only for microseconds between commits,
// which a waiter that sleeps (as SQLite's busy handler does) almost never
// wins: so it retries at once for lockSpin when there is more than one
// CPU, then about every millisecond, and every 5 ms after a second (see
// docs/performance.md, "db_conn_busy.go"). Callers say what waited.
func retryBusy(ctx context.Context, fn func() error) error {
	return retryBusyFor(ctx, writeLockTimeout, fn)
}

// retryBusyFor is retryBusy giving up after limit, with an error that
// isBusy recognises.
func retryBusyFor(ctx context.Context, limit time.Duration, fn func() error) error {
	start := time.Now()
	for {
		err := fn()
		if err == nil || !isBusy(err) {
			return err
		}
		waited := time.Since(start)
		if waited > limit {
			return fmt.Errorf("database stayed locked by another connection for %s: %w", limit.Round(time.Millisecond), err)
		}
		// On one CPU (GOMAXPROCS follows a container's CPU limit) the spin
		// would take turns with the very transaction it waits for.
		if waited < lockSpin && runtime.GOMAXPROCS(0) > 1 {
			if err := ctx.Err(); err != nil {
				return err
			}
			runtime.Gosched()
			continue
		}
		wait := time.Millisecond
		if waited > time.Second {
			wait = 5 * time.Millisecond
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// lockSpin is how long retryBusy tries again without sleeping: long enough
// to catch the gap between two of a busy application's transactions, short
// enough that a long transaction costs at most this much of one core.
const lockSpin = 10 * time.Millisecond
