package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/s3test"
)

// TestS3ReplicateRestoreWithOutage replicates a live database to a real S3
// server, stops the server for 30 seconds under a write load, starts it
// again, and shows that the restore from the s3:// URL holds every
// committed transaction, in one generation.
func TestS3ReplicateRestoreWithOutage(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	useS3Credentials(t)

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dir, dbPath, fmt.Sprintf(
		"      - name: s3\n        url: s3://%s/app\n        endpoint: %s\n        sync-interval: 200ms\n", bucket, srv.Endpoint()))
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "0", "-rows", "3", "-size", "1500", "-every", "5ms")
	WaitFor(t, 30*time.Second, "first snapshot", func() bool { return strings.Contains(rep.Output(), "snapshot written") })
	time.Sleep(time.Second)

	outage := 30 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	srv.Stop()
	before := w.LastCommitted()
	time.Sleep(outage)
	if w.Exited() || w.LastCommitted() <= before {
		t.Fatalf("the application stopped writing during the outage (%d -> %d)", before, w.LastCommitted())
	}
	srv.Start()
	time.Sleep(3 * time.Second)
	w.Signal(syscall.SIGINT)
	w.Wait(time.Minute)
	stopReplicate(t, rep)
	if strings.Count(rep.Output(), "new generation") != 1 {
		t.Fatalf("the outage started a new generation:\n%s", rep.Output())
	}
	u := fmt.Sprintf("s3://%s.localhost:%s/app", bucket, strings.Split(srv.Addr, ":")[1])
	restoreAndVerify(t, w.LastCommitted(), u)
	if n := generationCount(t, u); n != 1 {
		t.Fatalf("%d generations", n)
	}
	requireLive(t, dbPath, w.LastCommitted())
}

// useS3Credentials gives the litestream processes the test S3 server's
// keys, and no AWS keys of the environment that could take precedence.
func useS3Credentials(t *testing.T) {
	t.Setenv("LITESTREAM_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("LITESTREAM_SECRET_ACCESS_KEY", s3test.SecretKey)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
}
