package e2e

import (
	"context"
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
// transactions, restarts both, and finally checks that the application's
// database is intact with every committed transaction and that a restore
// is exactly that database. Each restart of the writer changes its kind:
// sqlwriter keeping one connection, sqlwriter with a connection per
// transaction, the sqlite3 shell with a process per transaction.
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
	w := &crashWriter{t: t, db: dbPath, want: zooWant{txsAtLeast: true}}
	w.start()
	kills := 0
	for i := 0; i < cycles; i++ {
		rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
		time.Sleep(time.Duration(50+rng.IntN(600)) * time.Millisecond)
		// At a third and two thirds of the way too, so that even the
		// short loop of make test runs every kind of writer.
		if rng.IntN(4) == 0 || i == cycles/3 || i == 2*cycles/3 {
			w.kill() // mid-transaction, most likely
			w.start()
		}
		rep.Signal(syscall.SIGKILL)
		rep.Wait(10 * time.Second)
		kills++
	}
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	time.Sleep(500 * time.Millisecond)
	w.stop()
	// Each start removes the temporary files the last kill left; before
	// that, kills during snapshots of the growing database filled the disk.
	waitNoTempFiles(t, replica, rep)
	running := requireLiveApps(t, dbPath, w.want, "while replicate runs")
	stopReplicate(t, rep)
	after := requireLiveApps(t, dbPath, w.want, "after replicate stopped")
	out := filepath.Join(t.TempDir(), "restored.db")
	if stdout, stderr, code := Run(context.Background(), bin.Litestream, "restore", "-o", out, replica); code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, stdout, stderr)
	}
	restored, err := readAppState(out)
	if err != nil {
		t.Fatalf("restored database: %v", err)
	}
	if d := restoreDiffers(restored, running, after, true); d != "" {
		t.Fatalf("the restore is not the application's database: %s", d)
	}
	figure(t, "crash cycles (kill -9 of replicate)", kills)
	figure(t, "crash-loop writers (kept connection / connection per transaction / sqlite3 shell)",
		fmt.Sprintf("%d / %d / %d", w.started[0], w.started[1], w.started[2]))
	figure(t, "transactions lost in crash loop", 0)
}

// crashWriter is the crash loop's application: one writer at a time, each
// of the kind after the last one's.
type crashWriter struct {
	t       *testing.T
	db      string
	want    zooWant // what the writers so far committed
	started [3]int  // writers started, by kind
	n       int     // writers started
	proc    *Proc   // the running sqlwriter, or
	shell   *shellWriter
}

func (c *crashWriter) start() {
	kind := c.n % 3
	c.n++
	c.started[kind]++
	if kind == 2 {
		// Transaction numbers of their own: rows ids stay distinct.
		c.shell = startShellWriter(c.t, c.db, c.n*1000000, 0, 4*time.Millisecond, nil)
		return
	}
	// Multi-page transactions, at a pace that keeps the database to about
	// 2 GB after 1000 cycles: at full speed it grew past 20 GB, and with a
	// snapshot every 700 ms the disk filled up.
	args := []string{"-db", c.db, "-n", "0", "-rows", "8", "-size", "3000", "-every", "4ms"}
	if kind == 1 {
		args = append(args, "-conn-per-tx")
	}
	c.proc = Start(c.t, bin.Writer, args...)
}

// kill ends the running writer with SIGKILL.
func (c *crashWriter) kill() {
	c.end(syscall.SIGKILL, (*shellWriter).Kill)
}

// stop ends the running writer as it ends on its own: SIGINT (it closes
// its database), or the shell's current process left to exit.
func (c *crashWriter) stop() {
	c.end(syscall.SIGINT, (*shellWriter).Stop)
}

// end stops the running writer (sig for sqlwriter, shell for the shell)
// and adds what it committed to c.want.
func (c *crashWriter) end(sig syscall.Signal, shell func(*shellWriter)) {
	c.t.Helper()
	if c.proc != nil {
		c.proc.Signal(sig)
		c.proc.Wait(time.Minute)
		c.want.txs = max(c.want.txs, c.proc.LastCommitted())
		c.proc = nil
	}
	if c.shell != nil {
		shell(c.shell)
		if err := c.shell.Wait(); err != nil {
			c.t.Fatalf("the shell application failed: %v", err)
		}
		c.shell.addTo(&c.want)
		c.shell = nil
	}
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
	useS3Credentials(t)

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
	requireLive(t, dbPath, n)
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
	requireLive(t, dbPath, 120)

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
	requireLive(t, dbPath, restoreAndVerifyAtLeast(t, replica))
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
	requireLive(t, dbPath, 400)
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
	requireLive(t, dbPath, 300)
}
