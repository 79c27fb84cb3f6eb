package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRestoreCommand_OutputIsDirectory: an output that is a directory is
// refused before the replica is read, with the file path to give instead.
func TestRestoreCommand_OutputIsDirectory(t *testing.T) {
	replica := "file://" + filepath.Join(t.TempDir(), "replica") // never read
	out := t.TempDir()
	requireFailure(t, runCmd("restore", "-o", out, replica),
		"litestream restore: "+out+" is a directory: give a file path, such as "+filepath.Join(out, "restored.db"))
	requireFailure(t, runCmd("restore", "-if-db-not-exists", "-o", out, replica), out+" is a directory: give a file path")

	dbPath := filepath.Join(t.TempDir(), "app.db")
	cfg := writeConfig(t, dbPath, "      - path: "+filepath.Join(t.TempDir(), "replica")+"\n")
	requireFailure(t, runCmd("restore", "-config", cfg, "-o", out, dbPath), "such as "+filepath.Join(out, "app.db"))
	if ents, _ := os.ReadDir(out); len(ents) != 0 {
		t.Fatalf("written into the directory: %v", ents)
	}
}

// TestRestoreCommand_EmptyDirectoryReplica: a bare empty directory is a
// replica with no backup: -if-replica-exists succeeds without writing,
// and without it restore fails saying there is no backup.
func TestRestoreCommand_EmptyDirectoryReplica(t *testing.T) {
	empty := t.TempDir()
	out := filepath.Join(t.TempDir(), "app.db")
	r := runCmd("restore", "-if-replica-exists", "-o", out, empty)
	if r.code != 0 || r.stderr != "" || !strings.HasPrefix(r.stdout, "no backup found; nothing restored (-if-replica-exists): ") {
		t.Fatalf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	requireFailure(t, runCmd("restore", "-o", out, empty), "litestream restore: no backup to restore from: no generation with a snapshot in file")
	if _, err := os.Lstat(out); !os.IsNotExist(err) {
		t.Fatalf("output written (%v)", err)
	}
}

// TestRestoreCommand_Verbose: -v (as in v0.3) adds the engine's log of the
// restore's steps; without it stderr has the plan and the result only. A
// plan of one segment says "1 WAL segment".
func TestRestoreCommand_Verbose(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dbPath, "      - path: "+filepath.Join(dir, "replica")+"\n")
	src := openSource(t, cfg, dbPath)
	src.commit(3)
	src.sync("file")

	for _, verbose := range []bool{false, true} {
		out := filepath.Join(t.TempDir(), "restored.db")
		args := []string{"restore", "-config", cfg, "-o", out}
		if verbose {
			args = append(args, "-v")
		}
		r := runCmd(append(args, dbPath)...)
		if r.code != 0 {
			t.Fatalf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, ", 1 WAL segment up to ") {
			t.Errorf("%v: no plan of one segment on stderr: %s", args, r.stderr)
		}
		if logged := strings.Contains(r.stderr, "msg=\"restore complete\""); logged != verbose {
			t.Errorf("%v: the engine's log shown: %v, want %v: %s", args, logged, verbose, r.stderr)
		}
		requireRestored(t, out, 3)
	}
}
