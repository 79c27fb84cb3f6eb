package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestReplicateRestoreIfDBNotExists: replicate -restore-if-db-not-exists
// (and the config key) restores a missing database from its replica before
// replicating it, before -exec's child starts, then replicates it in a new
// generation; an existing database is left alone, and a database no replica
// holds starts empty.
func TestReplicateRestoreIfDBNotExists(t *testing.T) {
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", replica))
	replicateWithWriter(t, cfg, dbPath, 0, "-n", "200", "-every", "1ms")

	// The host lost its disk: the database, its WAL and the meta directory.
	for _, p := range []string{dbPath, dbPath + "-wal", dbPath + "-shm", filepath.Join(dir, ".app.db-litestream")} {
		if err := os.RemoveAll(p); err != nil {
			t.Fatal(err)
		}
	}
	// The child proves it started after the restore: it counts the rows.
	counted := filepath.Join(dir, "counted")
	child := fmt.Sprintf(`sh -c 'sqlite3 %s "SELECT MAX(tx) FROM t" > %s'`, dbPath, counted)
	requireSQLite3(t)
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg, "-restore-if-db-not-exists", "-exec", child)
	if code := rep.Wait(time.Minute); code != 0 {
		t.Fatalf("replicate -exec exited %d:\n%s", code, rep.Output())
	}
	if got := strings.TrimSpace(readFile(t, counted)); got != "200" {
		t.Fatalf("the child saw transaction %q last; want 200, restored before it started\n%s", got, rep.Output())
	}
	if out := rep.Output(); !strings.Contains(out, "database is missing; restoring it before replicating") || !strings.Contains(out, "database restored; replicating it in a new generation") {
		t.Errorf("the log does not say it restored:\n%s", out)
	}
	requireLive(t, dbPath, 200)

	// Writes after the restore replicate in a new generation; restore holds
	// them all.
	writeFile(t, cfg, strings.Replace(readFile(t, cfg), "    monitor-interval: 50ms\n", "    monitor-interval: 50ms\n    restore-if-db-not-exists: true\n", 1))
	rep, _ = replicateWithWriter(t, cfg, dbPath, 0, "-n", "100", "-every", "1ms")
	if out := rep.Output(); !strings.Contains(out, "database exists; not restored") || strings.Contains(out, "restoring it before replicating") {
		t.Errorf("an existing database was not left alone:\n%s", out)
	}
	// Two generations: the restored database replicates in a new one.
	requireRestored(t, dbPath, 300, 2, replica)

	// No backup anywhere: the database starts empty, and the log says so.
	empty := filepath.Join(dir, "new.db")
	rep = Start(t, bin.Litestream, "replicate", "-restore-if-db-not-exists", empty, filepath.Join(dir, "empty-replica"))
	WaitFor(t, 30*time.Second, "replicate to start", func() bool { return strings.Contains(rep.Output(), "replicating") })
	stopReplicate(t, rep)
	if out := rep.Output(); !strings.Contains(out, "no replica holds a backup of it; it starts empty") {
		t.Errorf("no word that the database starts empty:\n%s", out)
	}
}
