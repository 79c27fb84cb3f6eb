package litestream_test

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestDB_RolledBackTailOverwritten: the engine copies the frames of a
// transaction still in progress (a large one spills pages into the WAL
// before its commit), the transaction rolls back, and a short transaction
// then overwrites the start of those frames but not their end. The engine
// must notice that its copied tail is gone and copy the short transaction;
// before the fix it went on from the stale tail, missed that commit, and
// its next checkpoint restarted the WAL over it: the restore lacked a
// committed transaction.
func TestDB_RolledBackTailOverwritten(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	for i := 0; i < 5; i++ {
		if _, err := w.Commit(ctx, 1, 100); err != nil {
			t.Fatal(err)
		}
	}
	db, r := newTestDB(t, path, replicaDir)
	db.CheckpointInterval, db.MinCheckpointPageN = 0, 0
	defer db.Close(ctx)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil { // the snapshot, before what follows
		t.Fatal(err)
	}

	// A large transaction on another connection, with a cache so small
	// that SQLite spills its pages into the WAL before the commit.
	conn := appConn(t, "file:"+path+"?_pragma=cache_size(5)&_pragma=busy_timeout(5000)")
	before, _ := os.Stat(path + "-wal")
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	payload := strings.Repeat("x", 3000)
	for i := 0; i < 200; i++ {
		if _, err := conn.ExecContext(ctx, "INSERT INTO t (tx, nrows, payload, sum) VALUES (-1, 1, ?, '')", payload); err != nil {
			t.Fatal(err)
		}
	}
	if after, _ := os.Stat(path + "-wal"); after.Size() <= before.Size()+100*4096 {
		t.Fatalf("the transaction did not spill into the WAL (%d -> %d bytes)", before.Size(), after.Size())
	}
	if err := db.Sync(ctx); err != nil { // copies the uncommitted frames
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}

	// One short transaction overwrites the first of those frames. Its rows
	// fill their own pages, so that no later transaction carries them.
	size := db.Stats().ShadowSize
	if _, err := w.Commit(ctx, 3, 3000); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	// Copied at once, not only by the next checkpoint.
	if db.Stats().ShadowSize == size {
		t.Error("the sync after the rollback did not copy the new transaction")
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(ctx, false); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := w.Commit(ctx, 1, 3000); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	requireRestoresAll(t, replicaDir, w)
}
