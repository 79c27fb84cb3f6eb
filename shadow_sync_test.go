package litestream

import (
	"context"
	"testing"
)

// TestDB_LockedCopySyncedBeforeUnlock: a copy under the write lock leaves
// its fsync for later (it runs alongside the checkpoint), and releasing the
// lock, by any path, does that fsync first: once the lock is released the
// WAL may restart, and the shadow must then hold its frames durably.
func TestDB_LockedCopySyncedBeforeUnlock(t *testing.T) {
	ctx := context.Background()
	db, _, commit := openEngineWithWriter(t)
	unsynced := func() bool {
		db.mu.Lock()
		defer db.mu.Unlock()
		return db.shadow.needsFsync
	}

	commit(5)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	commit(5)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if unsynced() {
		t.Fatal("a copy outside the write lock left its bytes unsynced")
	}

	commit(5)
	func() {
		db.mu.Lock()
		defer db.mu.Unlock()
		if err := db.conns.lockWrite(ctx); err != nil {
			t.Fatal(err)
		}
		before := db.shadow.Size()
		if err := db.copyWAL(ctx); err != nil {
			t.Fatal(err)
		}
		if db.shadow.Size() == before || !db.shadow.needsFsync {
			t.Fatalf("copy under the lock: size %d -> %d, needsFsync %v; want new bytes left unsynced", before, db.shadow.Size(), db.shadow.needsFsync)
		}
		if err := db.unlockWrite(ctx); err != nil {
			t.Fatal(err)
		}
		if db.shadow.needsFsync {
			t.Fatal("write lock released with the shadow's bytes unsynced")
		}
	}()

	commit(5)
	index := db.shadow.Index()
	if err := db.Checkpoint(ctx, false); err != nil {
		t.Fatal(err)
	}
	if unsynced() {
		t.Fatal("checkpoint released the write lock with the shadow's bytes unsynced")
	}
	if got := db.shadow.Index(); got != index+1 {
		t.Fatalf("shadow index %d after the checkpoint, want %d (a rollover)", got, index+1)
	}
	commit(5)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); st.Generations != 1 {
		t.Fatalf("%d generations: %s", st.Generations, st.LastNewGenCause)
	}
}
