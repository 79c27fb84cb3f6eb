package litestream_test

import (
	"context"
	"os"
	"testing"
	"time"
)

// TestDB_CheckpointLeavesRestartToApp: a checkpoint makes no write of its
// own (each took the write lock a second time and delayed the application's
// commits): the WAL keeps its header until the application writes, that
// write restarts it, the next sync follows onto the next shadow index, and
// a restore holds every transaction. An idle WAL is not checkpointed again
// and again.
func TestDB_CheckpointLeavesRestartToApp(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	for i := 0; i < 20; i++ {
		if _, err := w.Commit(ctx, 2, 200); err != nil {
			t.Fatal(err)
		}
	}
	db, r := newTestDB(t, path, replicaDir)
	db.MinCheckpointPageN = 0
	db.CheckpointInterval = time.Millisecond
	defer db.Close(ctx)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	walHeader := func() []byte {
		b, err := os.ReadFile(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		return b[:32]
	}
	before := walHeader()
	if err := db.Checkpoint(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if got := walHeader(); string(got) != string(before) {
		t.Fatal("the WAL was restarted before the application wrote: the engine wrote to the database")
	}
	st := db.Stats()
	for i := 0; i < 5; i++ { // interval tier, nothing new in the WAL
		time.Sleep(2 * time.Millisecond)
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := db.Stats().Checkpoints - st.Checkpoints; n != 0 {
		t.Errorf("%d checkpoints of a WAL with nothing new since the last one; want 0", n)
	}

	if _, err := w.Commit(ctx, 1, 100); err != nil {
		t.Fatal(err)
	}
	if got := walHeader(); string(got) == string(before) {
		t.Fatal("the application's write after a complete checkpoint did not restart the WAL")
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	after := db.Stats()
	if after.ShadowIndex != st.ShadowIndex+1 || after.Generation != st.Generation {
		t.Fatalf("after the restart: generation %s index %d; want generation %s index %d",
			after.Generation, after.ShadowIndex, st.Generation, st.ShadowIndex+1)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	requireRestoresAll(t, replicaDir, w)
}

// TestDB_RestartFollowedAtOnce: when the application's write restarts the
// WAL after the engine's checkpoint, the engine moves to the next shadow
// index within a WAL watch, not at its next monitor tick: until it does, a
// kill of the engine would cost a new generation at the next start.
func TestDB_RestartFollowedAtOnce(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	if _, err := w.Commit(ctx, 1, 100); err != nil {
		t.Fatal(err)
	}
	db, r := newTestDB(t, path, replicaDir)
	db.MonitorInterval, r.SyncInterval = time.Hour, time.Hour // a replica sync copies the WAL too
	db.MinCheckpointPageN, db.CheckpointInterval = 1<<20, 0
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	for r.Pos().Generation == "" { // the replica's first sync, which copies the WAL, is done
		time.Sleep(5 * time.Millisecond)
	}
	if err := db.Checkpoint(ctx, false); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	idx := db.Stats().ShadowIndex
	if _, err := w.Commit(ctx, 1, 100); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for db.Stats().ShadowIndex == idx {
		if time.Since(start) > 5*time.Second {
			t.Fatalf("shadow WAL still at index %d 5 s after the WAL restart", idx)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("next index after %v", time.Since(start))
}
