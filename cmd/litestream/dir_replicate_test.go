package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
)

// checkedClient is a file replica client whose store check fails after a
// short wait, counting how many checks run at once.
type checkedClient struct {
	*file.ReplicaClient
	running, peak *atomic.Int64
}

func (c checkedClient) CheckStore(ctx context.Context) error {
	n := c.running.Add(1)
	defer c.running.Add(-1)
	for {
		p := c.peak.Load()
		if n <= p || c.peak.CompareAndSwap(p, n) {
			break
		}
	}
	select {
	case <-time.After(5 * time.Millisecond):
	case <-ctx.Done():
	}
	return errors.New("access denied")
}

// TestCheckStoresBounded: the startup check of many databases' replicas
// runs at most maxParallel at once and gives every failure its own line
// and its place in the error.
func TestCheckStoresBounded(t *testing.T) {
	var running, peak atomic.Int64
	var dbs []*litestream.DB
	const n = 100
	for i := range n {
		db := litestream.NewDB(fmt.Sprintf("/data/t/%03d.db", i))
		db.AddReplica(litestream.NewReplica("s3", checkedClient{file.NewReplicaClient(t.TempDir()), &running, &peak}))
		dbs = append(dbs, db)
	}
	log := &lockedBuffer{}
	err := checkStores(context.Background(), dbs, slog.New(slog.NewTextHandler(log, nil)))
	if err == nil {
		t.Fatal("failing checks passed")
	}
	if p := peak.Load(); p > maxParallel || p < 2 {
		t.Fatalf("%d checks at once, want 2 to %d", p, maxParallel)
	}
	if got := strings.Count(log.String(), "level=ERROR"); got != n {
		t.Fatalf("%d error lines, want %d", got, n)
	}
	for _, db := range dbs {
		if !strings.Contains(err.Error(), db.Path()) || !strings.Contains(log.String(), "db="+db.Path()) {
			t.Fatalf("%s is not named", db.Path())
		}
	}
}

// TestInParallel: every call runs once, never more than maxParallel at
// once.
func TestInParallel(t *testing.T) {
	var mu sync.Mutex
	running, peak := 0, 0
	seen := make([]int, 500)
	inParallel(len(seen), func(i int) {
		mu.Lock()
		running++
		peak = max(peak, running)
		seen[i]++
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		running--
		mu.Unlock()
	})
	if peak > maxParallel {
		t.Fatalf("%d at once", peak)
	}
	for i, n := range seen {
		if n != 1 {
			t.Fatalf("call %d ran %d times", i, n)
		}
	}
}

// TestCloseAllParallel: the last syncs of many databases, run in
// parallel, all complete.
func TestCloseAllParallel(t *testing.T) {
	dir := t.TempDir()
	var dbs []*litestream.DB
	for i := range 40 {
		dbs = append(dbs, openReplicated(t, fmt.Sprintf("%s/%02d.db", dir, i), fmt.Sprintf("%s/rep/%02d.db", dir, i)))
	}
	for _, db := range dbs {
		waitUntil(t, "replicated", func() bool { return !db.Replicas[0].Pos().IsZero() })
	}
	log := &lockedBuffer{}
	if err := closeAll(dbs, slog.New(slog.NewTextHandler(log, nil))); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log.String(), "databases=40") {
		t.Fatalf("log:\n%s", log.String())
	}
}
