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

// TestS3OutageLog: what the operator reads when the S3 server stops under a
// write load and comes back: one ERROR when the replica's syncs begin to
// fail, one INFO with the downtime and the backlog shipped when it
// recovers, none of the SDK's text; the restore holds every commit. (The
// WARN a minute into an outage is tested with a short interval in
// TestReplicaOutage.)
func TestS3OutageLog(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	useS3Credentials(t)

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dir, dbPath, fmt.Sprintf(
		"      - name: s3\n        url: s3://%s/app\n        endpoint: %s\n        sync-interval: 200ms\n", bucket, srv.Endpoint()))
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "0", "-rows", "1", "-size", "500", "-every", "10ms")
	WaitFor(t, 30*time.Second, "first snapshot", func() bool { return strings.Contains(rep.Output(), "snapshot written") })

	srv.Stop()
	WaitFor(t, time.Minute, "the replica's error", func() bool { return strings.Contains(rep.Output(), "replica sync failed") })
	time.Sleep(3 * time.Second)
	srv.Start()
	WaitFor(t, 2*time.Minute, "the recovery", func() bool { return strings.Contains(rep.Output(), "replica s3 recovered after") })
	w.Signal(syscall.SIGINT)
	w.Wait(time.Minute)
	stopReplicate(t, rep)

	out := rep.Output()
	var errs, recovered []string
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.Contains(line, "level=ERROR"):
			errs = append(errs, line)
		case strings.Contains(line, "level=INFO") && strings.Contains(line, "replica s3 recovered after"):
			recovered = append(recovered, line)
		}
	}
	if len(errs) != 1 || !strings.Contains(errs[0], "cannot reach the S3 endpoint "+srv.Endpoint()) {
		t.Fatalf("want one ERROR naming the endpoint, got %q", errs)
	}
	if len(recovered) != 1 || !strings.Contains(recovered[0], "frames (") || !strings.Contains(recovered[0], "that waited in the shadow WAL") {
		t.Fatalf("want one recovery line with the backlog shipped, got %q", recovered)
	}
	for _, sdk := range []string{"exceeded maximum number of attempts", "HostID", "RequestID", "operation error"} {
		if strings.Contains(out, sdk) {
			t.Fatalf("the log holds the SDK's text %q:\n%s", sdk, out)
		}
	}
	t.Logf("%s\n%s", errs[0], recovered[0])
	u := fmt.Sprintf("s3://%s.localhost:%s/app", bucket, strings.Split(srv.Addr, ":")[1])
	restoreAndVerify(t, w.LastCommitted(), u)
	requireLive(t, dbPath, w.LastCommitted())
}
