package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

var bin Binaries

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "litestream-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if bin, err = Build("../..", dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// writeConfig writes a config file with fast intervals for one database and
// the given replica blocks.
func writeConfig(t *testing.T, dir, dbPath string, replicas ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "dbs:\n  - path: %s\n    monitor-interval: 50ms\n    replicas:\n", dbPath)
	for _, r := range replicas {
		b.WriteString(r)
	}
	p := filepath.Join(dir, "litestream.yml")
	if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func fileReplica(name, path string) string {
	return fmt.Sprintf("      - name: %s\n        path: %s\n        sync-interval: 100ms\n", name, path)
}

// restoreAndVerify restores with the CLI and checks the result holds
// exactly want transactions.
func restoreAndVerify(t *testing.T, want int, args ...string) string {
	t.Helper()
	out, m := restoreVerified(t, bin.Litestream, args...)
	if m != want {
		t.Fatalf("restored %d transactions, want %d", m, want)
	}
	return out
}

// restoreAndVerifyAtLeast restores with the CLI, verifies the result and
// returns how many transactions it holds.
func restoreAndVerifyAtLeast(t *testing.T, args ...string) int {
	t.Helper()
	_, m := restoreVerified(t, bin.Litestream, args...)
	return m
}

// stopReplicate sends SIGINT and expects a clean exit after the last sync.
func stopReplicate(t *testing.T, p *Proc) {
	t.Helper()
	p.Signal(syscall.SIGINT)
	if code := p.Wait(2 * time.Minute); code != 0 {
		t.Fatalf("replicate exited %d after SIGINT", code)
	}
}

// generationCount returns how many generations the generations command
// lists for replica (a URL or path, or "-config", a file and a database).
func generationCount(t *testing.T, replica ...string) int {
	t.Helper()
	stdout, stderr, code := Run(context.Background(), bin.Litestream, append([]string{"generations"}, replica...)...)
	if code != 0 {
		t.Fatalf("generations: %s", stderr)
	}
	return len(strings.Split(strings.TrimSpace(stdout), "\n")) - 1
}

// TestReplicateRestore: thousands of transactions of varied sizes,
// including one over 100 MB, from a separate writer process while
// replicate runs; restore holds exactly what was committed.
func TestReplicateRestore(t *testing.T) {
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", replica))
	big := 110 << 20
	if testing.Short() {
		big = 8 << 20
	}
	_, n := replicateWithWriter(t, cfg, dbPath, 0, "-n", "3000", "-rows", "6", "-size", "3000", "-big", fmt.Sprint(big))
	if n != 3000 {
		t.Fatalf("writer committed %d", n)
	}
	requireRestored(t, dbPath, 3000, 1, replica)
}

// TestKillAndRestart: kill -9 replicate while a writer streams, restart it;
// replication continues in the same generation and restore matches.
func TestKillAndRestart(t *testing.T) {
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", replica))
	// Continuity must hold here, so no checkpoint runs: not the app's (one
	// while the engine is down rightly starts a new generation), and not
	// the engine's (a kill in the few milliseconds between its checkpoint's
	// WAL restart and copying the new header also does, by design; the
	// crash loop covers kills there for data safety).
	text := readFile(t, cfg)
	writeFile(t, cfg, strings.Replace(text, "monitor-interval: 50ms\n", "monitor-interval: 50ms\n    min-checkpoint-page-count: 1000000\n    checkpoint-interval: 1h\n", 1))
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "0", "-rows", "4", "-size", "2000", "-every", "2ms", "-autocheckpoint", "0")
	rng := rand.New(rand.NewPCG(7, 7))
	for i := 0; i < 4; i++ {
		rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
		time.Sleep(time.Duration(300+rng.IntN(700)) * time.Millisecond)
		rep.Signal(syscall.SIGKILL)
		rep.Wait(10 * time.Second)
	}
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	time.Sleep(500 * time.Millisecond)
	w.Signal(syscall.SIGINT)
	w.Wait(time.Minute)
	stopReplicate(t, rep)
	// One generation after the kill -9 restarts: continuity held.
	requireRestored(t, dbPath, w.LastCommitted(), 1, replica)
}

// TestAppCheckpoints: the application checkpoints on its own while
// replicate runs (wal_autocheckpoint) and truncates the WAL while it is
// stopped; a new generation starts and nothing committed is lost.
func TestAppCheckpoints(t *testing.T) {
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", replica))

	replicateWithWriter(t, cfg, dbPath, 0, "-n", "1500", "-rows", "5", "-size", "1500", "-autocheckpoint", "50")
	requireRestored(t, dbPath, 1500, 0, replica)

	// While replicate is stopped, the app writes and truncates the WAL.
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "200", "-truncate-every", "50")
	if code := w.Wait(time.Minute); code != 0 {
		t.Fatalf("writer: %s", w.Output())
	}
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	WaitFor(t, 30*time.Second, "a new generation", func() bool {
		return strings.Contains(rep.Output(), "new generation") && strings.Contains(rep.Output(), "snapshot written")
	})
	stopReplicate(t, rep)
	if !strings.Contains(rep.Output(), "WAL header changed") && !strings.Contains(rep.Output(), "differ") {
		t.Errorf("new generation without the reason logged:\n%s", rep.Output())
	}
	requireRestored(t, dbPath, 1700, 2, replica)
}

// TestTwoReplicas: one of two replicas is deleted half way; the other still
// restores everything, and the engine keeps going.
func TestTwoReplicas(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	cfg := writeConfig(t, dir, dbPath, fileReplica("a", a), fileReplica("b", b))
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "0", "-rows", "3", "-size", "1000", "-every", "2ms")
	time.Sleep(1500 * time.Millisecond)
	if err := os.Rename(a, a+".removed"); err != nil { // atomic, unlike RemoveAll under a writer
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	w.Signal(syscall.SIGINT)
	w.Wait(time.Minute)
	stopReplicate(t, rep)
	restoreAndVerify(t, w.LastCommitted(), "-config", cfg, "-replica", "b", dbPath)
	restoreAndVerify(t, w.LastCommitted(), "-config", cfg, dbPath) // picks the newest, whichever it is
	requireLive(t, dbPath, w.LastCommitted())
}

// TestPointInTimeCLI: -timestamp gives exactly the state at that time.
func TestPointInTimeCLI(t *testing.T) {
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", replica))
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "300")
	w.Wait(time.Minute)
	WaitFor(t, 20*time.Second, "first writes replicated", func() bool {
		stdout, _, _ := Run(context.Background(), bin.Litestream, "wal", replica)
		return strings.Count(stdout, "\n") > 1
	})
	time.Sleep(1200 * time.Millisecond) // segment times have at most 1s precision on some stores
	ts := time.Now().UTC().Format(time.RFC3339Nano)
	time.Sleep(1200 * time.Millisecond)
	w = Start(t, bin.Writer, "-db", dbPath, "-n", "200")
	w.Wait(time.Minute)
	stopReplicate(t, rep)
	restoreAndVerify(t, 300, "-timestamp", ts, replica)
	restoreAndVerify(t, 500, replica)
	requireLive(t, dbPath, 500)
}

// TestBadInput: each mistake gives one error line and exit 1, and loses
// nothing.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	notDB := filepath.Join(dir, "notdb")
	os.WriteFile(notDB, []byte(strings.Repeat("this is not a database\n", 100)), 0o644)
	existing := filepath.Join(dir, "exists.db")
	os.WriteFile(existing, []byte("keep me"), 0o644)
	empty := filepath.Join(dir, "empty-replica")
	os.MkdirAll(filepath.Join(empty, "generations"), 0o755)
	badCfg := filepath.Join(dir, "bad.yml")
	os.WriteFile(badCfg, []byte("dbs:\n  - path: /x.db\n    replicas:\n      - path: /y\n        sync-intervl: 1s\n"), 0o644)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown command", []string{"replicat"}, "unknown command"},
		{"unknown flag", []string{"restore", "-bogus", "x"}, "-bogus"},
		{"index not hex", []string{"restore", "-o", filepath.Join(dir, "o.db"), "-index", "xyz", empty}, "-index"},
		{"timestamp not RFC 3339", []string{"restore", "-o", filepath.Join(dir, "o.db"), "-timestamp", "yesterday", empty}, "RFC 3339"},
		{"restore target exists", []string{"restore", "-o", existing, empty}, "already exists"},
		{"no backup", []string{"restore", "-o", filepath.Join(dir, "o.db"), empty}, "no backup"},
		{"url without -o", []string{"restore", "file://" + empty}, "-o is required"},
		{"missing config", []string{"databases", "-config", filepath.Join(dir, "none.yml")}, "not found"},
		{"config typo", []string{"databases", "-config", badCfg}, `line 5: unknown key "sync-intervl"`},
		{"replicate one argument", []string{"replicate", notDB}, "at least one replica URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stdout, stderr, code := Run(ctx, bin.Litestream, tc.args...)
			if code != 1 {
				t.Fatalf("exit %d, want 1; stdout %q stderr %q", code, stdout, stderr)
			}
			if !strings.Contains(stderr, tc.want) || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
				t.Fatalf("stderr %q: want one line containing %q", stderr, tc.want)
			}
		})
	}
	if b, _ := os.ReadFile(existing); string(b) != "keep me" {
		t.Fatal("existing file was modified")
	}
	if _, err := os.Stat(filepath.Join(dir, "o.db")); err == nil {
		t.Fatal("failed restore left an output file")
	}

	t.Run("quiet flags", func(t *testing.T) {
		if _, stderr, code := Run(ctx, bin.Litestream, "restore", "-if-db-not-exists", "-o", existing, empty); code != 0 {
			t.Fatalf("-if-db-not-exists: exit %d %s", code, stderr)
		}
		if _, stderr, code := Run(ctx, bin.Litestream, "restore", "-if-replica-exists", "-o", filepath.Join(dir, "q.db"), empty); code != 0 {
			t.Fatalf("-if-replica-exists: exit %d %s", code, stderr)
		}
	})

	t.Run("not a database", func(t *testing.T) {
		rep := Start(t, bin.Litestream, "replicate", notDB, filepath.Join(dir, "r"))
		WaitFor(t, 10*time.Second, "an error about the file", func() bool { return strings.Contains(rep.Output(), "not a SQLite database") })
		rep.Signal(syscall.SIGINT)
		rep.Wait(10 * time.Second)
		if b, _ := os.ReadFile(notDB); !strings.HasPrefix(string(b), "this is not a database") {
			t.Fatal("non-database file was modified")
		}
	})

	t.Run("database appears later", func(t *testing.T) {
		dbPath, replica := filepath.Join(dir, "later.db"), filepath.Join(dir, "later-replica")
		rep := Start(t, bin.Litestream, "replicate", dbPath, replica)
		WaitFor(t, 10*time.Second, "waiting message", func() bool { return strings.Contains(rep.Output(), "does not exist yet") })
		w := Start(t, bin.Writer, "-db", dbPath, "-n", "50")
		w.Wait(time.Minute)
		time.Sleep(2500 * time.Millisecond)
		stopReplicate(t, rep)
		restoreAndVerify(t, 50, replica)
		requireLive(t, dbPath, 50)
	})

	t.Run("rollback journal database is switched to WAL", func(t *testing.T) {
		dbPath, replica := filepath.Join(dir, "journal.db"), filepath.Join(dir, "journal-replica")
		w := Start(t, bin.Writer, "-db", dbPath, "-n", "20", "-journal", "delete")
		w.Wait(time.Minute)
		rep := Start(t, bin.Litestream, "replicate", dbPath, replica)
		WaitFor(t, 10*time.Second, "switch logged", func() bool { return strings.Contains(rep.Output(), "switched it to WAL") })
		time.Sleep(2500 * time.Millisecond)
		stopReplicate(t, rep)
		restoreAndVerify(t, 20, replica)
		requireLive(t, dbPath, 20)
	})
}
