package litestream_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// TestDB_BusyWriterKeepsWALSmall: an application committing back to back
// must not starve the engine's checkpoints. Before the fix, the engine
// waited for the write lock in SQLite's busy handler (which sleeps up to
// 100 ms between tries and so almost never caught the lock free) and only
// looked at the WAL once per monitor interval: the WAL grew without bound
// and every commit that extended it was slower.
func TestDB_BusyWriterKeepsWALSmall(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, replicaDir := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	w, err := sqlwriter.Open(ctx, path, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	db, _ := newTestDB(t, path, replicaDir)
	db.MonitorInterval = time.Second // the WAL watch, not the interval, must catch up
	db.MinCheckpointPageN = 100
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	const pageSize = 4096
	var maxWAL int64
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := w.Commit(ctx, 1, 100); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Stat(path + "-wal"); err == nil && fi.Size() > maxWAL {
			maxWAL = fi.Size()
		}
	}
	st := db.Stats()
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	frames := maxWAL / (pageSize + 24)
	t.Logf("%d transactions, %d checkpoints, WAL file peaked at %d frames", w.LastTx(), st.Checkpoints, frames)
	if st.Checkpoints < 3 || st.CheckpointErrs > 0 {
		t.Errorf("%d checkpoints (%d failed) under a 3 s write load; want at least 3, none failed", st.Checkpoints, st.CheckpointErrs)
	}
	if frames > 8*int64(db.MinCheckpointPageN) {
		t.Errorf("WAL file grew to %d frames; want at most %d (8 x the checkpoint threshold; the app alone would restart it at 1000)", frames, 8*db.MinCheckpointPageN)
	}
	if _, m := restoreLatest(t, replicaDir, latest()); m != w.LastTx() {
		t.Fatalf("restored %d transactions, committed %d", m, w.LastTx())
	}
}
