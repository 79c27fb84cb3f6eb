package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/sqlwriter"
)

func parseFollow(t *testing.T, args ...string) *followFlags {
	t.Helper()
	fs := newFlagSet("restore", "", "")
	f := registerFollowFlags(fs)
	if err := fs.parse(args, io.Discard); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestFollowFlags_BadInput: -follow refuses a point in time and an output
// that a follower did not make, naming the sidecar it expected.
func TestFollowFlags_BadInput(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "app.db")
	if err := os.WriteFile(foreign, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(dir, "new.db")
	for _, tc := range []struct {
		args                      []string
		out, index, ts, gen, want string
	}{
		{[]string{"-follow"}, fresh, "1a", "", "", "-follow and -index"},
		{[]string{"-follow"}, fresh, "", "2026-11-24T10:00:00Z", "", "-follow and -timestamp"},
		{[]string{"-follow"}, fresh, "", "", "0123456789abcdef", "-follow and -generation"},
		{[]string{"-follow"}, foreign, "", "", "", filepath.Join(dir, ".app.db-follow")},
		{[]string{"-follow-interval", "5s"}, fresh, "", "", "", "-follow-interval needs -follow"},
		{[]string{"-follow", "-follow-interval", "0s"}, fresh, "", "", "", "must be positive"},
		{[]string{"-follow"}, fresh, "", "", "", ""},
		{nil, foreign, "1a", "", "", ""},
	} {
		err := parseFollow(t, tc.args...).check(tc.out, tc.index, tc.ts, tc.gen)
		if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v on %s: got %v, want %q", tc.args, filepath.Base(tc.out), err, tc.want)
		}
	}
}

// TestFollowRun: restore -follow's entry point restores, follows a live
// primary, serves litestream_follow_position, litestream_follow_lag_seconds
// and /healthz on addr, and exits 0 when stopped.
func TestFollowRun(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	dbPath, repl := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	w, err := sqlwriter.Open(ctx, dbPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i := 0; i < 10; i++ {
		if _, err := w.Commit(ctx, 2, 300); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	db := litestream.NewDB(dbPath)
	db.MonitorInterval = 20 * time.Millisecond
	r := litestream.NewReplica("file", file.NewReplicaClient(repl))
	r.SyncInterval = 20 * time.Millisecond
	db.AddReplica(r)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	defer db.Close(ctx)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfgPath := filepath.Join(dir, "litestream.yml")
	cfg := fmt.Sprintf("addr: %s\ndbs:\n  - path: %s\n    replicas:\n      - path: %s\n", addr, dbPath, repl)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := newFlagSet("restore", "", "")
	cf := registerConfigFlags(fs)
	ff := registerFollowFlags(fs)
	if err := fs.parse([]string{"-config", cfgPath, "-follow", "-follow-interval", "20ms"}, io.Discard); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "follower.db")
	if err := ff.check(out, "", "", ""); err != nil {
		t.Fatal(err)
	}
	// A finished snapshot, not the temporary file (".…tmp") it is written to.
	for snapDeadline := time.Now().Add(10 * time.Second); time.Now().Before(snapDeadline); {
		if m, _ := filepath.Glob(filepath.Join(repl, "generations", "*", "snapshots", "*.snapshot.lz4")); len(m) > 0 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	runCtx, cancel := context.WithCancel(ctx)
	var stderr bytes.Buffer
	lw := &lockedWriter{w: &stderr}
	errc := make(chan error, 1)
	go func() {
		errc <- ff.run(runCtx, followRun{Replicas: []*litestream.Replica{litestream.NewReplica("file", file.NewReplicaClient(repl))},
			Output: out, Config: cf, FromConfig: true, Stdout: io.Discard, Stderr: lw})
	}()
	for i := 0; i < 20; i++ {
		if _, err := w.Commit(ctx, 2, 300); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := sqlwriter.Verify(ctx, out)
		if err == nil && m == w.LastTx() {
			break
		}
		if time.Now().After(deadline) {
			runErr := "still running"
			select {
			case err := <-errc:
				runErr = fmt.Sprintf("returned %v", err)
			default:
			}
			rm, rerr := restoredTxOf(t, repl)
			t.Fatalf("the follower did not catch up: it holds %d transactions (%v), the replica %d (%v), the primary %d; replica at %s; the follower %s; its log:\n%s",
				m, err, rm, rerr, w.LastTx(), r.Pos(), runErr, lw.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	get := func(path string) (int, string) {
		resp, err := http.Get("http://" + addr + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := get("/healthz"); code != 200 {
		t.Fatalf("/healthz: %d %s", code, body)
	}
	_, metrics := get("/metrics")
	for _, want := range []string{`litestream_follow_position{db="` + out + `"`, `part="offset"`, `litestream_follow_lag_seconds{db="` + out + `"}`} {
		if !strings.Contains(metrics, want) {
			t.Fatalf("/metrics lacks %s", want)
		}
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v\n%s", err, stderr.String())
	}
	if _, err := os.Stat(litestream.FollowSidecarPath(out)); err != nil {
		t.Fatal(err)
	}
}

// TestFollowHealthProblem: /healthz fails while the replica cannot be
// read, and when the follower has not been current for the window.
func TestFollowHealthProblem(t *testing.T) {
	now := time.Now()
	if p := followHealthProblem(litestream.FollowStatus{LastErr: fmt.Errorf("gone"), FailingSince: now.Add(-time.Minute)}, time.Minute, now); !strings.Contains(p, "gone") {
		t.Fatalf("got %q", p)
	}
	if p := followHealthProblem(litestream.FollowStatus{CurrentAt: now.Add(-2 * time.Minute)}, time.Minute, now); !strings.Contains(p, "not known to be current") {
		t.Fatalf("got %q", p)
	}
	if p := followHealthProblem(litestream.FollowStatus{CurrentAt: now}, time.Minute, now); p != "" {
		t.Fatalf("got %q", p)
	}
}

// lockedWriter serializes writes of a logger and the test.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprint(l.w)
}

// restoredTxOf restores the replica in dir aside and counts its
// transactions.
func restoredTxOf(t *testing.T, dir string) (int, error) {
	t.Helper()
	ctx := context.Background()
	rs := []*litestream.Replica{litestream.NewReplica("file", file.NewReplicaClient(dir))}
	opt := litestream.RestoreOptions{Index: litestream.NoIndex}
	plan, err := litestream.PlanRestore(ctx, rs, opt)
	if err != nil {
		return 0, err
	}
	out := filepath.Join(t.TempDir(), "check.db")
	if err := litestream.Restore(ctx, plan, out, opt); err != nil {
		return 0, err
	}
	return sqlwriter.Verify(ctx, out)
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
