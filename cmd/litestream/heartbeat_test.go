package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
)

// openReplicated opens a database at p with one file replica at rep,
// syncing every 50 ms, and closes it when the test ends.
func openReplicated(t *testing.T, p, rep string) *litestream.DB {
	t.Helper()
	createDB(t, p)
	db := litestream.NewDB(p)
	db.Logger = slog.New(slog.NewTextHandler(&lockedBuffer{}, nil))
	r := litestream.NewReplica("file", file.NewReplicaClient(rep))
	r.SyncInterval = 50 * time.Millisecond
	db.AddReplica(r)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close(context.Background()) })
	return db
}

// TestHeartbeat: a GET arrives while every database replicates; none while
// one replica fails; the URL's token never appears in the log.
func TestHeartbeat(t *testing.T) {
	var gets atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Query().Get("token") == "SECRET" {
			gets.Add(1)
		}
	}))
	defer srv.Close()
	dir := t.TempDir()
	set := newDBSet(openReplicated(t, filepath.Join(dir, "a.db"), filepath.Join(dir, "ra")))
	log := &lockedBuffer{}
	cfg := &Config{HeartbeatURL: strings.Replace(srv.URL, "http://", "http://user:PASSWORD@", 1) + "/ping/abc?token=SECRET"}
	if err := cfg.checkHeartbeat(); err != nil {
		t.Fatal(err)
	}
	h := newHeartbeat(cfg, set, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelDebug})))
	if h.interval != defaultHeartbeatInterval {
		t.Fatalf("interval %s, want the default %s", h.interval, defaultHeartbeatInterval)
	}
	h.check = 20 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); h.run(ctx) }()
	waitUntil(t, "a heartbeat", func() bool { return gets.Load() == 1 })
	cancel()
	<-done

	// A second database whose replica fails: no heartbeat.
	bad := filepath.Join(dir, "rb")
	if err := os.WriteFile(bad, []byte("a file where the replica's directory should be"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := openReplicated(t, filepath.Join(dir, "b.db"), bad)
	set.add(b)
	waitUntil(t, "b's replica failing", func() bool { return b.Replicas[0].Status().LastSyncErr != nil })
	for i := 0; i < 5; i++ {
		h.last = time.Time{}
		if h.beat(context.Background(), time.Now()) {
			t.Fatal("a heartbeat was sent while a replica fails")
		}
	}
	if !strings.Contains(log.String(), "heartbeat withheld") || !strings.Contains(log.String(), "replica file of "+b.Path()) {
		t.Fatalf("the log does not say why the heartbeat is withheld:\n%s", log.String())
	}
	if n := gets.Load(); n != 1 {
		t.Fatalf("%d heartbeats, want 1", n)
	}

	// Once it recovers, the heartbeat resumes.
	set.remove(b.Path())
	h.last = time.Time{}
	if !h.beat(context.Background(), time.Now()) || gets.Load() != 2 {
		t.Fatalf("no heartbeat after recovery (%d)", gets.Load())
	}
	// Not twice within one interval.
	if h.beat(context.Background(), time.Now().Add(time.Second)) {
		t.Fatal("two heartbeats within one interval")
	}

	// A failing endpoint: the error shows neither the token nor the password.
	srv.Close()
	h.last = time.Time{}
	h.beat(context.Background(), time.Now())
	if !strings.Contains(log.String(), "heartbeat failed") {
		t.Fatalf("a failed heartbeat is not logged:\n%s", log.String())
	}
	if s := log.String(); strings.Contains(s, "SECRET") || strings.Contains(s, "PASSWORD") || strings.Contains(s, "token") {
		t.Fatalf("the log shows the URL's secrets:\n%s", s)
	}
}

// TestHeartbeatNotBeforeFirstSync: no heartbeat with no database, or a
// database not yet replicated.
func TestHeartbeatNotBeforeFirstSync(t *testing.T) {
	if why := healthyForHeartbeat(nil, time.Minute, time.Now()); why == "" {
		t.Fatal("healthy with no database")
	}
	db := litestream.NewDB(filepath.Join(t.TempDir(), "missing.db"))
	db.AddReplica(litestream.NewReplica("file", file.NewReplicaClient(t.TempDir())))
	if why := healthyForHeartbeat([]*litestream.DB{db}, time.Minute, time.Now()); !strings.Contains(why, "not being replicated yet") {
		t.Fatalf("why = %q", why)
	}
}

// waitUntil polls cond for up to a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
