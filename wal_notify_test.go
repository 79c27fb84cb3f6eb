package litestream_test

import (
	"context"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
)

// TestDB_NotifierIdleCostsNothing: with a WALNotifier, an idle database's
// monitor makes no sync however many monitor intervals pass, and a commit
// of the sqlite3 shell is still copied and shipped, woken by the kernel's
// report, well before any backstop (a minute). The same database without a
// notifier syncs at every monitor interval (the control).
func TestDB_NotifierIdleCostsNothing(t *testing.T) {
	ctx := context.Background()
	notifier, err := litestream.NewWALNotifier()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { notifier.Close() })
	for _, withNotifier := range []bool{true, false} {
		name := map[bool]string{true: "notifier", false: "polling"}[withNotifier]
		t.Run(name, func(t *testing.T) {
			const interval = 50 * time.Millisecond
			a := openShellAppDB(t, func(db *litestream.DB, r *litestream.Replica) {
				db.MonitorInterval = interval
				if withNotifier {
					db.Notifier = notifier
				}
				r.SyncInterval = interval
			})
			path, dir, db, client := a.path, a.replicaDir, a.db, a.client
			// Let the start settle (the first checkpoint and its copies).
			time.Sleep(10 * interval)
			syncs := db.Stats().Syncs
			time.Sleep(10 * interval)
			idle := db.Stats().Syncs - syncs
			if withNotifier && idle != 0 {
				t.Fatalf("an idle database with a notifier synced %d times in 10 monitor intervals; want none", idle)
			}
			if !withNotifier && idle < 3 {
				t.Fatalf("the control synced %d times in 10 monitor intervals; want one an interval", idle)
			}

			uploads := client.uploads.Load()
			commitOnce(t, path)
			waitFor(t, 30*time.Second, "the commit's upload", func() bool { return client.uploads.Load() > uploads })
			if err := db.Close(ctx); err != nil {
				t.Fatal(err)
			}
			requireRows(t, path, 2)
			requireRows(t, restoreFile(t, dir, latest()), 2)
		})
	}
}
