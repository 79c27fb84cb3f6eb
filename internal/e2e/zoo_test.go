package e2e

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The application zoo: the programs people really replicate, each run while
// replicate snapshots, checkpoints and enforces retention every second or
// so. Applications that open and close their database (the sqlite3 shell,
// one process per insert; scripts; restarted services) make SQLite
// checkpoint and delete the WAL and -shm when their last connection closes,
// which the engine must survive without damaging the database. Every case
// ends with zoo.finish: the application's own database passes
// integrity_check and holds every row it committed, while replicate runs
// and after it stops; replicate's last sync succeeds (exit 0 on SIGTERM);
// the restore holds exactly the same rows and passes integrity_check (one
// exception after a SIGKILL: see restoreDiffers).

// zooConfig makes snapshots, checkpoints and retention happen within a
// run of a few seconds; debug logging shows the checkpoints.
const zooConfig = `logging:
  level: debug
dbs:
  - path: %s
    monitor-interval: 100ms
    checkpoint-interval: 1s
    min-checkpoint-page-count: 16
    replicas:
      - path: %s
        sync-interval: 100ms
        snapshot-interval: 1s
        retention: 3s
        retention-check-interval: 500ms
`

// zoo is one case's database, replica and replicate process.
type zoo struct {
	t                     *testing.T
	dir, db, replica, cfg string
	rep                   *Proc
}

func newZoo(t *testing.T) *zoo {
	t.Helper()
	dir := t.TempDir()
	z := &zoo{t: t, dir: dir, db: filepath.Join(dir, "app.db"), replica: filepath.Join(dir, "replica"), cfg: filepath.Join(dir, "litestream.yml")}
	writeFile(t, z.cfg, fmt.Sprintf(zooConfig, z.db, z.replica))
	return z
}

// replicate starts replicate on the case's config.
func (z *zoo) replicate() { z.rep = Start(z.t, bin.Litestream, "replicate", "-config", z.cfg) }

// createShellDB creates the database in WAL mode with the shell's table, as
// an application's setup does before replicate starts.
func (z *zoo) createShellDB() {
	z.t.Helper()
	requireSQLite3(z.t)
	if out, err := sqlite3Shell(z.db, "PRAGMA journal_mode=WAL; "+zooSchema+";"); err != nil {
		z.t.Fatalf("create the database: %v: %s", err, out)
	}
}

// finish makes the checks every zoo case ends with, against w, what the
// applications committed; every application has stopped. The damage an
// application would see is reported first: a failed last sync or an idle
// engine is reported beside it, never instead of it.
func (z *zoo) finish(w zooWant) {
	t := z.t
	t.Helper()
	running := requireLiveApps(t, z.db, w, "while replicate runs")
	z.rep.Signal(syscall.SIGTERM)
	if code := z.rep.Wait(time.Minute); code != 0 {
		t.Errorf("replicate's last sync failed: exit %d after SIGTERM", code)
	}
	after := requireLiveApps(t, z.db, w, "after replicate stopped")
	out := filepath.Join(t.TempDir(), "restored.db")
	stdout, stderr, code := Run(context.Background(), bin.Litestream, "restore", "-o", out, z.replica)
	if code != 0 {
		t.Fatalf("restore: exit %d\n%s%s", code, stdout, stderr)
	}
	restored, err := readAppState(out)
	if err != nil {
		t.Fatalf("restored database: %v", err)
	}
	if d := restoreDiffers(restored, running, after, w.killed()); d != "" {
		t.Fatalf("the restore is not the application's database: %s (the applications reported %d transactions of table t, %d rows of table z)", d, w.txs, len(w.ids))
	}
	// Without snapshots and checkpoints during the run the case shows
	// nothing (the engine logs its checkpoints at debug level).
	log := z.rep.Output()
	if snaps, ckpts := strings.Count(log, "snapshot written"), strings.Count(log, "msg=checkpoint "); snaps < 2 || ckpts < 1 {
		t.Errorf("replicate wrote %d snapshots and ran %d checkpoints during the case, want at least 2 and 1", snaps, ckpts)
	}
}

// requireSQLite3 fails the test if the sqlite3 shell is missing: the zoo
// runs it as an application (make tools installs it).
func requireSQLite3(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatal("no sqlite3 shell on PATH: `make tools` installs it (apt-get install sqlite3)")
	}
}

// sqlite3Shell runs one sqlite3 shell process on db, with a busy timeout,
// stopping at the first error; it returns the shell's output.
func sqlite3Shell(db, sql string) (string, error) {
	out, err := exec.Command("sqlite3", "-bail", "-batch", "-cmd", ".timeout 10000", db, sql).CombinedOutput()
	return string(out), err
}

// zooTxRows returns the ids of the rows transaction n of the shell and
// Python applications inserts, and each row's blob size (up to 4 KB, so
// some rows spill to overflow pages). zooPython computes the same.
func zooTxRows(n int) (ids []int64, sizes []int) {
	for k := 0; k < 1+n%3; k++ {
		ids = append(ids, int64(n)*10+int64(k))
		sizes = append(sizes, 100+((n*3+k)*7919)%4000)
	}
	return ids, sizes
}

// shellTxSQL is transaction n of the shell application: one process,
// one transaction, which also creates the table if the database is new
// (in SQLite's default rollback-journal mode).
func shellTxSQL(n int) string {
	var b strings.Builder
	b.WriteString(zooSchema + ";\nBEGIN IMMEDIATE;\n")
	ids, sizes := zooTxRows(n)
	for i, id := range ids {
		fmt.Fprintf(&b, "INSERT INTO z (id, b) VALUES (%d, randomblob(%d));\n", id, sizes[i])
	}
	b.WriteString("COMMIT;\n")
	return b.String()
}

// shellWriter is an application made of sqlite3 shell processes, one per
// transaction, run one after another by a goroutine. Stop ends it after
// the current process, Kill with SIGKILL of the current process; the
// test's cleanup kills it.
type shellWriter struct {
	db      string
	stop    chan struct{}
	done    chan struct{}
	between func(i int) string // statements run in a process of their own after the i-th transaction ("": none)

	mu        sync.Mutex
	cmd       *exec.Cmd // the running shell
	killed    bool
	stopOnce  sync.Once
	committed []int // transactions whose process exited 0
	maybe     []int // the transaction whose process was killed
	err       error // the first failure
}

// startShellWriter runs transactions first, first+1, ... (n of them, 0:
// until stopped), pausing every between two.
func startShellWriter(t testing.TB, db string, first, n int, every time.Duration, between func(i int) string) *shellWriter {
	requireSQLite3(t)
	s := &shellWriter{db: db, stop: make(chan struct{}), done: make(chan struct{}), between: between}
	go s.run(first, n, every)
	t.Cleanup(s.Kill)
	return s
}

func (s *shellWriter) run(first, n int, every time.Duration) {
	defer close(s.done)
	for i := 0; n == 0 || i < n; i++ {
		tx := first + i
		out, err := s.shell(shellTxSQL(tx))
		s.mu.Lock()
		switch {
		case err == nil:
			s.committed = append(s.committed, tx)
		case s.killed:
			s.maybe = append(s.maybe, tx)
		default:
			s.err = fmt.Errorf("sqlite3 transaction %d: %v: %s", tx, err, out)
		}
		s.mu.Unlock()
		if err != nil {
			return
		}
		if sql := s.betweenSQL(i); sql != "" {
			if out, err := s.shell(sql); err != nil {
				s.mu.Lock()
				if !s.killed {
					s.err = fmt.Errorf("sqlite3 %q: %v: %s", sql, err, out)
				}
				s.mu.Unlock()
				return
			}
		}
		select {
		case <-s.stop:
			return
		case <-time.After(every):
		}
	}
}

// betweenSQL returns the statements to run after the i-th transaction.
func (s *shellWriter) betweenSQL(i int) string {
	if s.between == nil {
		return ""
	}
	return s.between(i)
}

// shell runs one sqlite3 process, unless the writer was killed.
func (s *shellWriter) shell(sql string) (string, error) {
	var out strings.Builder
	cmd := exec.Command("sqlite3", "-bail", "-batch", "-cmd", ".timeout 10000", s.db, sql)
	cmd.Stdout, cmd.Stderr = &out, &out
	s.mu.Lock()
	if s.killed {
		s.mu.Unlock()
		return "", fmt.Errorf("killed")
	}
	err := cmd.Start()
	if err == nil {
		s.cmd = cmd
	}
	s.mu.Unlock()
	if err != nil {
		return "", err
	}
	err = cmd.Wait()
	s.mu.Lock()
	s.cmd = nil
	s.mu.Unlock()
	return out.String(), err
}

// Stop ends the writer once its current process exits, and waits for it.
func (s *shellWriter) Stop() {
	s.stopOnce.Do(func() { close(s.stop) })
	<-s.done
}

// Kill sends SIGKILL to the current process, most likely in the middle of
// its transaction, and waits for the writer to end.
func (s *shellWriter) Kill() {
	s.mu.Lock()
	s.killed = true
	if s.cmd != nil {
		s.cmd.Process.Kill()
	}
	s.mu.Unlock()
	s.Stop()
}

// Wait waits for the writer to end and returns its first failure.
func (s *shellWriter) Wait() error {
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// addTo adds the rows of the writer's transactions to w: committed ones,
// and the killed one as maybe.
func (s *shellWriter) addTo(w *zooWant) {
	s.mu.Lock()
	defer s.mu.Unlock()
	addZooTxs(w, s.committed, false)
	addZooTxs(w, s.maybe, true)
}

// addZooTxs adds the rows of transactions txs to w.
func addZooTxs(w *zooWant, txs []int, maybe bool) {
	if w.ids == nil {
		w.ids, w.maybe = map[int64]bool{}, map[int64]bool{}
	}
	for _, tx := range txs {
		ids, _ := zooTxRows(tx)
		for _, id := range ids {
			if maybe {
				w.maybe[id] = true
			} else {
				w.ids[id] = true
			}
		}
	}
}

// requireShellWriters waits for the shell writers and fails the test if
// one failed, then returns what they committed.
func requireShellWriters(t *testing.T, ws ...*shellWriter) zooWant {
	t.Helper()
	var w zooWant
	for _, s := range ws {
		if err := s.Wait(); err != nil {
			t.Fatalf("the application failed: %v", err)
		}
		s.addTo(&w)
	}
	return w
}

// TestZooShell: the sqlite3 shell, one process per insert.
func TestZooShell(t *testing.T) {
	z := newZoo(t)
	z.createShellDB()
	z.replicate()
	s := startShellWriter(t, z.db, 1, 100, 25*time.Millisecond, nil)
	z.finish(requireShellWriters(t, s))
}

// TestZooShellsAtOnce: four shell loops insert at once, each process
// waiting for the others' locks with its busy timeout.
func TestZooShellsAtOnce(t *testing.T) {
	z := newZoo(t)
	z.createShellDB()
	z.replicate()
	var ws []*shellWriter
	for k := 0; k < 4; k++ {
		ws = append(ws, startShellWriter(t, z.db, 1+k*100000, 35, 50*time.Millisecond, nil))
	}
	z.finish(requireShellWriters(t, ws...))
}

// TestZooShellCreatesJournalDB: replicate starts first and waits for the
// database, which the shell then creates in rollback-journal mode and
// writes to; replicate switches it to WAL while the shell goes on.
func TestZooShellCreatesJournalDB(t *testing.T) {
	z := newZoo(t)
	z.replicate()
	WaitFor(t, 10*time.Second, "replicate waiting for the database", func() bool { return strings.Contains(z.rep.Output(), "does not exist yet") })
	s := startShellWriter(t, z.db, 1, 100, 25*time.Millisecond, nil)
	w := requireShellWriters(t, s)
	if !strings.Contains(z.rep.Output(), "switched it to WAL") {
		t.Fatal("replicate did not log switching the rollback-journal database to WAL")
	}
	if out, err := sqlite3Shell(z.db, "PRAGMA journal_mode;"); err != nil || strings.TrimSpace(out) != "wal" {
		t.Fatalf("journal mode after the run: %q (%v), want wal", out, err)
	}
	z.finish(w)
}

// zooPython is the Python application: sqlite3.connect, one transaction,
// close, for each transaction; it prints "committed N" after each close.
// Its rows are zooTxRows'.
const zooPython = `import sqlite3, sys, time
path, first, n, pause = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
for tx in range(first, first + n):
    con = sqlite3.connect(path, timeout=10, isolation_level=None)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("` + zooSchema + `")
    con.execute("BEGIN IMMEDIATE")
    for k in range(1 + tx % 3):
        con.execute("INSERT INTO z (id, b) VALUES (?, randomblob(?))", (tx * 10 + k, 100 + ((tx * 3 + k) * 7919) % 4000))
    con.execute("COMMIT")
    con.close()
    print("committed", tx, flush=True)
    time.sleep(pause)
`

// TestZooPython: Python's sqlite3 module, a connection per transaction;
// the script creates the database after replicate started.
func TestZooPython(t *testing.T) {
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Fatal("no python3 on PATH")
	}
	z := newZoo(t)
	script := filepath.Join(z.dir, "app.py")
	writeFile(t, script, zooPython)
	z.replicate()
	const n = 150
	p := Start(t, python, script, z.db, "1", fmt.Sprint(n), "0.015")
	if code := p.Wait(2 * time.Minute); code != 0 {
		t.Fatalf("the Python application exited %d:\n%s", code, p.Output())
	}
	if p.LastCommitted() != n {
		t.Fatalf("the Python application reported %d transactions, want %d", p.LastCommitted(), n)
	}
	var w zooWant
	txs := make([]int, n)
	for i := range txs {
		txs[i] = i + 1
	}
	addZooTxs(&w, txs, false)
	z.finish(w)
}

// TestZooConnPerTx: a Go program (sqlwriter -conn-per-tx) that opens and
// closes its connection for every transaction, stopped with SIGTERM.
func TestZooConnPerTx(t *testing.T) {
	z := newZoo(t)
	z.replicate()
	w := Start(t, bin.Writer, "-db", z.db, "-conn-per-tx", "-n", "0", "-rows", "4", "-size", "3000", "-every", "5ms")
	time.Sleep(3 * time.Second)
	w.Signal(syscall.SIGTERM)
	if code := w.Wait(time.Minute); code != 0 {
		t.Fatalf("the writer exited %d after SIGTERM: %s", code, w.Output())
	}
	z.finish(zooWant{txs: w.LastCommitted()})
}

// TestZooRestartedApp: the application is restarted about every second,
// stopped with SIGTERM (it closes its database) or killed with SIGKILL (in
// the middle of a transaction, most likely), alternately keeping one
// connection and opening one per transaction. Its database is checked
// after every stop, while replicate runs.
func TestZooRestartedApp(t *testing.T) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		t.Run(map[syscall.Signal]string{syscall.SIGTERM: "kill -TERM", syscall.SIGKILL: "kill -9"}[sig], func(t *testing.T) {
			z := newZoo(t)
			z.replicate()
			want := zooWant{txsAtLeast: sig == syscall.SIGKILL}
			for i := 0; i < 5; i++ {
				args := []string{"-db", z.db, "-n", "0", "-rows", "4", "-size", "3000", "-every", "3ms"}
				if i%2 == 1 {
					args = append(args, "-conn-per-tx")
				}
				w := Start(t, bin.Writer, args...)
				time.Sleep(time.Duration(700+100*i) * time.Millisecond)
				w.Signal(sig)
				code := w.Wait(time.Minute)
				if sig == syscall.SIGTERM && code != 0 {
					t.Fatalf("the writer exited %d after SIGTERM: %s", code, w.Output())
				}
				want.txs = max(want.txs, w.LastCommitted())
				requireLiveApps(t, z.db, want, fmt.Sprintf("after stop %d", i+1))
			}
			z.finish(want)
		})
	}
}

// TestZooCheckpointsAndVacuum: applications that run PRAGMA
// wal_checkpoint(TRUNCATE) and VACUUM between their connections: the
// shell, in processes of their own between its inserts, and sqlwriter
// -conn-per-tx, each on its own table of one database, at once. While
// replicate runs, an application's TRUNCATE waits for the engine's read
// transaction until its busy timeout and returns busy, holding the write
// lock meanwhile: the checkpointing connections' timeouts are short so
// that the others' waits stay within theirs.
func TestZooCheckpointsAndVacuum(t *testing.T) {
	z := newZoo(t)
	z.createShellDB()
	z.replicate()
	s := startShellWriter(t, z.db, 1, 60, 30*time.Millisecond, func(i int) string {
		switch i % 10 {
		case 4:
			return "PRAGMA busy_timeout=200; PRAGMA wal_checkpoint(TRUNCATE);"
		case 9:
			return "VACUUM;"
		}
		return ""
	})
	w := Start(t, bin.Writer, "-db", z.db, "-conn-per-tx", "-busy-timeout", "1s", "-n", "150", "-rows", "3", "-size", "3000", "-every", "10ms", "-truncate-every", "50", "-vacuum-every", "23")
	if code := w.Wait(2 * time.Minute); code != 0 {
		t.Fatalf("the writer exited %d: %s", code, w.Output())
	}
	want := requireShellWriters(t, s)
	want.txs = w.LastCommitted()
	z.finish(want)
}
