// Command followreader is the test reader of a follower database
// (litestream restore -follow): from its own process, with SQLite, it
// reads the database over and over and checks every state it sees
// against the sqlwriter's record of committed transactions
// (sqlwriter.Verify: integrity_check ok, transactions 1..m each whole,
// payload checksums intact), and that the follower never goes back. It
// also holds read transactions across the follower's commits and checks
// that their snapshot stays the same.
//
// It prints "seen M" each time the last transaction it sees changes, and
// at the end "done reads=N max=M held=H". Any violation prints
// "FAIL: ..." and exits 1.
package main

import (
	"context"
	"database/sql"
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/litestream-go/litestream/internal/sqlwriter"
)

func main() {
	path := flag.String("db", "", "follower database path")
	hold := flag.Duration("hold", 0, "every other read, hold a read transaction this long and check its snapshot stays (0: never)")
	pause := flag.Duration("pause", 5*time.Millisecond, "pause between reads")
	flag.Parse()
	if *path == "" {
		fmt.Fprintln(os.Stderr, "followreader: -db is required")
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *path, *hold, *pause); err != nil {
		fmt.Println("FAIL:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, path string, hold, pause time.Duration) error {
	for { // the follower creates the file once its first restore is done
		if _, err := os.Stat(path); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			fmt.Println("done reads=0 max=0 held=0")
			return nil
		case <-time.After(10 * time.Millisecond):
		}
	}
	last, reads, held := 0, 0, 0
	for ctx.Err() == nil {
		m, err := sqlwriter.Verify(ctx, path)
		if err != nil {
			if ctx.Err() != nil {
				break
			}
			return fmt.Errorf("read %d: %w", reads+1, err)
		}
		reads++
		if m < last {
			return fmt.Errorf("read %d: the follower went back from transaction %d to %d", reads, last, m)
		}
		if m != last {
			fmt.Printf("seen %d\n", m)
			last = m
		}
		if hold > 0 && reads%2 == 0 {
			ok, err := holdSnapshot(ctx, path, hold)
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("held read: %w", err)
			}
			if ok {
				held++
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(pause):
		}
	}
	fmt.Printf("done reads=%d max=%d held=%d\n", reads, last, held)
	return nil
}

// holdSnapshot reads the last transaction and the row count in one read
// transaction, waits, and reads them again in the same transaction: SQLite
// must keep the snapshot while the follower commits.
func holdSnapshot(ctx context.Context, path string, d time.Duration) (bool, error) {
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return false, err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return false, err
	}
	defer tx.Rollback()
	read := func() (int64, int64, error) {
		var maxTx, rows int64
		err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(tx), 0), COUNT(*) FROM t").Scan(&maxTx, &rows)
		return maxTx, rows, err
	}
	m1, n1, err := read()
	if err != nil {
		if errors.Is(err, context.Canceled) {
			return false, nil
		}
		return false, err
	}
	select {
	case <-ctx.Done():
		return false, nil
	case <-time.After(d):
	}
	m2, n2, err := read()
	if err != nil {
		return false, err
	}
	if m1 != m2 || n1 != n2 {
		return false, fmt.Errorf("a read transaction's snapshot changed under it: (tx %d, %d rows) then (tx %d, %d rows)", m1, n1, m2, n2)
	}
	return true, nil
}
