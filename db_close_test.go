package litestream_test

import (
	"bytes"
	"context"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// TestDB_CloseNeverCheckpoints: the engine's connections, when they are
// the last ones to the database, close without a checkpoint: the database
// file is unchanged and the WAL keeps its frames. A checkpoint on close
// writes into the application's database, from a WAL that may no longer
// be the one at the -wal path.
func TestDB_CloseNeverCheckpoints(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	commitRows(t, w, 20)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	db, r := newManualDB(t, path, replicaDir)
	syncAll(t, db, r)
	walBefore, err := os.Stat(path + "-wal")
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("closing the engine changed the database file (%d -> %d bytes): it checkpointed", len(before), len(after))
	}
	if fi, err := os.Stat(path + "-wal"); err != nil || fi.Size() != walBefore.Size() {
		t.Errorf("closing the engine changed the WAL: %v, %v", fi, err)
	}
}

// TestDB_SnapshotBesideHeldCheckpoint: with an application reader holding
// checkpoints back and a writer committing all the while, a snapshot
// taken between checkpoints, restored at its own index, is a consistent
// database: the database file never holds a page of a commit that the
// index's segments lack (the shadow WAL is copied past our read snapshot
// before any checkpoint round).
func TestDB_SnapshotBesideHeldCheckpoint(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	commitRows(t, w, 20)
	db, r := newManualDB(t, path, replicaDir)
	syncAll(t, db, r)
	reader := appConn(t, "file:"+path)
	if _, err := reader.ExecContext(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := reader.QueryRowContext(ctx, "SELECT count(*) FROM t").Scan(&n); err != nil {
		t.Fatal(err)
	}

	w2, err := sqlwriter.Open(ctx, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := w2.Commit(ctx, 3, 500); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	defer func() { close(stop); wg.Wait() }()
	for i := 0; i < 10; i++ {
		if err := db.Checkpoint(ctx, false); err != nil {
			t.Fatal(err)
		}
		info, err := r.Snapshot(ctx)
		if err != nil {
			t.Fatal(err)
		}
		opt := litestream.RestoreOptions{Generation: info.Generation, Index: info.Index}
		restoreLatest(t, replicaDir, opt) // verifies every transaction's rows and sums
		time.Sleep(5 * time.Millisecond)
	}
}
