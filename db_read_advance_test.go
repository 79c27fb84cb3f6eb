package litestream

import (
	"context"
	"testing"
)

// TestDB_AdvanceRead checks the SQLite behaviour that moving our read
// transaction forward before a checkpoint relies on, and the guard that
// keeps it safe.
//
// With a frame in the WAL past our old snapshot, the new read transaction
// keeps the WAL from restarting even after the application checkpoints
// everything it can and writes again. Without such a frame (the
// application checkpointed the whole WAL while nothing was written), the
// new transaction would sit on read-mark 0, and the application's next
// write would restart the WAL before our write lock: readBehind must then
// say no, and the second half shows what it prevents.
func TestDB_AdvanceRead(t *testing.T) {
	ctx := context.Background()
	db, w, commitN := openEngineWithWriter(t) // the test runs the application's checkpoints
	path := db.Path()
	commit := func() {
		t.Helper()
		commitN(1)
	}
	sync := func() {
		t.Helper()
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	appCheckpoint := func() {
		t.Helper()
		if _, err := w.DB().ExecContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)"); err != nil {
			t.Fatal(err)
		}
	}
	salt := func() uint32 {
		t.Helper()
		f, hdr, _, err := readWALHeader(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		return hdr.Salt1
	}
	behind := func() bool {
		db.mu.Lock()
		defer db.mu.Unlock()
		return db.readBehind()
	}
	advance := func() {
		t.Helper()
		db.mu.Lock()
		defer db.mu.Unlock()
		if err := db.conns.advanceRead(ctx); err != nil {
			t.Fatal(err)
		}
		db.readFloor = Pos{}
	}

	for i := 0; i < 5; i++ {
		commit()
	}
	sync()
	if behind() {
		t.Fatal("readBehind right after a copy, with no frame written since")
	}
	commit()
	sync()
	if !behind() {
		t.Fatal("readBehind is false with a frame copied past the read transaction's snapshot")
	}

	// Safe case: the application checkpoints up to our new snapshot and
	// writes again; the WAL must not restart.
	advance()
	appCheckpoint()
	before := salt()
	commit()
	if got := salt(); got != before {
		t.Fatal("the WAL restarted behind our advanced read transaction")
	}
	sync()

	// Unsafe case: advance with nothing past the snapshot, after the
	// application checkpointed everything up to it.
	advance()
	sync()
	appCheckpoint()
	if behind() {
		t.Fatal("readBehind is true although nothing was written past the read transaction's snapshot")
	}
	advance() // what the guard refuses
	before = salt()
	commit()
	if got := salt(); got == before {
		t.Fatal("the WAL did not restart: the hazard readBehind guards against did not occur, so this test no longer checks it")
	}
}
