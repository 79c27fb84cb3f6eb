package litestream_test

import (
	"context"
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
