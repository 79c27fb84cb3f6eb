package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/s3test"
	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// TestV03Interop checks drop-in compatibility with the real thing: replicas
// this engine writes (file and S3) restore with Litestream v0.3.13, and a
// replica v0.3.13 writes restores with ours, each holding exactly the
// committed transactions. LITESTREAM_V03 names the v0.3 binary; `make
// test` builds it from the Go module proxy into ./bin.
func TestV03Interop(t *testing.T) {
	v03 := os.Getenv("LITESTREAM_V03")
	if v03 == "" {
		t.Skip("LITESTREAM_V03 is not set: `make test` builds Litestream v0.3.13 into ./bin and runs this test against it")
	}
	if _, err := os.Stat(v03); err != nil {
		t.Fatalf("LITESTREAM_V03: %v", err)
	}

	t.Run("ours to v0.3, file", func(t *testing.T) {
		dir := t.TempDir()
		dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
		n := replicateOurs(t, dir, dbPath, fileReplica("file", replica))
		// The point is v0.3 following our rollovers from one index to the next.
		segs, _ := filepath.Glob(filepath.Join(replica, "generations", "*", "wal", "*.wal.lz4"))
		indexes := map[string]bool{}
		for _, s := range segs {
			indexes[strings.Split(filepath.Base(s), "_")[0]] = true
		}
		if len(indexes) < 3 {
			t.Fatalf("the replica spans %d shadow indexes, want several: %v", len(indexes), segs)
		}
		restoreWith(t, v03, n, "file://"+replica)
	})

	t.Run("ours to v0.3, s3", func(t *testing.T) {
		srv := s3test.StartServer(t)
		bucket := srv.CreateBucket(t)
		// v0.3 reads LITESTREAM_* keys only from a config file; both read
		// these.
		t.Setenv("AWS_ACCESS_KEY_ID", s3test.AccessKey)
		t.Setenv("AWS_SECRET_ACCESS_KEY", s3test.SecretKey)
		dir := t.TempDir()
		dbPath := filepath.Join(dir, "app.db")
		n := replicateOurs(t, dir, dbPath, fmt.Sprintf(
			"      - name: s3\n        url: s3://%s/app\n        endpoint: %s\n        sync-interval: 100ms\n", bucket, srv.Endpoint()))
		restoreWith(t, v03, n, fmt.Sprintf("s3://%s.localhost:%s/app", bucket, strings.Split(srv.Addr, ":")[1]))
	})

	t.Run("v0.3 to ours, file", func(t *testing.T) {
		dir := t.TempDir()
		dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
		cfg := filepath.Join(dir, "v03.yml")
		writeFile(t, cfg, fmt.Sprintf("dbs:\n  - path: %s\n    monitor-interval: 50ms\n    min-checkpoint-page-count: 40\n    replicas:\n      - path: %s\n        sync-interval: 100ms\n", dbPath, replica))
		rep := Start(t, v03, "replicate", "-config", cfg)
		w := Start(t, bin.Writer, "-db", dbPath, "-n", "600", "-rows", "4", "-size", "700", "-every", "2ms")
		w.Wait(2 * time.Minute)
		// v0.3 ships on its own schedule: give it a few sync intervals.
		time.Sleep(3 * time.Second)
		rep.Signal(syscall.SIGINT)
		rep.Wait(time.Minute)
		restoreAndVerify(t, w.LastCommitted(), replica)
		restoreAndVerify(t, w.LastCommitted(), "file://"+replica)
		requireLive(t, dbPath, w.LastCommitted())
	})
}

// replicateOurs runs our replicate with the given replica block while a
// writer commits transactions of varied sizes, with checkpoints often enough
// to span several shadow indexes, and returns the transactions committed.
func replicateOurs(t *testing.T, dir, dbPath, replica string) int {
	t.Helper()
	cfg := filepath.Join(dir, "litestream.yml")
	writeFile(t, cfg, fmt.Sprintf("dbs:\n  - path: %s\n    monitor-interval: 50ms\n    min-checkpoint-page-count: 40\n    replicas:\n%s", dbPath, replica))
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "600", "-rows", "4", "-size", "700", "-every", "2ms")
	w.Wait(2 * time.Minute)
	stopReplicate(t, rep)
	requireLive(t, dbPath, w.LastCommitted())
	return w.LastCommitted()
}

// restoreWith restores url with the given litestream binary and checks the
// result holds exactly want transactions.
func restoreWith(t *testing.T, binary string, want int, url string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored.db")
	stdout, stderr, code := Run(context.Background(), binary, "restore", "-o", out, url)
	if code != 0 {
		t.Fatalf("%s restore %s: exit %d\n%s%s", binary, url, code, stdout, stderr)
	}
	m, err := sqlwriter.Verify(context.Background(), out)
	if err != nil {
		t.Fatalf("database restored by %s: %v", binary, err)
	}
	if m != want {
		t.Fatalf("%s restored %d transactions, want %d", binary, m, want)
	}
}
