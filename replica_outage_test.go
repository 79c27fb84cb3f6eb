package litestream_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/s3test"
	"github.com/litestream-go/litestream/internal/sqlwriter"
	"github.com/litestream-go/litestream/s3"
)

// logRecords collects JSON log lines, safe for concurrent use.
type logRecords struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logRecords) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

// find returns the records at level whose message starts with prefix.
func (l *logRecords) find(t *testing.T, level, prefix string) []map[string]any {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(l.buf.String()), "\n") {
		if line == "" {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		if msg, _ := rec["msg"].(string); rec["level"] == level && strings.HasPrefix(msg, prefix) {
			out = append(out, rec)
		}
	}
	return out
}

func (l *logRecords) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestReplicaOutage stops the S3 server under a write load and starts it
// again. The replica logs one ERROR when its syncs begin to fail, a WARN
// at each warn interval with the frames waiting in the shadow WAL, and one
// INFO on recovery with the downtime and what it shipped; the SDK's own
// text (attempt counts, request and host ids) stays out of the log; the
// debug level shows each upload and sync with its size and time; and a
// restore holds every committed transaction.
func TestReplicaOutage(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	ctx := context.Background()
	newClient := func() *s3.ReplicaClient {
		return &s3.ReplicaClient{Bucket: bucket, Path: "app", Endpoint: srv.Endpoint(),
			AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey, MaxAttempts: 2}
	}

	w, path, _ := openWriter(t, 0)
	logs := &logRecords{}
	db := litestream.NewDB(path)
	litestream.CheckInvariantsOnClose(t, db)
	db.Logger = slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	db.MonitorInterval = 20 * time.Millisecond
	r := litestream.NewReplica("s3", newClient())
	r.SyncInterval = 50 * time.Millisecond
	litestream.SetOutageWarnInterval(r, 300*time.Millisecond)
	db.AddReplica(r)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	}()
	commitRows(t, w, 20)
	waitFor(t, 10*time.Second, "the first snapshot", func() bool { return len(logs.find(t, "INFO", "snapshot written")) > 0 })

	srv.Stop()
	for i := 0; i < 10; i++ {
		commitRows(t, w, 20)
		time.Sleep(50 * time.Millisecond)
	}
	// A warning after the last commit counts all of them.
	n := len(logs.find(t, "WARN", "replica s3 still failing for"))
	waitFor(t, 20*time.Second, "a warning after the writes", func() bool {
		return len(logs.find(t, "WARN", "replica s3 still failing for")) >= max(n+1, 2)
	})
	warns := logs.find(t, "WARN", "replica s3 still failing for")
	last := warns[len(warns)-1]
	frames, waiting := last["frames_waiting"].(float64), last["bytes_waiting"].(float64)
	if frames < 200 || waiting != frames*(4096+24) {
		t.Fatalf("the warning counts %v frames, %v bytes waiting; want at least 200 frames (one a transaction) of 4120 bytes: %v", frames, waiting, last)
	}
	warnLine := regexp.MustCompile(`^replica s3 still failing for [0-9.]+m?s: .*cannot reach the S3 endpoint .*; ` +
		fmt.Sprint(int(frames)) + ` frames \([0-9.]+ kB\) waiting in the shadow WAL$`)
	if msg := last["msg"].(string); !warnLine.MatchString(msg) {
		t.Fatalf("warning: %q", msg)
	}

	srv.Start()
	waitFor(t, 30*time.Second, "the recovery", func() bool { return len(logs.find(t, "INFO", "replica s3 recovered after")) > 0 })
	commitRows(t, w, 5)
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}

	if errs := logs.find(t, "ERROR", ""); len(errs) != 1 || !strings.HasPrefix(errs[0]["msg"].(string), "replica sync failed") {
		t.Fatalf("want one ERROR, the first failed sync; got %v", errs)
	}
	rec := logs.find(t, "INFO", "replica s3 recovered after")
	if len(rec) != 1 {
		t.Fatalf("want one recovery line, got %v", rec)
	}
	t.Logf("%s\n%s", last["msg"], rec[0]["msg"])
	if d := rec[0]["downtime"].(float64); time.Duration(d) < 600*time.Millisecond {
		t.Fatalf("downtime %v, want at least the two warn intervals", time.Duration(d))
	}
	if shipped := rec[0]["bytes_shipped"].(float64); shipped < waiting {
		t.Fatalf("recovery shipped %v bytes, but %v were waiting", shipped, waiting)
	}
	for _, sdk := range []string{"exceeded maximum number of attempts", "HostID", "RequestID", "operation error"} {
		if strings.Contains(logs.String(), sdk) {
			t.Fatalf("the log holds the SDK's text %q", sdk)
		}
	}

	// logging.level debug: each upload and each sync that shipped, with
	// its size and time.
	for _, d := range []struct{ msg, keys string }{
		{"segment uploaded", "segment wal_bytes stored_bytes elapsed"},
		{"replica sync", "from to wal_bytes elapsed"},
	} {
		recs := logs.find(t, "DEBUG", d.msg)
		if len(recs) == 0 {
			t.Fatalf("no %q debug line", d.msg)
		}
		for _, k := range strings.Fields(d.keys) {
			if _, ok := recs[0][k]; !ok {
				t.Fatalf("%q debug line lacks %s: %v", d.msg, k, recs[0])
			}
		}
	}

	plan, err := litestream.PlanRestore(ctx, []*litestream.Replica{litestream.NewReplica("s3", newClient())}, latest())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "restored.db")
	if err := litestream.Restore(ctx, plan, out, latest()); err != nil {
		t.Fatal(err)
	}
	if m, err := sqlwriter.Verify(ctx, out); err != nil || m != w.LastTx() {
		t.Fatalf("restored %d transactions (%v), committed %d", m, err, w.LastTx())
	}
}

// unreachableListClient fails Generations, which only retention calls,
// while down is set.
type unreachableListClient struct {
	*file.ReplicaClient
	down  atomic.Bool
	calls atomic.Int64
}

func (c *unreachableListClient) Generations(ctx context.Context) ([]string, error) {
	c.calls.Add(1)
	if c.down.Load() {
		return nil, fmt.Errorf("list generations: %w", syscall.ECONNREFUSED)
	}
	return c.ReplicaClient.Generations(ctx)
}

// TestReplicaOutage_RetentionFailure: a retention run that fails begins an
// outage that lasts until retention succeeds. Syncs with nothing to ship
// in between make no request and must not end it, or every retry of the
// failing step would log a new ERROR after a "recovered after 0s".
func TestReplicaOutage_RetentionFailure(t *testing.T) {
	ctx := context.Background()
	w, path, _ := openWriter(t, 0)
	commitRows(t, w, 5)
	client := &unreachableListClient{ReplicaClient: file.NewReplicaClient(t.TempDir())}
	client.down.Store(true)
	logs := &logRecords{}
	db := litestream.NewDB(path)
	litestream.CheckInvariantsOnClose(t, db)
	db.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	db.MonitorInterval = 10 * time.Millisecond
	r := litestream.NewReplica("file", client)
	r.SyncInterval = 10 * time.Millisecond
	db.AddReplica(r)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(ctx) })
	defer func() {
		if t.Failed() {
			t.Logf("log:\n%s", logs)
		}
	}()
	waitFor(t, 20*time.Second, "five retention runs (a failed run is due again at the next sync)", func() bool { return client.calls.Load() >= 5 })
	if rec := logs.find(t, "INFO", "replica file recovered"); len(rec) != 0 {
		t.Fatalf("recovered while retention still fails: %v", rec)
	}
	client.down.Store(false)
	waitFor(t, 20*time.Second, "the recovery", func() bool { return len(logs.find(t, "INFO", "replica file recovered")) > 0 })
	calls := client.calls.Load()
	commitRows(t, w, 5)
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	var errs []map[string]any
	for _, e := range logs.find(t, "ERROR", "") {
		if e["replica"] != nil { // the replica's, not the database's own
			errs = append(errs, e)
		}
	}
	if len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]["error"]), "retention: list generations") {
		t.Fatalf("want one ERROR, the first failed retention run; got %v", errs)
	}
	if rec := logs.find(t, "INFO", "replica file recovered"); len(rec) != 1 {
		t.Fatalf("want one recovery line, got %v", rec)
	}
	if n := client.calls.Load(); n != calls {
		t.Fatalf("retention ran %d more times after it succeeded; it is due again only after RetentionCheckInterval", n-calls)
	}
}
