// Command sqlwriter is the test application: it commits numbered
// transactions to a SQLite database from its own process and prints
// "committed N" after each commit, so tests know exactly what must survive.
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

func main() {
	path := flag.String("db", "", "database path")
	n := flag.Int("n", 1000, "transactions to commit (0: until stopped)")
	rows := flag.Int("rows", 3, "maximum rows per transaction (varies 1..rows)")
	size := flag.Int("size", 200, "maximum payload bytes per row (varies)")
	big := flag.Int("big", 0, "bytes of one large transaction committed half way (0: none)")
	every := flag.Duration("every", 0, "pause between transactions")
	ckpt := flag.Int("autocheckpoint", -1, "the app's wal_autocheckpoint (-1: SQLite default, 0: off)")
	truncateEvery := flag.Int("truncate-every", 0, "run PRAGMA wal_checkpoint(TRUNCATE) every N transactions (0: never)")
	journal := flag.String("journal", "wal", "journal mode of a new database")
	exact := flag.Bool("exact", false, "exactly -rows rows of -size bytes per transaction (no variation)")
	flag.Parse()
	if *path == "" {
		fmt.Fprintln(os.Stderr, "sqlwriter: -db is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *path, *journal, *n, *rows, *size, *big, *every, *ckpt, *truncateEvery, *exact); err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "sqlwriter:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, path, journal string, n, rows, size, big int, every time.Duration, ckpt, truncateEvery int, exact bool) error {
	w, err := sqlwriter.OpenMode(ctx, path, ckpt, journal)
	if err != nil {
		return err
	}
	defer w.Close()
	for i := 1; n == 0 || i <= n; i++ {
		if ctx.Err() != nil {
			return nil
		}
		nrows, psize := 1+i%rows, 1+(i*7919)%size
		if exact {
			nrows, psize = rows, size
		}
		if big > 0 && i == n/2 {
			nrows, psize = (big+(1<<20)-1)/(1<<20), 1<<20
		}
		tx, err := w.Commit(ctx, nrows, psize)
		if err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		fmt.Printf("committed %d\n", tx)
		if truncateEvery > 0 && i%truncateEvery == 0 {
			if _, err := w.DB().ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
				return fmt.Errorf("checkpoint: %w", err)
			}
		}
		if every > 0 {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(every):
			}
		}
	}
	return nil
}
