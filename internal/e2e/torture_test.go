package e2e

import (
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/s3test"
)

// tortureCycles is the number of crash cycles: 20 by default, more with
// LITESTREAM_TORTURE_CYCLES (make torture sets 1000).
func tortureCycles() int {
	if n, err := strconv.Atoi(os.Getenv("LITESTREAM_TORTURE_CYCLES")); err == nil && n > 0 {
		return n
	}
	return 20
}

// figure prints a line that make torture collects into the README table.
func figure(t *testing.T, name string, v any) {
	t.Logf("FIGURE %s: %v", name, v)
	fmt.Printf("FIGURE %s: %v\n", name, v)
}

// TestCrashLoop kills replicate with SIGKILL at random moments (copying,
// checkpointing, snapshotting, uploading) and the writer in the middle of
// transactions, restarts both, and finally checks that a restore holds
// exactly every committed transaction.
func TestCrashLoop(t *testing.T) {
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	var b strings.Builder
	fmt.Fprintf(&b, "dbs:\n  - path: %s\n    monitor-interval: 20ms\n    min-checkpoint-page-count: 200\n    checkpoint-interval: 300ms\n    replicas:\n", dbPath)
	fmt.Fprintf(&b, "      - path: %s\n        sync-interval: 30ms\n        snapshot-interval: 700ms\n        retention: 2s\n        retention-check-interval: 500ms\n", replica)
	cfg := filepath.Join(dir, "litestream.yml")
	writeFile(t, cfg, b.String())

	cycles := tortureCycles()
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5))
	var w *Proc
	startWriter := func() {
		// Multi-page transactions, at a pace that keeps the database to
		// about 2 GB after 1000 cycles: at full speed it grew past 20 GB,
		// and with a snapshot every 700 ms the disk filled up.
		w = Start(t, bin.Writer, "-db", dbPath, "-n", "0", "-rows", "8", "-size", "3000", "-every", "4ms")
	}
	startWriter()
	kills := 0
	for i := 0; i < cycles; i++ {
		rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
		time.Sleep(time.Duration(50+rng.IntN(600)) * time.Millisecond)
		if rng.IntN(4) == 0 {
			w.Signal(syscall.SIGKILL) // mid-transaction, most likely
			w.Wait(10 * time.Second)
			startWriter()
		}
		rep.Signal(syscall.SIGKILL)
		rep.Wait(10 * time.Second)
		kills++
	}
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	time.Sleep(500 * time.Millisecond)
	w.Signal(syscall.SIGINT)
	w.Wait(time.Minute)
	// Each start removes the temporary files the last kill left; before
	// that, kills during snapshots of the growing database filled the disk.
	waitNoTempFiles(t, replica, rep)
	stopReplicate(t, rep)
	last := lastTx(t, dbPath)
	restoreAndVerify(t, last, replica)
	figure(t, "crash cycles (kill -9 of replicate)", kills)
	figure(t, "transactions lost in crash loop", 0)
}

// lastTx reads the highest committed transaction from the live database.
func lastTx(t *testing.T, dbPath string) int {
	t.Helper()
	m, err := verifyLive(dbPath)
	if err != nil {
		t.Fatalf("live database: %v", err)
	}
	return m
}

// TestObjectStoreFaults replicates and restores through a proxy that
// returns 500 and 503 SlowDown, drops connections, stalls and cuts bodies
// short at random; the restore is still exact.
func TestObjectStoreFaults(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	proxy := s3test.StartFaultProxy(t, srv.Endpoint(), uint64(time.Now().UnixNano()))
	faults := s3test.Faults{Error500: 0.05, SlowDown: 0.05, Drop: 0.03, CutBody: 0.1, Stall: 0.02, StallTime: 500 * time.Millisecond}
	proxy.SetFaults(faults)
	t.Setenv("LITESTREAM_ACCESS_KEY_ID", s3test.AccessKey)
	t.Setenv("LITESTREAM_SECRET_ACCESS_KEY", s3test.SecretKey)
	t.Setenv("AWS_ACCESS_KEY_ID", "")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "")

	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dir, dbPath, fmt.Sprintf(
		"      - url: s3://%s/app\n        endpoint: %s\n        sync-interval: 100ms\n", bucket, proxy.Endpoint()))
	n := 1500
	if tortureCycles() > 20 { // long mode
		n = 20000
	}
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", fmt.Sprint(n), "-rows", "4", "-size", "2500", "-every", "2ms")
	if code := w.Wait(30 * time.Minute); code != 0 {
		t.Fatalf("writer: %s", w.Output())
	}
	time.Sleep(time.Second)
	stopReplicate(t, rep)
	restoreAndVerify(t, n, "-parallelism", "4", fmt.Sprintf("s3://%s/app?endpoint=%s", bucket, proxy.Endpoint()))
	figure(t, "object-store faults injected (replication and restore)", proxy.Injected.Load())
	figure(t, "transactions lost under object-store faults", 0)
}

// TestHostileApp: the database is deleted and recreated under the engine,
// the app runs VACUUM and its own checkpoints, and many writers run at
// once; every restore is exact.
func TestHostileApp(t *testing.T) {
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", replica))
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "300", "-autocheckpoint", "20")
	w.Wait(time.Minute)
	time.Sleep(500 * time.Millisecond)

	// Delete and recreate the database under the engine.
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(dbPath + suffix)
	}
	w = Start(t, bin.Writer, "-db", dbPath, "-n", "120")
	w.Wait(time.Minute)
	WaitFor(t, 20*time.Second, "the replaced database noticed", func() bool {
		return strings.Contains(rep.Output(), "was deleted") || strings.Contains(rep.Output(), "was replaced")
	})
	time.Sleep(1500 * time.Millisecond)
	stopReplicate(t, rep)
	restoreAndVerify(t, 120, replica)

	// VACUUM, then several writer processes at once.
	rep = Start(t, bin.Litestream, "replicate", "-config", cfg)
	if err := runSQL(dbPath, "VACUUM"); err != nil {
		t.Fatal(err)
	}
	var ws []*Proc
	for i := 0; i < 4; i++ {
		ws = append(ws, Start(t, bin.Writer, "-db", dbPath, "-n", "100", "-rows", "3", "-size", "800"))
	}
	for _, p := range ws {
		if code := p.Wait(2 * time.Minute); code != 0 {
			t.Fatalf("concurrent writer exited %d: %s", code, p.Output())
		}
	}
	time.Sleep(time.Second)
	stopReplicate(t, rep)
	out := restoreAndVerifyAtLeast(t, replica)
	if live := lastTx(t, dbPath); live != out {
		t.Fatalf("restored %d transactions, live database has %d", out, live)
	}
}

// TestFullDisk puts the meta directory on a small tmpfs that fills up: the
// application keeps working, the engine logs the problem, and once space
// is freed it recovers without losing anything.
func TestFullDisk(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("skipped: mounting a small tmpfs needs root (CI runs as root)")
	}
	dir := t.TempDir()
	meta := filepath.Join(dir, "meta")
	os.MkdirAll(meta, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", meta).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot mount a tmpfs here (%v: %s)", err, out)
	}
	defer exec.Command("umount", "-l", meta).Run()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	cfg := filepath.Join(dir, "litestream.yml")
	writeFile(t, cfg, fmt.Sprintf("dbs:\n  - path: %s\n    meta-path: %s\n    monitor-interval: 50ms\n    replicas:\n%s", dbPath, meta, fileReplica("file", replica)))
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "400", "-rows", "4", "-size", "3000", "-every", "2ms")
	if code := w.Wait(2 * time.Minute); code != 0 {
		t.Fatalf("the application failed while the engine's disk was full: %s", w.Output())
	}
	WaitFor(t, 30*time.Second, "the engine to log the full disk", func() bool { return strings.Contains(rep.Output(), "no space left") })
	if out, err := exec.Command("mount", "-o", "remount,size=256m", meta).CombinedOutput(); err != nil {
		t.Fatalf("remount: %v: %s", err, out)
	}
	WaitFor(t, 30*time.Second, "recovery", func() bool { return strings.Contains(rep.Output(), "recovered") })
	time.Sleep(2 * time.Second)
	stopReplicate(t, rep)
	restoreAndVerify(t, 400, replica)
	figure(t, "full-disk recoveries", 1)
}

// TestPageSizeChange: while replicate is stopped the application leaves WAL
// mode, changes the page size with VACUUM and comes back; replicate starts a
// new generation and the restore has the new page size and every row.
func TestPageSizeChange(t *testing.T) {
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", replica))
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "200")
	w.Wait(time.Minute)
	time.Sleep(time.Second)
	stopReplicate(t, rep)
	if err := runSQL(dbPath, "PRAGMA journal_mode=delete", "PRAGMA page_size=8192", "VACUUM", "PRAGMA journal_mode=wal"); err != nil {
		t.Fatal(err)
	}
	rep = Start(t, bin.Litestream, "replicate", "-config", cfg)
	w = Start(t, bin.Writer, "-db", dbPath, "-n", "100")
	w.Wait(time.Minute)
	time.Sleep(1500 * time.Millisecond)
	stopReplicate(t, rep)
	out := restoreAndVerify(t, 300, replica)
	if ps, err := pageSize(out); err != nil || ps != 8192 {
		t.Fatalf("restored page size %d (%v), want 8192", ps, err)
	}
}
