package main

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestDirEntryCommands: databases lists what a directory entry matches,
// and the listing commands and restore find a database of the entry by its
// path, even once its file is gone; a path no entry covers is refused as
// before.
func TestDirEntryCommands(t *testing.T) {
	root := t.TempDir()
	dir, rep := filepath.Join(root, "tenants"), filepath.Join(root, "rep")
	cfg := filepath.Join(root, "litestream.yml")
	if err := os.WriteFile(cfg, []byte(dirSrc(dir, "*.db", rep, true, false)), 0o644); err != nil {
		t.Fatal(err)
	}
	a, b := filepath.Join(dir, "a.db"), filepath.Join(dir, "x", "b.db")
	createDB(t, a)
	createDB(t, b)
	if err := os.WriteFile(filepath.Join(dir, "junk.db"), []byte("not a database, just text"), 0o644); err != nil {
		t.Fatal(err)
	}
	f := startDirFixture(t, dirSrc(dir, "*.db", rep, true, false))
	f.replicated(a)
	f.replicated(b)
	f.stop()
	if err := closeAll(f.set.list(), discardLogger()); err != nil {
		t.Fatal(err)
	}

	r := runCmd("databases", "-config", cfg)
	var rows []string
	for _, line := range strings.Split(strings.TrimSpace(r.stdout), "\n")[1:] {
		rows = append(rows, strings.Join(strings.Fields(line), " "))
	}
	if r.code != 0 || strings.Join(rows, "; ") != a+" file; "+b+" file" {
		t.Fatalf("databases: %+v", r)
	}
	r = runCmd("databases", "-json", "-config", cfg)
	if r.code != 0 || !strings.Contains(r.stdout, `"path": "`+b+`"`) {
		t.Fatalf("databases -json: %+v", r)
	}
	r = runCmd("generations", "-config", cfg, b)
	if r.code != 0 || len(strings.Split(strings.TrimSpace(r.stdout), "\n")) != 2 {
		t.Fatalf("generations of %s: %+v", b, r)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(b + suffix)
	}
	out := filepath.Join(root, "out.db")
	r = runCmd("restore", "-config", cfg, "-o", out, b)
	if r.code != 0 {
		t.Fatalf("restore of the removed %s: %+v", b, r)
	}
	r = runCmd("restore", "-config", cfg, b)
	if r.code != 0 {
		t.Fatalf("restore of %s to its own path: %+v", b, r)
	}
	if c, _ := classify(b); c != isDatabase {
		t.Fatalf("restore to the database's path wrote no database")
	}
	requireFailure(t, runCmd("generations", "-config", cfg, filepath.Join(root, "elsewhere.db")), "is not in the config file")
}

// discardLogger logs nowhere.
func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
