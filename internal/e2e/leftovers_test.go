package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKilledMidSnapshotLeavesNoTempFile kills replicate while it writes a
// snapshot of a large database to a file replica: the snapshot's temporary
// file stays behind, as large as the snapshot. The next start removes it
// after its first sync, and the restore is exact.
func TestKilledMidSnapshotLeavesNoTempFile(t *testing.T) {
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", replica))
	// ~150 MB of incompressible rows: the snapshot takes a good fraction of
	// a second to write, against the 1 ms polls below.
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "150", "-rows", "1000", "-size", "1000", "-exact")
	if code := w.Wait(5 * time.Minute); code != 0 {
		t.Fatalf("writer: %s", w.Output())
	}

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
