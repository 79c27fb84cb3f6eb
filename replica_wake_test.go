package litestream_test

import (
	"context"
	"io"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
)

// uploadCountingClient counts segment uploads.
type uploadCountingClient struct {
	*file.ReplicaClient
	uploads atomic.Int64
}

func (c *uploadCountingClient) WriteSegment(ctx context.Context, pos litestream.Pos, r io.Reader) (litestream.SegmentInfo, error) {
	info, err := c.ReplicaClient.WriteSegment(ctx, pos, r)
	if err == nil {
		c.uploads.Add(1)
	}
	return info, err
}

// commitOnce commits one row in the sqlite3 shell, a process of its own.
func commitOnce(t *testing.T, path string) {
	t.Helper()
	shell(t, path, `INSERT INTO t (v) VALUES (randomblob(100))`)
}

// shellAppDB is a database the sqlite3 shell made and wrote one row to,
// watched by a DB (set up by configure before Open, closed when the test
// ends) with one file replica whose uploads are counted; it returns once
// the replica's first upload is done.
type shellAppDB struct {
	path, replicaDir string
	db               *litestream.DB
	r                *litestream.Replica
	client           *uploadCountingClient
}

func openShellAppDB(t *testing.T, configure func(*litestream.DB, *litestream.Replica)) *shellAppDB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "app.db")
	a := &shellAppDB{path: path, replicaDir: filepath.Join(filepath.Dir(path), "replica")}
	shell(t, path, `PRAGMA journal_mode=wal; CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB)`)
	commitOnce(t, path)
	a.client = &uploadCountingClient{ReplicaClient: file.NewReplicaClient(a.replicaDir)}
	a.db = litestream.NewDB(path)
	litestream.CheckInvariantsOnClose(t, a.db)
	a.db.Logger = testLogger(t)
	a.r = litestream.NewReplica("file", a.client)
	a.db.AddReplica(a.r)
	configure(a.db, a.r)
	if err := a.db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.db.Close(context.Background()) })
	waitFor(t, 20*time.Second, "the first upload", func() bool { return a.client.uploads.Load() > 0 })
	return a
}

// TestReplica_SparseCommitShipsAtOnce: an idle replica makes no sync; a
// commit that comes a SyncInterval after the last upload wakes exactly
// one sync, which ships it; a commit right after that waits, however
// often the monitor sees it, until the upload is a SyncInterval old; and
// everything committed restores, with the application's database intact.
func TestReplica_SparseCommitShipsAtOnce(t *testing.T) {
	ctx := context.Background()
	const interval = 300 * time.Millisecond
	a := openShellAppDB(t, func(db *litestream.DB, r *litestream.Replica) {
		db.MonitorInterval = time.Hour // only the WAL watch and the replica copy
		r.SyncInterval = interval
	})
	path, dir, db, r, client := a.path, a.replicaDir, a.db, a.r, a.client

	// Idle: no sync at all for several sync intervals.
	waitFor(t, 20*time.Second, "the first sync's status", func() bool { return r.Status().SyncCount > 0 })
	syncs := r.Status().SyncCount
	time.Sleep(4 * interval)
	if n := r.Status().SyncCount; n != syncs {
		t.Fatalf("an idle replica synced %d times in 4 sync intervals; want none", n-syncs)
	}

	uploads := client.uploads.Load()
	commitOnce(t, path)
	waitFor(t, 20*time.Second, "the lone commit's upload", func() bool { return client.uploads.Load() > uploads })
	if n := r.Status().SyncCount; n != syncs+1 {
		t.Fatalf("the lone commit took %d syncs; want the one it woke", n-syncs)
	}

	// Right after that upload: seen by the monitor many times, not shipped
	// before its SyncInterval is up. (Asserted only while the interval
	// cannot be over: the watches counted take less than it.)
	shipped := time.Now()
	commitOnce(t, path)
	for i := 0; i < 4; i++ {
		<-litestream.CommittedAhead(db)
	}
	if time.Since(shipped) < interval {
		if n := client.uploads.Load(); n != uploads+1 {
			t.Fatalf("a commit within a SyncInterval of the last upload shipped early: %d uploads, want %d", n, uploads+1)
		}
	}
	waitFor(t, 20*time.Second, "the second commit's upload", func() bool { return client.uploads.Load() > uploads+1 })

	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	requireRows(t, path, 3)
	requireRows(t, restoreFile(t, dir, latest()), 3)
}
