package litestream

import (
	"context"
	"database/sql"
	"path/filepath"
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
