package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// TestLongReader: the application holds a read transaction for the whole
// run, which keeps every checkpoint from completing, while it commits. The
// engine must not block its writers: the p99 commit latency with the
// engine running is compared with the same workload without it.
func TestLongReader(t *testing.T) {
	const n = 1500
	without := commitLatencies(t, n, false)
	with := commitLatencies(t, n, true)
	p99 := func(d []time.Duration) time.Duration { return d[len(d)*99/100] }
	ratio := p99(with).Seconds() / p99(without).Seconds()
	figure(t, "writer p99 commit latency under a long reader, without / with the engine", fmt.Sprintf("%s / %s (ratio %.2f)", p99(without), p99(with), ratio))
	// The engine's checkpoint holds the write lock for a copy and a
	// PASSIVE checkpoint only; a blocking checkpoint would stall writers
	// for the reader's whole life (seconds).
	if p99(with) > 250*time.Millisecond {
		t.Fatalf("p99 commit latency %s with the engine: writers were blocked", p99(with))
	}
}

func commitLatencies(t *testing.T, n int, engine bool) []time.Duration {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	w, err := sqlwriter.Open(ctx, dbPath, -1)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if _, err := w.Commit(ctx, 1, 100); err != nil {
		t.Fatal(err)
	}
	reader, err := sql.Open("sqlite", "file:"+dbPath)
	if err != nil {
		t.Fatal(err)
	}
	defer reader.Close()
	rtx, err := reader.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var c int
	if err := rtx.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&c); err != nil {
		t.Fatal(err)
	}
	defer rtx.Rollback()

	var rep *Proc
	if engine {
		cfg := filepath.Join(dir, "litestream.yml")
		writeFile(t, cfg, fmt.Sprintf("dbs:\n  - path: %s\n    monitor-interval: 20ms\n    min-checkpoint-page-count: 50\n    checkpoint-interval: 100ms\n    replicas:\n      - path: %s\n        sync-interval: 50ms\n", dbPath, replica))
		rep = Start(t, bin.Litestream, "replicate", "-config", cfg)
		time.Sleep(300 * time.Millisecond)
	}
	lat := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := w.Commit(ctx, 2, 600); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(start))
	}
	if engine {
		rtx.Rollback()
		time.Sleep(500 * time.Millisecond)
		stopReplicate(t, rep)
		restoreAndVerify(t, w.LastTx(), replica)
	}
	rtx.Rollback()
	requireLive(t, dbPath, w.LastTx())
	sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
	return lat
}
