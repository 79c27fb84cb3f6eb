package main

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
)

// dirFixture runs the monitors of a config's directory entries as
// replicate does, logging to a buffer.
type dirFixture struct {
	t      *testing.T
	cfg    *Config
	set    *dbSet
	log    *lockedBuffer
	cancel context.CancelFunc
	done   chan struct{}
}

// startDirFixture parses src, starts what its directory entries hold now
// and runs their monitors until the test ends, then closes every database.
func startDirFixture(t *testing.T, src string) *dirFixture {
	t.Helper()
	cfg, err := ParseConfig([]byte(src), false)
	if err != nil {
		t.Fatal(err)
	}
	f := &dirFixture{t: t, cfg: cfg, set: newDBSet(), log: &lockedBuffer{}, done: make(chan struct{})}
	logger := slog.New(slog.NewTextHandler(f.log, &slog.HandlerOptions{Level: slog.LevelDebug}))
	monitors, found, err := startDirEntries(cfg, f.set, nil, nil, logger)
	if err != nil {
		t.Fatal(err)
	}
	for _, db := range found {
		f.set.add(db)
		if err := openAndLog(db, nil, logger); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() {
		defer close(f.done)
		stopped := make(chan struct{}, len(monitors))
		for _, m := range monitors {
			go func() { m.run(ctx); stopped <- struct{}{} }()
		}
		for range monitors {
			<-stopped
		}
	}()
	t.Cleanup(func() {
		f.stop()
		if err := closeAll(f.set.list(), logger); err != nil {
			t.Error(err)
		}
		if t.Failed() {
			t.Logf("log:\n%s", f.log.String())
		}
	})
	return f
}

// stop ends the monitors and waits for them.
func (f *dirFixture) stop() {
	f.cancel()
	select {
	case <-f.done:
	case <-time.After(2 * time.Minute):
		f.t.Fatal("the monitors did not stop")
	}
}

// waitFor polls cond for up to a generous deadline.
func (f *dirFixture) waitFor(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s; set: %v", what, f.paths())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// paths returns the paths in the set.
func (f *dirFixture) paths() []string {
	var out []string
	for _, db := range f.set.list() {
		out = append(out, db.Path())
	}
	return out
}

// replicated waits until p is in the set and its replicas have synced.
func (f *dirFixture) replicated(p string) *litestream.DB {
	f.t.Helper()
	var db *litestream.DB
	f.waitFor(p+" replicated", func() bool {
		db = f.set.get(p)
		if db == nil || db.Stats().Generation == "" {
			return false
		}
		for _, r := range db.Replicas {
			if r.Pos().IsZero() {
				return false
			}
		}
		return true
	})
	return db
}

// createDB makes a WAL-mode SQLite database at p with one row.
func createDB(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+p+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{"PRAGMA journal_mode=WAL", "CREATE TABLE IF NOT EXISTS t (x)", "INSERT INTO t VALUES (1)"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// createDBInPlace is createDB made elsewhere and renamed to p, so that the
// database appears whole: created at p, the monitor may open it while
// createDB's connection is still open, and that connection's close, the
// last before the engine's, deletes the -wal under it (the engine starts
// over, with a warning the tests below do not expect).
func createDBInPlace(t *testing.T, p string) {
	t.Helper()
	tmp := filepath.Join(t.TempDir(), "new.db")
	createDB(t, tmp)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

func dirSrc(dir, pattern, replica string, recursive, watch bool) string {
	return "dbs:\n  - dir: " + dir + "\n    pattern: \"" + pattern + "\"\n    recursive: " + boolStr(recursive) + "\n    watch: " + boolStr(watch) +
		"\n    replicas:\n      - path: " + replica + "\n        sync-interval: 100ms\n"
}

func boolStr(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// TestDirMonitor_Watch: databases present at start, created later (also in
// a new subdirectory), and removed; files that are not databases and
// SQLite's own files are skipped without a line above debug; an empty file
// is waited for and picked up once it holds a database.
func TestDirMonitor_Watch(t *testing.T) {
	root := t.TempDir()
	dir, rep := filepath.Join(root, "data"), filepath.Join(root, "rep")
	createDB(t, filepath.Join(dir, "a.db"))
	if err := os.WriteFile(filepath.Join(dir, "notes.db"), []byte("not a database at all, just some text"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := startDirFixture(t, dirSrc(dir, "*.db", rep, true, true))
	f.replicated(filepath.Join(dir, "a.db"))

	createDBInPlace(t, filepath.Join(dir, "b.db"))
	createDBInPlace(t, filepath.Join(dir, "x", "y", "c.db"))
	f.replicated(filepath.Join(dir, "b.db"))
	f.replicated(filepath.Join(dir, "x", "y", "c.db"))
	f.waitFor("c.db's replica under its relative path", func() bool {
		_, err := os.Stat(filepath.Join(rep, "x", "y", "c.db", "generations"))
		return err == nil
	})

	// An empty file waits, quietly, until it holds a database.
	empty := filepath.Join(dir, "later.db")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if f.set.get(empty) != nil {
		t.Fatal("an empty file is replicated")
	}
	createDBInPlace(t, empty)
	f.replicated(empty)

	// Removed: out of the set, closed after a last sync.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(dir, "b.db") + suffix)
	}
	f.waitFor("b.db stopped", func() bool { return f.set.get(filepath.Join(dir, "b.db")) == nil })
	f.waitFor("b.db's last sync", func() bool { return strings.Contains(f.log.String(), "removed database stopped") })
	// Renamed out of the directory.
	if err := os.Rename(filepath.Join(dir, "a.db"), filepath.Join(root, "a.db")); err != nil {
		t.Fatal(err)
	}
	f.waitFor("a.db stopped", func() bool { return f.set.get(filepath.Join(dir, "a.db")) == nil })

	f.stop()
	for _, line := range strings.Split(f.log.String(), "\n") {
		if strings.Contains(line, "notes.db") && !strings.Contains(line, "level=DEBUG") {
			t.Errorf("a file that is not a database is noisy: %s", line)
		}
		if strings.Contains(line, "-wal") || strings.Contains(line, "-shm") {
			t.Errorf("SQLite's own files are noisy: %s", line)
		}
		if strings.Contains(line, "later.db") && strings.Contains(line, "skipped") {
			t.Errorf("an empty file was skipped: %s", line)
		}
	}
}

// TestDirMonitor_NoWatch: without watch, the directory is scanned once; a
// database created later is not picked up; not recursive, a subdirectory's
// database is not one of the entry's.
func TestDirMonitor_NoWatch(t *testing.T) {
	root := t.TempDir()
	dir, rep := filepath.Join(root, "data"), filepath.Join(root, "rep")
	createDB(t, filepath.Join(dir, "a.db"))
	createDB(t, filepath.Join(dir, "sub", "s.db"))
	f := startDirFixture(t, dirSrc(dir, "*.db", rep, false, false))
	f.replicated(filepath.Join(dir, "a.db"))
	createDB(t, filepath.Join(dir, "b.db"))
	time.Sleep(500 * time.Millisecond)
	if got := f.paths(); len(got) != 1 {
		t.Fatalf("set = %v, want a.db only", got)
	}
}

// TestDirMonitor_MissingDir: a dir that does not exist is waited for, said
// once; a pattern that matches nothing is a warning; once the directory
// appears its databases replicate.
func TestDirMonitor_MissingDir(t *testing.T) {
	root := t.TempDir()
	dir, rep := filepath.Join(root, "later", "data"), filepath.Join(root, "rep")
	f := startDirFixture(t, dirSrc(dir, "*.db", rep, false, true))
	f.waitFor("the missing directory said", func() bool { return strings.Contains(f.log.String(), "directory does not exist yet; waiting for it") })
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	f.waitFor("the empty pattern warned", func() bool {
		return strings.Contains(f.log.String(), "level=WARN") && strings.Contains(f.log.String(), "the pattern matches no database")
	})
	createDB(t, filepath.Join(dir, "a.db"))
	f.replicated(filepath.Join(dir, "a.db"))
	if n := strings.Count(f.log.String(), "does not exist yet"); n != 1 {
		t.Fatalf("the missing directory is said %d times", n)
	}
}

// TestDirMonitor_Refused: a file both of two overlapping entries match is
// refused by both, with an error naming both lines; a link is refused; a
// database under a directory the pattern matches is refused.
func TestDirMonitor_Refused(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "data")
	createDB(t, filepath.Join(dir, "a.db"))
	createDB(t, filepath.Join(dir, "t1.db"))
	createDB(t, filepath.Join(root, "outside.db"))
	if err := os.Symlink(filepath.Join(root, "outside.db"), filepath.Join(dir, "link.db")); err != nil {
		t.Fatal(err)
	}
	createDB(t, filepath.Join(dir, "sub", "n.db", "inner.db"))
	src := "dbs:\n  - dir: " + dir + "\n    pattern: \"*.db\"\n    recursive: true\n    watch: true\n    replicas:\n      - path: " + filepath.Join(root, "r1") + "\n" +
		"  - dir: " + dir + "\n    pattern: \"t?.db\"\n    watch: true\n    replicas:\n      - path: " + filepath.Join(root, "r2") + "\n"
	f := startDirFixture(t, src)
	f.replicated(filepath.Join(dir, "a.db"))
	f.waitFor("the overlap refused by both entries", func() bool {
		return strings.Count(f.log.String(), "t1.db") >= 2 && strings.Contains(f.log.String(), "line 2") && strings.Contains(f.log.String(), "line 8")
	})
	createDB(t, filepath.Join(dir, "t2.db"))
	f.waitFor("t2.db refused by both entries", func() bool { return strings.Count(f.log.String(), "refused: it is one of the databases") >= 4 })
	f.waitFor("the link refused", func() bool { return strings.Contains(f.log.String(), "a symbolic link") })
	f.waitFor("the nested database refused", func() bool { return strings.Contains(f.log.String(), "inner.db lies under a directory named n.db") })
	for _, p := range f.paths() {
		if !strings.HasSuffix(p, "/a.db") {
			t.Errorf("%s is replicated", p)
		}
	}
	for _, line := range strings.Split(f.log.String(), "\n") {
		if strings.Contains(line, "refused: it is one of") && !strings.Contains(line, "level=ERROR") {
			t.Errorf("an overlap is not an error line: %s", line)
		}
	}
}
