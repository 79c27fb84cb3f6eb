package e2e

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

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
	_, n := replicateThroughOutage(t, cfg, dbPath, srv)
	requireRestored(t, dbPath, n, 1, fmt.Sprintf("s3://%s.localhost:%s/app", bucket, strings.Split(srv.Addr, ":")[1]))
}

// useS3Credentials gives the litestream processes the test S3 server's
// keys, and no AWS keys of the environment that could take precedence.
func useS3Credentials(t *testing.T) {
	t.Setenv("LITESTREAM_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("LITESTREAM_SECRET_ACCESS_KEY", s3test.SecretKey)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")
}
