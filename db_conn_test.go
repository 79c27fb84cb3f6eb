package litestream

import (
	"context"
	"database/sql"
	"path/filepath"
	"runtime"
	"testing"

	_ "modernc.org/sqlite"
)

// TestDBConns_CancelledContextReleasesLocks: a shutdown (cancelled context)
// in the middle of the lock dance must still release the read and write
// locks, or the next sync fails and application writers stay blocked.
func TestDBConns_CancelledContextReleasesLocks(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	app, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(2000)")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Exec("CREATE TABLE x (v)"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := openDBConns(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	if err := c.acquireRead(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.lockWrite(ctx); err != nil {
		t.Fatal(err)
	}
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := c.unlockWrite(cancelled); err != nil {
		t.Fatalf("unlock with a cancelled context: %v", err)
	}
	if err := c.releaseRead(cancelled); err != nil {
		t.Fatalf("release with a cancelled context: %v", err)
	}
	if _, err := app.Exec("INSERT INTO x VALUES (1)"); err != nil {
		t.Fatalf("application writer blocked after unlock: %v", err)
	}
	if err := c.acquireRead(ctx); err != nil {
		t.Fatalf("read lock after a cancelled release: %v", err)
	}
}

// TestDBConns_CancelledBeginLeavesNoTransaction: the driver reports a BEGIN
// IMMEDIATE that completed just as its context ended as failed; the lock
// must not stay held, or the application's writers block until the
// engine's connection closes. Cancels land at random points of many
// attempts; after each failure the connection must be outside any
// transaction.
func TestDBConns_CancelledBeginLeavesNoTransaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	app, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if _, err := app.Exec("CREATE TABLE x (v)"); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c, err := openDBConns(ctx, path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	appConn, err := app.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer appConn.Close()
	if _, err := appConn.ExecContext(ctx, "PRAGMA busy_timeout = 0"); err != nil {
		t.Fatal(err)
	}
	failed := 0
	for i := 0; i < 3000 && failed < 200; i++ {
		cctx, cancel := context.WithCancel(ctx)
		go func() {
			for j := 0; j < i%50; j++ {
				runtime.Gosched()
			}
			cancel()
		}()
		err := c.lockWrite(cctx)
		cancel()
		if err == nil {
			if err := c.unlockWrite(ctx); err != nil {
				t.Fatal(err)
			}
			continue
		}
		failed++
		if c.write != nil || c.writeHeld {
			t.Fatalf("attempt %d: a failed lockWrite left the write connection open", i)
		}
		// The application takes the write lock at once: nothing of ours
		// holds it.
		if _, err := appConn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
			t.Fatalf("attempt %d: a cancelled BEGIN IMMEDIATE left the write lock held: %v", i, err)
		}
		if _, err := appConn.ExecContext(ctx, "ROLLBACK"); err != nil {
			t.Fatal(err)
		}
	}
	if failed == 0 {
		t.Fatal("no attempt was cancelled")
	}
}
