// Command sqlwriter is the test application: it commits numbered
// transactions to a SQLite database from its own process and prints
// "committed N" after each commit, so tests know exactly what must survive.
// It closes its database when it finishes or receives SIGINT or SIGTERM, as
// applications do; with -conn-per-tx it also opens and closes a connection
// for every transaction.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// config is what the flags set.
type config struct {
	path, journal          string
	n, rows, size, big     int
	every, busyTimeout     time.Duration
	ckpt                   int
	truncateEvery, vacuumN int
	exact, perTx           bool
}

func main() {
	var c config
	flag.StringVar(&c.path, "db", "", "database path")
	flag.IntVar(&c.n, "n", 1000, "transactions to commit (0: until stopped)")
	flag.IntVar(&c.rows, "rows", 3, "maximum rows per transaction (varies 1..rows)")
	flag.IntVar(&c.size, "size", 200, "maximum payload bytes per row (varies)")
	flag.IntVar(&c.big, "big", 0, "bytes of one large transaction committed half way (0: none)")
	flag.DurationVar(&c.every, "every", 0, "pause between transactions")
	flag.IntVar(&c.ckpt, "autocheckpoint", -1, "the app's wal_autocheckpoint (-1: SQLite default, 0: off)")
	flag.IntVar(&c.truncateEvery, "truncate-every", 0, "run PRAGMA wal_checkpoint(TRUNCATE) every N transactions (0: never)")
	flag.IntVar(&c.vacuumN, "vacuum-every", 0, "run VACUUM every N transactions (0: never)")
	flag.StringVar(&c.journal, "journal", "wal", "journal mode of a new database")
	flag.BoolVar(&c.exact, "exact", false, "exactly -rows rows of -size bytes per transaction (no variation)")
	flag.DurationVar(&c.busyTimeout, "busy-timeout", 30*time.Second, "how long a statement waits for another connection's lock")
	flag.BoolVar(&c.perTx, "conn-per-tx", false, "open and close a connection for each transaction (and each checkpoint or VACUUM)")
	flag.Parse()
	if c.path == "" {
		fmt.Fprintln(os.Stderr, "sqlwriter: -db is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, c); err != nil {
		fmt.Fprintln(os.Stderr, "sqlwriter:", err)
		os.Exit(1)
	}
}

// run commits the transactions, then closes the database; an error closing
// it is an error of the run.
func run(ctx context.Context, c config) (err error) {
	w, err := sqlwriter.OpenWith(ctx, c.path, sqlwriter.Options{Autocheckpoint: c.ckpt, JournalMode: c.journal, ConnPerTx: c.perTx, BusyTimeout: c.busyTimeout})
	if err != nil {
		if ctx.Err() != nil {
			return nil // stopped by a signal before it could open
		}
		return err
	}
	defer func() {
		if cerr := w.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("close: %w", cerr)
		}
	}()
	for i := 1; c.n == 0 || i <= c.n; i++ {
		if ctx.Err() != nil {
			return nil
		}
		nrows, psize := 1+i%c.rows, 1+(i*7919)%c.size
		if c.exact {
			nrows, psize = c.rows, c.size
		}
		if c.big > 0 && i == c.n/2 {
			nrows, psize = (c.big+(1<<20)-1)/(1<<20), 1<<20
		}
		tx, err := w.Commit(ctx, nrows, psize)
		if tx > 0 {
			// Committed, even if closing its connection then failed.
			fmt.Printf("committed %d\n", tx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return nil // stopped by a signal in the middle
			}
			return fmt.Errorf("commit: %w", err)
		}
		for _, op := range []struct {
			every int
			stmt  string
		}{{c.truncateEvery, "PRAGMA wal_checkpoint(TRUNCATE)"}, {c.vacuumN, "VACUUM"}} {
			if op.every > 0 && i%op.every == 0 {
				if err := w.Exec(ctx, op.stmt); err != nil {
					if ctx.Err() != nil {
						return nil
					}
					return fmt.Errorf("%s: %w", op.stmt, err)
				}
			}
		}
		if c.every > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(c.every):
			}
		}
	}
	return nil
}
