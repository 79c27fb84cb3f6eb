package litestream_test

import (
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/litestream-go/litestream"
)

// shell runs one statement in the sqlite3 shell, a process of its own, as
// scripts and cron jobs write to databases. The test fails when the shell
// is missing (make tools installs it).
func shell(t *testing.T, path, stmt string) string {
	t.Helper()
	out, err := exec.Command("sqlite3", "-cmd", ".timeout 5000", path, stmt).CombinedOutput()
	if err != nil {
		t.Fatalf("sqlite3 %q: %v: %s", stmt, err, out)
	}
	return strings.TrimSpace(string(out))
}

// requireRows opens the database at path read-only and fails the test
// unless it passes integrity_check and table t holds exactly ids 1..n.
func requireRows(t *testing.T, path string, n int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var check string
	if err := db.QueryRow("PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("%s: integrity_check: %q, %v", path, check, err)
	}
	var count, sum int
	if err := db.QueryRow("SELECT count(*), coalesce(sum(id), 0) FROM t").Scan(&count, &sum); err != nil {
		t.Fatal(err)
	}
	if count != n || sum != n*(n+1)/2 {
		t.Fatalf("%s holds %d rows (id sum %d), want ids 1..%d", path, count, sum, n)
	}
}

// TestDB_WALReplacedBehindTheEngine: the -wal and -shm are deleted while
// the engine runs (by hand, or by a program that does not follow SQLite's
// locking), and the application, the sqlite3 shell, goes on writing into
// new ones. The engine notices that its connections hold files no longer
// at the paths, reopens, starts a new generation and keeps replicating:
// the restore holds every row, and the application's database is intact.
func TestDB_WALReplacedBehindTheEngine(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path, replicaDir := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	shell(t, path, "PRAGMA journal_mode=WAL; CREATE TABLE t (id INTEGER PRIMARY KEY, v BLOB);")
	insert := func(from, to int) {
		for i := from; i <= to; i++ {
			shell(t, path, "INSERT INTO t (id, v) VALUES ("+itoa(i)+", randomblob(500))")
		}
	}
	insert(1, 5)
	db, r := newManualDB(t, path, replicaDir)
	syncAll(t, db, r)
	gen := db.Stats().Generation
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Remove(path + suffix); err != nil {
			t.Fatal(err)
		}
	}
	insert(6, 10)
	syncAll(t, db, r)
	if got := db.Stats().Generation; got == gen {
		t.Fatalf("still in generation %s after the WAL was replaced", gen)
	}
	insert(11, 15)
	syncAll(t, db, r)
	requireRows(t, path, 15)
	requireRows(t, restoreFile(t, replicaDir, litestream.RestoreOptions{Index: litestream.NoIndex}), 15)
	if err := db.Close(ctx); err != nil {
		t.Fatalf("last sync: %v", err)
	}
	requireRows(t, path, 15)
}

func itoa(i int) string { return strconv.Itoa(i) }
