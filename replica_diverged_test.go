package litestream_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/sqlwriter"
	"github.com/litestream-go/litestream/internal/testutil"
)

// TestReplica_AheadOfRolledBackHostKept: the host (database, WAL and the
// engine's meta directory) is rolled back to an earlier copy, as a VM
// snapshot restore does, while the replica went on to hold later commits
// of the same generation. Those commits exist nowhere else: the engine
// must neither overwrite nor delete them, but start a new generation, and
// the old one must still restore to its last commit.
func TestReplica_AheadOfRolledBackHostKept(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	host, saved := filepath.Join(root, "host"), filepath.Join(root, "saved")
	replicaDir := filepath.Join(root, "replica")
	if err := os.MkdirAll(host, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(host, "app.db")
	run := func(n int) (gen string, last int) {
		t.Helper()
		w, err := sqlwriter.Open(ctx, path, 0)
		if err != nil {
			t.Fatal(err)
		}
		db, r := newTestDB(t, path, replicaDir)
		db.CheckpointInterval, db.MinCheckpointPageN = 0, 0
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < n; i++ {
			if _, err := w.Commit(ctx, 1, 200); err != nil {
				t.Fatal(err)
			}
			if i%5 == 4 {
				if err := db.Sync(ctx); err != nil {
					t.Fatal(err)
				}
				if err := r.Sync(ctx); err != nil {
					// A divergence found: the next sync is in a new generation.
					t.Log(err)
					if err := db.Sync(ctx); err != nil {
						t.Fatal(err)
					}
					if err := r.Sync(ctx); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if err := db.Close(ctx); err != nil {
			t.Fatal(err)
		}
		return r.Pos().Generation, w.LastTx()
	}
	gen, _ := run(20)
	testutil.CopyTree(t, host, saved)
	if g, last := run(20); g != gen || last != 40 {
		t.Fatalf("second run: generation %s (want %s), %d transactions", g, gen, last)
	}
	client := file.NewReplicaClient(replicaDir)
	before, err := client.Segments(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}

	// The host goes back to the copy; the application writes again.
	if err := os.RemoveAll(host); err != nil {
		t.Fatal(err)
	}
	testutil.CopyTree(t, saved, host)
	newGen, last := run(10)
	if newGen == gen {
		t.Fatalf("the engine continued generation %s, over the replica's later commits", gen)
	}
	if last != 30 {
		t.Fatalf("the application's database holds %d transactions, want 30", last)
	}
	after, err := client.Segments(ctx, gen)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("generation %s had %d segments, now %d", gen, len(before), len(after))
	}
	if _, m := restoreLatest(t, replicaDir, litestream.RestoreOptions{Generation: gen, Index: litestream.NoIndex}); m != 40 {
		t.Errorf("the old generation restores %d transactions, want 40", m)
	}
	if _, m := restoreLatest(t, replicaDir, litestream.RestoreOptions{Generation: newGen, Index: litestream.NoIndex}); m != 30 {
		t.Errorf("the new generation restores %d transactions, want 30", m)
	}
}
