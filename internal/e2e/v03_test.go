package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litestream-go/litestream/internal/s3test"
)

// TestV03Interop checks drop-in compatibility with the real thing: replicas
// this engine writes (file and S3) restore with Litestream v0.3.13, and a
// replica v0.3.13 writes restores with ours, each holding exactly the
// committed transactions. LITESTREAM_V03 names the v0.3 binary; `make
// test` builds it from the Go module proxy into ./bin.
func TestV03Interop(t *testing.T) {
	v03 := v03Binary(t)

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
		_, n := replicateV03(t, v03, cfg, dbPath)
		restoreAndVerify(t, n, replica)
		requireRestored(t, dbPath, n, 0, "file://"+replica)
	})
}

// replicateOurs runs our replicate with the given replica block while a
// writer commits transactions of varied sizes, with checkpoints often enough
// to span several shadow indexes, and returns the transactions committed.
func replicateOurs(t *testing.T, dir, dbPath, replica string) int {
	t.Helper()
	cfg := filepath.Join(dir, "litestream.yml")
	writeFile(t, cfg, fmt.Sprintf("dbs:\n  - path: %s\n    monitor-interval: 50ms\n    min-checkpoint-page-count: 40\n    replicas:\n%s", dbPath, replica))
	_, n := replicateWithWriter(t, cfg, dbPath, 0, "-n", "600", "-rows", "4", "-size", "700", "-every", "2ms")
	requireLive(t, dbPath, n)
	return n
}

// restoreWith restores url with the given litestream binary and checks the
// result holds exactly want transactions.
func restoreWith(t *testing.T, binary string, want int, url string) {
	t.Helper()
	if _, m := restoreVerified(t, binary, url); m != want {
		t.Fatalf("%s restored %d transactions, want %d", binary, m, want)
	}
}
