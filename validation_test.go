package litestream_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// TestValidate_UnderLoad: validation while an application writes steadily
// and the engine checkpoints reports only matches.
func TestValidate_UnderLoad(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	if _, err := w.Commit(ctx, 1, 10); err != nil {
		t.Fatal(err)
	}
	db, r := newTestDB(t, path, replicaDir)
	db.MinCheckpointPageN = 30
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := w.Commit(ctx, 1+i%4, 300+i%700); err != nil {
				t.Error(err)
				return
			}
			time.Sleep(time.Millisecond)
		}
	}()
	for i := 0; i < 8; i++ {
		res, err := r.Validate(ctx)
		if err != nil {
			t.Fatalf("validation %d: %v", i, err)
		}
		if !res.OK {
			t.Fatalf("validation %d: false mismatch at %s: %s vs %s", i, res.Pos, res.LiveChecksum, res.ReplicaSum)
		}
		time.Sleep(50 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	if st := r.Status(); st.ValidationsOK != 8 || st.ValidationsFailed != 0 {
		t.Fatalf("validation counts %+v", st)
	}
	if db.Stats().Checkpoints == 0 {
		t.Fatal("no checkpoint ran during the load")
	}
}

// TestDB_RemovesValidationLeftovers: the directory of a validation that a
// kill cut short (it holds a restored copy of the database) is removed
// when the engine next opens the database; one changed since the start (a
// validation in progress) and other names stay.
func TestDB_RemovesValidationLeftovers(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	commitRows(t, w, 3)
	db, _ := newTestDB(t, path, replicaDir)
	meta := db.MetaPath()
	dirs := map[string]time.Time{
		"validate-123456.tmp": time.Now().Add(-time.Minute), // cut short
		"validate-654321.tmp": time.Now().Add(time.Minute),  // in progress
		"validate-notes":      time.Now().Add(-time.Minute), // not ours
	}
	for name, mtime := range dirs {
		d := filepath.Join(meta, name)
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(d, "db"), make([]byte, 4096), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(d, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)
	for name := range dirs {
		_, err := os.Stat(filepath.Join(meta, name))
		if gone := errors.Is(err, os.ErrNotExist); gone != (name == "validate-123456.tmp") {
			t.Errorf("%s: removed %v (stat: %v)", name, gone, err)
		}
	}
}
