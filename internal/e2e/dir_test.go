package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/s3test"
)

// Directory entries end to end: the built binary replicates a directory of
// databases that come and go while it runs, each written by its own
// short-lived application processes, and every database that still exists
// restores exactly, by its path, while every application database stays
// intact.

// dirDBCount is how many databases TestDirManyDatabases runs: 50, or
// LITESTREAM_E2E_DIR_DBS.
func dirDBCount(t *testing.T) int {
	if s := os.Getenv("LITESTREAM_E2E_DIR_DBS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 10 {
			t.Fatalf("LITESTREAM_E2E_DIR_DBS=%q: give a count of at least 10", s)
		}
		return n
	}
	return 50
}

// dirApp is one database of a directory test and what its applications
// committed.
type dirApp struct {
	path string
	kind string // "sqlwriter", "shell" (one sqlite3 process per insert) or "python"
	want zooWant
}

// runApp runs the database's application once, to completion: n
// transactions from first. Safe for concurrent use on distinct apps.
func (a *dirApp) runApp(first, n int) error {
	switch a.kind {
	case "sqlwriter":
		out, err := exec.Command(bin.Writer, "-db", a.path, "-n", strconv.Itoa(n), "-rows", "3", "-size", "300", "-every", "2ms").CombinedOutput()
		if err != nil {
			return fmt.Errorf("sqlwriter on %s: %v: %s", a.path, err, tail(string(out), 400))
		}
		last := 0
		for _, line := range strings.Split(string(out), "\n") {
			if s, ok := strings.CutPrefix(line, "committed "); ok {
				last, _ = strconv.Atoi(s)
			}
		}
		if last != first+n-1 {
			return fmt.Errorf("sqlwriter on %s: last commit %d, want %d", a.path, last, first+n-1)
		}
		a.want.txs = last
	case "shell":
		if first == 1 {
			if out, err := sqlite3Shell(a.path, "PRAGMA journal_mode=WAL; "+zooSchema+";"); err != nil {
				return fmt.Errorf("sqlite3 on %s: %v: %s", a.path, err, out)
			}
		}
		for tx := first; tx < first+n; tx++ {
			if out, err := sqlite3Shell(a.path, fmt.Sprintf("INSERT INTO z (id, b) VALUES (%d, randomblob(%d));", tx, 100+tx*37%3000)); err != nil {
				return fmt.Errorf("sqlite3 on %s: %v: %s", a.path, err, out)
			}
			a.want.ids[int64(tx)] = true
		}
	case "python":
		out, err := exec.Command("python3", "-c", zooPython, a.path, strconv.Itoa(first), strconv.Itoa(n), "0").CombinedOutput()
		if err != nil {
			return fmt.Errorf("python on %s: %v: %s", a.path, err, tail(string(out), 400))
		}
		for tx := first; tx < first+n; tx++ {
			for k := 0; k < 1+tx%3; k++ {
				a.want.ids[int64(tx*10+k)] = true
			}
		}
	}
	return nil
}

// runApps runs f on every app, at most 4 at once, and fails the test with
// the first error.
func runApps(t *testing.T, apps []*dirApp, f func(a *dirApp) error) {
	t.Helper()
	sem := make(chan struct{}, 4)
	errs := make([]error, len(apps))
	var wg sync.WaitGroup
	for i, a := range apps {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			errs[i] = f(a)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// requireDirRestored restores the database at a.path by its path through
// the config (and, with extra, from one replica), and requires exactly
// what its applications committed, in the restore and in the live
// database.
func requireDirRestored(t *testing.T, cfg string, a *dirApp, extra ...string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored.db")
	args := append([]string{"restore", "-config", cfg, "-o", out}, extra...)
	stdout, stderr, code := Run(context.Background(), bin.Litestream, append(args, a.path)...)
	if code != 0 {
		t.Fatalf("restore %s %v: exit %d\n%s%s", a.path, extra, code, stdout, stderr)
	}
	st, err := readAppState(out)
	if err != nil {
		t.Fatalf("restore of %s %v: %v", a.path, extra, err)
	}
	if d := a.want.check(st); d != "" {
		t.Fatalf("restore of %s %v: %s", a.path, extra, d)
	}
	requireLiveApps(t, a.path, a.want, "after replicate stopped: "+a.path)
}

// newDirApp returns the app of database i under dir: most are sqlwriters,
// every tenth from the fourth the sqlite3 shell, every tenth from the
// eighth Python.
func newDirApp(dir string, i int) *dirApp {
	a := &dirApp{path: filepath.Join(dir, fmt.Sprintf("tenant-%03d.db", i)), kind: "sqlwriter", want: zooWant{ids: map[int64]bool{}}}
	switch i % 10 {
	case 3:
		a.kind = "shell"
	case 7:
		a.kind = "python"
	}
	return a
}

// TestDirManyDatabases: a directory entry with watch over 50 databases:
// half present at start, half created while replicate runs, a few removed
// while it runs; each written by its own short-lived applications (the
// sqlwriter, the sqlite3 shell one process per insert, Python). After a
// clean stop every database that still exists restores exactly by its
// path, and every application database is intact.
func TestDirManyDatabases(t *testing.T) {
	requireSQLite3(t)
	if _, err := exec.LookPath("python3"); err != nil {
		t.Fatal("no python3 on PATH")
	}
	n := dirDBCount(t)
	root := t.TempDir()
	dir, rep := filepath.Join(root, "tenants"), filepath.Join(root, "replica")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Files that are none of the entry's databases, or no database at all.
	writeFile(t, filepath.Join(dir, "README.db"), "not a database, though its name matches\n")
	writeFile(t, filepath.Join(dir, "notes.txt"), "not matched\n")
	cfg := filepath.Join(root, "litestream.yml")
	writeFile(t, cfg, fmt.Sprintf("dbs:\n  - dir: %s\n    pattern: \"tenant-*.db\"\n    watch: true\n    monitor-interval: 200ms\n    replicas:\n      - path: %s\n        sync-interval: 500ms\n", dir, rep))

	var apps []*dirApp
	for i := range n {
		apps = append(apps, newDirApp(dir, i))
	}
	atStart, later := apps[:n/2], apps[n/2:]
	runApps(t, atStart, func(a *dirApp) error { return a.runApp(1, 5) })

	p := Start(t, bin.Litestream, "replicate", "-config", cfg)
	WaitFor(t, time.Minute, "the databases present at start replicating", func() bool {
		return strings.Count(p.Output(), "msg=replicating") >= len(atStart)
	})
	// Written again while replicating, and new ones created meanwhile.
	runApps(t, append(cloneApps(atStart), later...), func(a *dirApp) error {
		if a.want.txs > 0 || len(a.want.ids) > 0 {
			return a.runApp(6, 15)
		}
		return a.runApp(1, 15)
	})
	WaitFor(t, time.Minute, "every database replicating", func() bool { return strings.Count(p.Output(), "msg=replicating") >= n })

	// A few removed while replicate runs, from both halves.
	var removed []*dirApp
	for i, a := range apps {
		if i%9 == 4 {
			for _, suffix := range []string{"", "-wal", "-shm"} {
				os.Remove(a.path + suffix)
			}
			removed = append(removed, a)
		}
	}
	WaitFor(t, time.Minute, "the removed databases stopped", func() bool {
		return strings.Count(p.Output(), "removed database stopped")+strings.Count(p.Output(), "last sync of a removed database incomplete") >= len(removed)
	})

	// databases lists what the entry matches now.
	stdout, stderr, code := Run(context.Background(), bin.Litestream, "databases", "-json", "-config", cfg)
	if code != 0 {
		t.Fatalf("databases: %s", stderr)
	}
	var listed []struct {
		Path     string   `json:"path"`
		Replicas []string `json:"replicas"`
	}
	if err := json.Unmarshal([]byte(stdout), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != n-len(removed) {
		t.Fatalf("databases lists %d databases, want %d:\n%s", len(listed), n-len(removed), stdout)
	}

	p.Signal(syscall.SIGTERM)
	if code := p.Wait(2 * time.Minute); code != 0 {
		t.Fatalf("replicate exited %d after SIGTERM", code)
	}
	out := p.Output()
	for _, line := range strings.Split(out, "\n") {
		monitor := strings.Contains(line, "directory entry")
		sidecar := strings.Contains(line, "-wal") || strings.Contains(line, "-shm") || strings.Contains(line, "-journal")
		if (strings.Contains(line, "README.db") || strings.Contains(line, "notes.txt") || monitor && sidecar) && !strings.Contains(line, "level=DEBUG") {
			t.Errorf("a file that is no database of the entry is noisy: %s", line)
		}
	}
	if !strings.Contains(out, "last sync done; exiting") {
		t.Fatalf("no clean last sync:\n%s", tail(out, 3000))
	}
	for _, a := range apps {
		if !slices.Contains(removed, a) {
			requireDirRestored(t, cfg, a)
		}
	}
	// A removed database's replica remains, and restores by its path.
	requireDirRestoredAtLeast(t, cfg, removed[0])
}

// requireDirRestoredAtLeast restores a removed database by its path and
// requires a sound database.
func requireDirRestoredAtLeast(t *testing.T, cfg string, a *dirApp) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored.db")
	stdout, stderr, code := Run(context.Background(), bin.Litestream, "restore", "-config", cfg, "-o", out, a.path)
	if code != 0 {
		t.Fatalf("restore of the removed %s: exit %d\n%s%s", a.path, code, stdout, stderr)
	}
	if _, err := readAppState(out); err != nil {
		t.Fatalf("restore of the removed %s: %v", a.path, err)
	}
}

// TestDirRecursiveS3: a nested directory with recursive, to a file replica
// and to the local S3 server; databases at three depths, some in a
// subdirectory created while replicate runs; each restores exactly from
// each replica by its path, and from the S3 URL of its relative path.
func TestDirRecursiveS3(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	useS3Credentials(t)
	root := t.TempDir()
	dir, rep := filepath.Join(root, "data"), filepath.Join(root, "replica")
	cfg := filepath.Join(root, "litestream.yml")
	writeFile(t, cfg, fmt.Sprintf("dbs:\n  - dir: %s\n    pattern: \"*.db\"\n    recursive: true\n    watch: true\n    monitor-interval: 200ms\n    replicas:\n"+
		"      - path: %s\n        sync-interval: 500ms\n      - url: s3://%s/tenants\n        endpoint: %s\n        sync-interval: 500ms\n", dir, rep, bucket, srv.Endpoint()))
	mk := func(rel string) *dirApp {
		return &dirApp{path: filepath.Join(dir, rel), kind: "sqlwriter", want: zooWant{ids: map[int64]bool{}}}
	}
	atStart := []*dirApp{mk("top.db"), mk("eu/a.db"), mk("eu/fr/b.db")}
	later := []*dirApp{mk("us/c.db"), mk("us/east/d.db"), mk("eu/fr/e.db")}
	for _, a := range atStart {
		if err := os.MkdirAll(filepath.Dir(a.path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runApps(t, atStart, func(a *dirApp) error { return a.runApp(1, 5) })
	p := Start(t, bin.Litestream, "replicate", "-config", cfg)
	WaitFor(t, time.Minute, "the databases present at start replicating", func() bool {
		return strings.Count(p.Output(), "msg=replicating") >= 2*len(atStart)
	})
	for _, a := range later {
		if err := os.MkdirAll(filepath.Dir(a.path), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	runApps(t, append(cloneApps(atStart), later...), func(a *dirApp) error {
		if a.want.txs > 0 {
			return a.runApp(6, 20)
		}
		return a.runApp(1, 20)
	})
	WaitFor(t, time.Minute, "every database replicating", func() bool {
		return strings.Count(p.Output(), "msg=replicating") >= 2*(len(atStart)+len(later))
	})
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(2 * time.Minute); code != 0 {
		t.Fatalf("replicate exited %d after SIGTERM:\n%s", code, tail(p.Output(), 3000))
	}
	port := strings.Split(srv.Addr, ":")[1]
	for _, a := range append(atStart, later...) {
		requireDirRestored(t, cfg, a, "-replica", "file")
		requireDirRestored(t, cfg, a, "-replica", "s3")
		rel, _ := filepath.Rel(dir, a.path)
		if _, err := os.Stat(filepath.Join(rep, rel, "generations")); err != nil {
			t.Fatalf("the file replica of %s is not at its relative path: %v", rel, err)
		}
		url := fmt.Sprintf("s3://%s.localhost:%s/tenants/%s", bucket, port, filepath.ToSlash(rel))
		if _, m := restoreVerified(t, bin.Litestream, url); m != a.want.txs {
			t.Fatalf("restore from %s: %d transactions, want %d", url, m, a.want.txs)
		}
	}
}

// cloneApps returns a copy of apps, so that appending to it leaves apps
// alone.
func cloneApps(apps []*dirApp) []*dirApp { return append([]*dirApp(nil), apps...) }
