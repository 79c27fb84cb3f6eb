package litestream_test

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// testLogger returns a logger that writes to the test log only when -v.
func testLogger(t *testing.T) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// newTestDB returns a DB on path with one file replica in dir, with short
// intervals so tests run fast.
func newTestDB(t *testing.T, path, replicaDir string) (*litestream.DB, *litestream.Replica) {
	t.Helper()
	db := litestream.NewDB(path)
	litestream.CheckInvariantsOnClose(t, db)
	db.Logger = testLogger(t)
	db.MonitorInterval = 20 * time.Millisecond
	r := litestream.NewReplica("file", file.NewReplicaClient(replicaDir))
	r.SyncInterval = 20 * time.Millisecond
	db.AddReplica(r)
	return db, r
}

// newManualDB is newTestDB with the engine's own checkpoints off, for a
// test that runs every sync and checkpoint itself; it is closed when the
// test ends.
func newManualDB(t *testing.T, path, replicaDir string) (*litestream.DB, *litestream.Replica) {
	t.Helper()
	db, r := newTestDB(t, path, replicaDir)
	db.CheckpointInterval, db.MinCheckpointPageN = 0, 0
	t.Cleanup(func() { db.Close(context.Background()) })
	return db, r
}

// syncAll copies the WAL into the shadow WAL, then ships it to the replica.
func syncAll(t *testing.T, db *litestream.DB, r *litestream.Replica) {
	t.Helper()
	ctx := context.Background()
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
}

// restoreFile restores the replica in dir to a new file and returns its path.
func restoreFile(t *testing.T, dir string, opt litestream.RestoreOptions) string {
	t.Helper()
	ctx := context.Background()
	r := litestream.NewReplica("file", file.NewReplicaClient(dir))
	plan, err := litestream.PlanRestore(ctx, []*litestream.Replica{r}, opt)
	if err != nil {
		t.Fatalf("plan restore: %v", err)
	}
	out := filepath.Join(t.TempDir(), "restored.db")
	if err := litestream.Restore(ctx, plan, out, opt); err != nil {
		t.Fatalf("restore %s: %v", plan, err)
	}
	return out
}

// restoreLatest restores the replica in dir to a new file and verifies it.
func restoreLatest(t *testing.T, dir string, opt litestream.RestoreOptions) (string, int) {
	t.Helper()
	out := restoreFile(t, dir, opt)
	m, err := sqlwriter.Verify(context.Background(), out)
	if err != nil {
		t.Fatalf("verify restored database: %v", err)
	}
	return out, m
}

// openWriter opens the test writer on app.db in a new directory and returns
// it with the database path and a replica directory beside it.
func openWriter(t *testing.T, autocheckpoint int) (*sqlwriter.Writer, string, string) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "app.db")
	w, err := sqlwriter.Open(context.Background(), path, autocheckpoint)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, path, filepath.Join(dir, "replica")
}

// appConn opens one connection of another application to the database
// (dsn: "file:" and the path, with any parameters), closed when the test
// ends.
func appConn(t *testing.T, dsn string) *sql.Conn {
	t.Helper()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// commitRows commits n one-row transactions of 100 bytes.
func commitRows(t *testing.T, w *sqlwriter.Writer, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		if _, err := w.Commit(context.Background(), 1, 100); err != nil {
			t.Fatal(err)
		}
	}
}

// requireRestoresAll restores the replica in dir and fails the test unless
// it holds exactly the transactions w committed.
func requireRestoresAll(t *testing.T, dir string, w *sqlwriter.Writer) {
	t.Helper()
	if _, m := restoreLatest(t, dir, latest()); m != w.LastTx() {
		t.Fatalf("restored %d transactions, committed %d", m, w.LastTx())
	}
}

func latest() litestream.RestoreOptions { return litestream.RestoreOptions{Index: litestream.NoIndex} }

// TestDB_ReplicateRestore writes while the engine runs, with checkpoints by
// the engine rolling the shadow WAL over, then restores exactly what was
// committed.
func TestDB_ReplicateRestore(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)

	db, _ := newTestDB(t, path, replicaDir)
	db.MinCheckpointPageN = 50 // force several rollovers
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 600; i++ {
		if _, err := w.Commit(ctx, 1+i%4, 100+i%900); err != nil {
			t.Fatal(err)
		}
		if i%100 == 0 {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st := db.Stats()
	if st.Checkpoints == 0 {
		t.Fatal("expected checkpoints")
	}
	if st.Generations != 1 {
		t.Fatalf("generations started = %d (%s), want 1", st.Generations, st.LastNewGenCause)
	}
	_, m := restoreLatest(t, replicaDir, latest())
	if m != w.LastTx() {
		t.Fatalf("restored %d transactions, committed %d", m, w.LastTx())
	}
}

// TestDB_RestartKeepsGeneration stops and restarts the engine between
// writes: continuity holds, so the generation stays.
func TestDB_RestartKeepsGeneration(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	gens := map[string]bool{}
	for round := 0; round < 3; round++ {
		db, r := newTestDB(t, path, replicaDir)
		if err := db.Open(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 50; i++ {
			if _, err := w.Commit(ctx, 2, 300); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(ctx); err != nil {
			t.Fatal(err)
		}
		gens[r.Pos().Generation] = true
	}
	if len(gens) != 1 {
		t.Fatalf("generations = %v, want one", gens)
	}
	requireRestoresAll(t, replicaDir, w)
}

// TestDB_AppCheckpointWhileStopped: the app truncates the WAL while the
// engine is down; the engine starts a new generation and loses nothing.
func TestDB_AppCheckpointWhileStopped(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	var gens []string
	for round := 0; round < 2; round++ {
		db, r := newTestDB(t, path, replicaDir)
		if err := db.Open(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 40; i++ {
			if _, err := w.Commit(ctx, 2, 300); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(ctx); err != nil {
			t.Fatal(err)
		}
		gens = append(gens, r.Pos().Generation)
		for i := 0; i < 10; i++ {
			if _, err := w.Commit(ctx, 1, 100); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := w.DB().ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			t.Fatal(err)
		}
	}
	if gens[0] == gens[1] {
		t.Fatalf("generation %s kept after the WAL was truncated behind the engine's back", gens[0])
	}
	if _, m := restoreLatest(t, replicaDir, latest()); m != 80+10 {
		t.Fatalf("restored %d transactions, want %d (all but the last 10 written while stopped)", m, 90)
	}
}

// TestDB_AppAutoCheckpoint: the app runs its own auto-checkpoints while the
// engine runs; nothing is lost.
func TestDB_AppAutoCheckpoint(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 10)
	db, _ := newTestDB(t, path, replicaDir)
	db.MinCheckpointPageN = 40
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 400; i++ {
		if _, err := w.Commit(ctx, 1+i%3, 500); err != nil {
			t.Fatal(err)
		}
		if i%50 == 0 {
			time.Sleep(30 * time.Millisecond)
		}
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	requireRestoresAll(t, replicaDir, w)
}

// TestDB_ShrinkWAL: past MaxCheckpointPageN the engine's checkpoint makes
// SQLite truncate the WAL file when it restarts, without a blocking
// checkpoint, and nothing is lost.
func TestDB_ShrinkWAL(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	db, r := newTestDB(t, path, replicaDir)
	db.CheckpointInterval, db.MinCheckpointPageN, db.MaxCheckpointPageN = 0, 0, 100
	for i := 0; i < 150; i++ {
		if _, err := w.Commit(ctx, 2, 1500); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(path + "-wal")
	if before.Size() < 100*4096 {
		t.Fatalf("WAL only %d bytes", before.Size())
	}
	if err := db.Checkpoint(ctx, true); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(path + "-wal")
	if after.Size() >= before.Size()/4 {
		t.Fatalf("WAL not shrunk: %d -> %d bytes", before.Size(), after.Size())
	}
	for i := 0; i < 20; i++ {
		if _, err := w.Commit(ctx, 1, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if st := db.Stats(); st.Generations != 1 {
		t.Fatalf("%d generations: %s", st.Generations, st.LastNewGenCause)
	}
	requireRestoresAll(t, replicaDir, w)
}

// TestDB_CheckpointedWhileStopped: the WAL was fully checkpointed (but not
// restarted) while the engine was down, as when it is killed between its
// checkpoint and the restart. The engine's first sync copies under the
// write lock, so the restart that follows is a rollover, not a new
// generation, and nothing is lost.
func TestDB_CheckpointedWhileStopped(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	var gens []string
	for round := 0; round < 2; round++ {
		db, r := newTestDB(t, path, replicaDir)
		if err := db.Sync(ctx); err != nil { // the engine is back before the app writes again
			t.Fatal(err)
		}
		for i := 0; i < 60; i++ { // the first restarts the WAL if it was checkpointed
			if _, err := w.Commit(ctx, 2, 400); err != nil {
				t.Fatal(err)
			}
			if i == 30 {
				if err := r.Sync(ctx); err != nil {
					t.Fatal(err)
				}
			}
		}
		if err := db.Close(ctx); err != nil {
			t.Fatal(err)
		}
		gens = append(gens, r.Pos().Generation)
		var busy, log, done int
		if err := w.DB().QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &log, &done); err != nil || log != done {
			t.Fatalf("app checkpoint: %v (%d of %d frames)", err, done, log)
		}
	}
	if gens[0] != gens[1] {
		t.Fatalf("a new generation started: %v", gens)
	}
	requireRestoresAll(t, replicaDir, w)
}

// TestDB_DamagedLastSegment: on start the replica's last segment does not
// decode; the engine cannot continue it, so it starts that index over with
// a snapshot instead of failing forever.
func TestDB_DamagedLastSegment(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	for round := 0; round < 2; round++ {
		db, r := newTestDB(t, path, replicaDir)
		for i := 0; i < 40; i++ {
			if _, err := w.Commit(ctx, 2, 400); err != nil {
				t.Fatal(err)
			}
			if i%10 == 9 {
				if err := r.Sync(ctx); err != nil {
					t.Fatalf("round %d: %v", round, err)
				}
			}
		}
		if err := db.Close(ctx); err != nil {
			t.Fatal(err)
		}
		if round == 0 {
			segs, _ := r.Client.Segments(ctx, r.Pos().Generation)
			last := segs[len(segs)-1]
			p := filepath.Join(replicaDir, "generations", last.Generation, "wal", litestream.SegmentName(last.Index, last.Offset))
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0xff
			os.WriteFile(p, b, 0o644)
		}
	}
	requireRestoresAll(t, replicaDir, w)
}
