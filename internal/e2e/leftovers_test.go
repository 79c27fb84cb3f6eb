package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// TestKilledMidSnapshotLeavesNoTempFile kills replicate while it writes a
// snapshot of a large database to a file replica: the snapshot's temporary
// file stays behind, as large as the snapshot. The next start removes it
// after its first sync, and the restore is exact.
func TestKilledMidSnapshotLeavesNoTempFile(t *testing.T) {
	// ~150 MB of incompressible rows: the snapshot takes a good fraction of
	// a second to write, against the 1 ms polls below.
	dbPath, replica, cfg := largeDatabase(t, 150)
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	deadline := time.Now().Add(time.Minute)
	for !slices.ContainsFunc(tempFiles(t, replica), func(p string) bool { return strings.Contains(p, "/snapshots/") }) {
		if time.Now().After(deadline) {
			t.Fatal("no temporary file seen while the first snapshot was written")
		}
		time.Sleep(time.Millisecond)
	}
	rep.Signal(syscall.SIGKILL)
	rep.Wait(10 * time.Second)
	left := tempFiles(t, replica)
	if len(left) == 0 {
		t.Fatal("the killed snapshot left no temporary file: the test shows nothing")
	}

	rep = Start(t, bin.Litestream, "replicate", "-config", cfg)
	waitNoTempFiles(t, replica, rep)
	stopReplicate(t, rep)
	restoreAndVerify(t, 150, "-config", cfg, dbPath)
	requireLive(t, dbPath, 150)
}

// largeDatabase writes mb transactions of 1000 rows of 1000 random bytes
// (about mb MB) into a new database, and returns its path, a file replica
// path and a config that replicates one to the other.
func largeDatabase(t *testing.T, mb int) (dbPath, replica, cfg string) {
	t.Helper()
	dir := t.TempDir()
	dbPath, replica = filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	cfg = writeConfig(t, dir, dbPath, fileReplica("file", replica))
	w := Start(t, bin.Writer, "-db", dbPath, "-n", fmt.Sprint(mb), "-rows", "1000", "-size", "1000", "-exact")
	if code := w.Wait(5 * time.Minute); code != 0 {
		t.Fatalf("writer: %s", w.Output())
	}
	return dbPath, replica, cfg
}

// waitNoTempFiles waits, up to two minutes, for the running replicate p to
// remove the temporary files left in a file replica (it does after its
// first sync), and fails the test if it does not.
func waitNoTempFiles(t *testing.T, replica string, p *Proc) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		left := tempFiles(t, replica)
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("temporary files left in the replica after a restart: %v\noutput:\n%s", left, p.Output())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tempFiles lists the temporary files of interrupted writes in a file
// replica (".<name>.<random>.tmp").
func tempFiles(t *testing.T, replica string) []string {
	t.Helper()
	var out []string
	filepath.WalkDir(replica, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), ".") && strings.HasSuffix(d.Name(), ".tmp") {
			out = append(out, p)
		}
		return nil // the engine adds and removes files meanwhile
	})
	return out
}

// TestKilledRestoreLeavesNoTempDir kills a restore with SIGKILL while it
// works: its temporary directory next to the output (a partial database)
// stays behind. The next restore to the same output removes it, and
// restores exactly.
func TestKilledRestoreLeavesNoTempDir(t *testing.T) {
	dbPath, replica, cfg := largeDatabase(t, 60)
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	WaitFor(t, 2*time.Minute, "the first snapshot", func() bool {
		m, _ := filepath.Glob(filepath.Join(replica, "generations", "*", "snapshots", "*.snapshot.lz4"))
		return len(m) > 0
	})
	stopReplicate(t, rep)

	out := filepath.Join(t.TempDir(), "restored.db")
	pattern := filepath.Join(filepath.Dir(out), ".restored.db.restore-*.tmp")
	r := Start(t, bin.Litestream, "restore", "-config", cfg, "-o", out, dbPath)
	deadline := time.Now().Add(time.Minute)
	for {
		// The lock file appears once the restore owns its directory.
		if m, _ := filepath.Glob(filepath.Join(pattern, "lock")); len(m) > 0 {
			break
		}
		if r.Exited() || time.Now().After(deadline) {
			t.Fatalf("no locked temporary directory seen while the restore ran:\n%s", r.Output())
		}
		time.Sleep(time.Millisecond)
	}
	r.Signal(syscall.SIGKILL)
	r.Wait(10 * time.Second)
	if left, _ := filepath.Glob(pattern); len(left) == 0 {
		t.Fatal("the killed restore left no temporary directory: the test shows nothing")
	}
	if _, err := os.Stat(out); err == nil {
		t.Fatal("the killed restore finished before the kill: the test shows nothing")
	}

	stdout, stderr, code := Run(context.Background(), bin.Litestream, "restore", "-config", cfg, "-o", out, dbPath)
	if code != 0 {
		t.Fatalf("restore after the killed one: exit %d\n%s%s", code, stdout, stderr)
	}
	if left, _ := filepath.Glob(pattern); len(left) != 0 {
		t.Fatalf("temporary directories left after the next restore: %v", left)
	}
	if n, err := sqlwriter.Verify(context.Background(), out); err != nil || n != 60 {
		t.Fatalf("restored database: %d transactions, %v; want 60", n, err)
	}
	requireLive(t, dbPath, 60)
}
