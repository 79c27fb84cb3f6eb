package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// The sequences the end-to-end tests share: run replicate beside a writer,
// through a store's outage, or with Litestream v0.3; then restore and check
// what came back. Each test keeps only what is its own.

// replicateWithWriter runs our replicate with cfg while a writer with
// writerArgs runs to completion on dbPath (it must exit 0), waits settle,
// and stops replicate, which must exit 0 after its last sync. It returns
// replicate's process, for its output, and the writer's last commit.
func replicateWithWriter(t *testing.T, cfg, dbPath string, settle time.Duration, writerArgs ...string) (*Proc, int) {
	t.Helper()
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, append([]string{"-db", dbPath}, writerArgs...)...)
	if code := w.Wait(5 * time.Minute); code != 0 {
		t.Fatalf("writer exited %d: %s", code, w.Output())
	}
	time.Sleep(settle)
	stopReplicate(t, rep)
	return rep, w.LastCommitted()
}

// outageStore is a store server that an outage test stops and starts
// again on the same port with the same data.
type outageStore interface {
	Stop()
	Start()
}

// replicateThroughOutage runs our replicate with cfg beside an endless
// writer on dbPath; once the first snapshot is written it stops srv for
// 30 seconds (5 with -short), during which the application must go on
// committing, then starts it again, stops the writer and replicate. The
// run must have started exactly one generation. It returns replicate's
// process and the writer's last commit.
func replicateThroughOutage(t *testing.T, cfg, dbPath string, srv outageStore) (*Proc, int) {
	t.Helper()
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "0", "-rows", "3", "-size", "1500", "-every", "5ms")
	WaitFor(t, 30*time.Second, "first snapshot", func() bool { return strings.Contains(rep.Output(), "snapshot written") })
	time.Sleep(time.Second)

	outage := 30 * time.Second
	if testing.Short() {
		outage = 5 * time.Second
	}
	srv.Stop()
	before := w.LastCommitted()
	time.Sleep(outage)
	if w.Exited() || w.LastCommitted() <= before {
		t.Fatalf("the application stopped writing during the outage (%d -> %d)", before, w.LastCommitted())
	}
	srv.Start()
	time.Sleep(3 * time.Second)
	w.Signal(syscall.SIGINT)
	w.Wait(time.Minute)
	stopReplicate(t, rep)
	if strings.Count(rep.Output(), "new generation") != 1 {
		t.Fatalf("the outage started a new generation:\n%s", rep.Output())
	}
	return rep, w.LastCommitted()
}

// replicateV03 runs Litestream v0.3 (the binary v03) with its config cfg
// while a writer commits 600 transactions of varied sizes to dbPath, gives
// it a few sync intervals to ship them, stops it, and returns the writer's
// last commit.
func replicateV03(t *testing.T, v03, cfg, dbPath string) (*Proc, int) {
	t.Helper()
	rep := Start(t, v03, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "600", "-rows", "4", "-size", "700", "-every", "2ms")
	w.Wait(2 * time.Minute)
	// v0.3 ships on its own schedule: give it a few sync intervals.
	time.Sleep(3 * time.Second)
	rep.Signal(syscall.SIGINT)
	rep.Wait(time.Minute)
	return rep, w.LastCommitted()
}

// requireRestored restores replica (a URL or path, or "-config", a file
// and a database path) and requires exactly want transactions in the
// result, exactly generations generations in the replica (unless 0), and
// the application's database at dbPath intact with want transactions.
func requireRestored(t *testing.T, dbPath string, want, generations int, replica ...string) {
	t.Helper()
	restoreAndVerify(t, want, replica...)
	if generations > 0 {
		if n := generationCount(t, replica...); n != generations {
			t.Fatalf("%d generations, want %d", n, generations)
		}
	}
	requireLive(t, dbPath, want)
}

// restoreVerified restores with the given litestream binary and args,
// verifies the result's rows and returns its path and how many
// transactions it holds.
func restoreVerified(t *testing.T, binary string, args ...string) (string, int) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored.db")
	stdout, stderr, code := Run(context.Background(), binary, append([]string{"restore", "-o", out}, args...)...)
	if code != 0 {
		t.Fatalf("%s restore %v: exit %d\n%s%s", filepath.Base(binary), args, code, stdout, stderr)
	}
	m, err := sqlwriter.Verify(context.Background(), out)
	if err != nil {
		t.Fatalf("database restored by %s: %v", filepath.Base(binary), err)
	}
	return out, m
}

// v03Binary returns the Litestream v0.3 binary LITESTREAM_V03 names, and
// skips the test when it is not set.
func v03Binary(t *testing.T) string {
	t.Helper()
	v03 := os.Getenv("LITESTREAM_V03")
	if v03 == "" {
		t.Skip("LITESTREAM_V03 is not set: `make test` builds Litestream v0.3.13 into ./bin and runs this test against it")
	}
	if _, err := os.Stat(v03); err != nil {
		t.Fatalf("LITESTREAM_V03: %v", err)
	}
	return v03
}
