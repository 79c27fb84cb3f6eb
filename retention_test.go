package litestream_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
)

// age sets a replica file's mtime, which is its timestamp.
func age(t *testing.T, path string, d time.Duration) {
	t.Helper()
	old := time.Now().Add(-d)
	if err := os.Chtimes(path, old, old); err != nil {
		t.Fatal(err)
	}
}

func TestRetention(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	db, r := newTestDB(t, path, replicaDir)
	db.CheckpointInterval, db.MinCheckpointPageN = 0, 0
	step := func() {
		t.Helper()
		for i := 0; i < 20; i++ {
			if _, err := w.Commit(ctx, 2, 500); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := db.Checkpoint(ctx, false); err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Snapshot(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 3; i++ {
		step()
	}
	defer db.Close(ctx)
	gen := r.Pos().Generation
	genDir := filepath.Join(replicaDir, "generations", gen)

	// An older generation whose snapshots all expired goes entirely.
	oldGen := filepath.Join(replicaDir, "generations", "00000000000000aa", "snapshots")
	os.MkdirAll(oldGen, 0o755)
	os.WriteFile(filepath.Join(oldGen, "00000000.snapshot.lz4"), []byte("x"), 0o644)
	age(t, filepath.Join(oldGen, "00000000.snapshot.lz4"), 48*time.Hour)

	// A generation that another engine has just started (a fresh segment,
	// no snapshot yet) is not ours to delete.
	busyGen := filepath.Join(replicaDir, "generations", "00000000000000bb", "wal")
	os.MkdirAll(busyGen, 0o755)
	os.WriteFile(filepath.Join(busyGen, "00000000_00000000.wal.lz4"), []byte("x"), 0o644)

	// Expire every snapshot but the newest.
	snaps, _ := r.Client.Snapshots(ctx, gen)
	if len(snaps) < 3 {
		t.Fatalf("%d snapshots", len(snaps))
	}
	newest := snaps[len(snaps)-1].Index
	for _, s := range snaps[:len(snaps)-1] {
		age(t, filepath.Join(genDir, "snapshots", litestream.SnapshotName(s.Index)), 48*time.Hour)
	}
	if err := r.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Dir(oldGen)); !os.IsNotExist(err) {
		t.Fatal("expired generation kept")
	}
	if _, err := os.Stat(busyGen); err != nil {
		t.Fatalf("generation with a fresh segment deleted: %v", err)
	}
	os.RemoveAll(filepath.Dir(busyGen))
	snaps, _ = r.Client.Snapshots(ctx, gen)
	segs, _ := r.Client.Segments(ctx, gen)
	if len(snaps) != 1 || snaps[0].Index != newest {
		t.Fatalf("snapshots after retention: %+v", snaps)
	}
	for _, s := range segs {
		if s.Index < newest {
			t.Fatalf("segment %v older than the oldest kept snapshot %x", s.Pos(), newest)
		}
	}
	requireRestoresAll(t, replicaDir, w)

	// When every snapshot has expired, retention takes a new one first.
	age(t, filepath.Join(genDir, "snapshots", litestream.SnapshotName(newest)), 48*time.Hour)
	step()
	for _, s := range mustSnapshots(t, r, gen) {
		age(t, filepath.Join(genDir, "snapshots", litestream.SnapshotName(s.Index)), 48*time.Hour)
	}
	if err := r.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	snaps = mustSnapshots(t, r, gen)
	if len(snaps) != 1 || time.Since(snaps[0].CreatedAt) > time.Hour {
		t.Fatalf("want one fresh snapshot, got %+v", snaps)
	}
	requireRestoresAll(t, replicaDir, w)
}

func mustSnapshots(t *testing.T, r *litestream.Replica, gen string) []litestream.SnapshotInfo {
	t.Helper()
	s, err := r.Client.Snapshots(context.Background(), gen)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
