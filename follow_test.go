package litestream_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// The follower's tests: readers in separate processes (internal/cmd/
// followreader) check every state they read against the writer's record
// while the follower applies, is killed with SIGKILL and resumes, and
// follows the primary into a new generation.

var (
	followReaderOnce sync.Once
	followReaderBin  string
	followReaderErr  error
)

// buildFollowReader builds internal/cmd/followreader once per test binary.
func buildFollowReader(t *testing.T) string {
	t.Helper()
	followReaderOnce.Do(func() {
		dir, err := os.MkdirTemp("", "followreader-")
		if err != nil {
			followReaderErr = err
			return
		}
		followReaderBin = filepath.Join(dir, "followreader")
		cmd := exec.Command("go", "build", "-o", followReaderBin, "./internal/cmd/followreader")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			followReaderErr = fmt.Errorf("build followreader: %v\n%s", err, out)
		}
	})
	if followReaderErr != nil {
		t.Fatal(followReaderErr)
	}
	return followReaderBin
}

// followProc is a process of the test: a reader, or the follower itself.
type followProc struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
	err  error
}

func startFollowProc(t *testing.T, env []string, name string, args ...string) *followProc {
	t.Helper()
	p := &followProc{cmd: exec.Command(name, args...), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = pw, pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	go func() {
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			p.mu.Lock()
			p.out.WriteString(sc.Text() + "\n")
			p.mu.Unlock()
		}
		p.err = p.cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

func (p *followProc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.out.String()
}

// stop sends SIGTERM and waits for the exit; it fails the test on a
// non-zero exit, with the output.
func (p *followProc) stop(t *testing.T) string {
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(time.Minute):
		t.Fatalf("process did not stop; output:\n%s", p.output())
	}
	if p.err != nil {
		t.Fatalf("%s: %v; output:\n%s", filepath.Base(p.cmd.Path), p.err, p.output())
	}
	return p.output()
}

func (p *followProc) kill() {
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// readerMax returns the last transaction a reader's "seen N" lines report.
func readerMax(out string) int {
	m := 0
	for _, l := range strings.Split(out, "\n") {
		var n int
		if _, err := fmt.Sscanf(l, "seen %d", &n); err == nil {
			m = n
		}
	}
	return m
}

// startReaders starts n reader processes on path; half of them hold read
// transactions across the follower's commits.
func startReaders(t *testing.T, path string, n int) []*followProc {
	bin := buildFollowReader(t)
	var rs []*followProc
	for i := 0; i < n; i++ {
		args := []string{"-db", path}
		if i%2 == 1 {
			args = append(args, "-hold", "30ms")
		}
		rs = append(rs, startFollowProc(t, nil, bin, args...))
	}
	return rs
}

// stopReaders stops the readers and fails the test if any saw a state that
// was not a committed one; it returns the highest transaction seen.
func stopReaders(t *testing.T, rs []*followProc) int {
	t.Helper()
	m := 0
	for _, r := range rs {
		out := r.stop(t)
		if strings.Contains(out, "FAIL") || !strings.Contains(out, "done reads=") {
			t.Fatalf("reader:\n%s", out)
		}
		m = max(m, readerMax(out))
	}
	return m
}

// followPrimary is a primary: the writer and the engine replicating it to
// a file replica.
type followPrimary struct {
	w          *sqlwriter.Writer
	db         *litestream.DB
	path, repl string
}

func newFollowPrimary(t *testing.T) *followPrimary {
	t.Helper()
	dir := t.TempDir()
	p := &followPrimary{path: filepath.Join(dir, "app.db"), repl: filepath.Join(dir, "replica")}
	w, err := sqlwriter.Open(context.Background(), p.path, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	p.w = w
	p.commit(t, 5)
	// A first snapshot of an empty database file (all in the WAL) does
	// not restore today (reported to the restore's owner): start from a
	// checkpointed one.
	if _, err := w.DB().Exec("PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		t.Fatal(err)
	}
	p.startEngine(t)
	return p
}

func (p *followPrimary) startEngine(t *testing.T) {
	t.Helper()
	db := litestream.NewDB(p.path)
	db.Logger = testLogger(t)
	db.MonitorInterval = 20 * time.Millisecond
	db.MinCheckpointPageN = 40 // roll the shadow WAL over often
	r := litestream.NewReplica("file", file.NewReplicaClient(p.repl))
	r.SyncInterval = 20 * time.Millisecond
	db.AddReplica(r)
	if err := db.Open(); err != nil {
		t.Fatal(err)
	}
	p.db = db
	t.Cleanup(func() { db.Close(context.Background()) })
}

func (p *followPrimary) stopEngine(t *testing.T) {
	t.Helper()
	if err := p.db.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// commit commits n transactions of varied sizes, some with pages of
// overflow.
func (p *followPrimary) commit(t *testing.T, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		tx := p.w.LastTx() + 1
		rows, size := 1+tx%4, 50+(tx*7919)%3000
		if tx%97 == 0 {
			rows, size = 3, 20000
		}
		if _, err := p.w.Commit(context.Background(), rows, size); err != nil {
			t.Fatal(err)
		}
	}
}

// writeFor commits in the background until stop is called, and returns
// stop, which returns the last transaction committed.
func (p *followPrimary) writeFor(t *testing.T, every time.Duration) (stop func() int) {
	t.Helper()
	done, finished := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(finished)
		for {
			select {
			case <-done:
				return
			case <-time.After(every):
			}
			tx := p.w.LastTx() + 1
			if _, err := p.w.Commit(context.Background(), 1+tx%4, 50+(tx*7919)%3000); err != nil {
				t.Error(err)
				return
			}
			if tx%150 == 0 { // the follower must take its size going down
				for _, stmt := range []string{"CREATE TABLE IF NOT EXISTS pad (b BLOB)", "INSERT INTO pad VALUES (randomblob(400000))",
					"DELETE FROM pad", "VACUUM"} {
					if _, err := p.w.DB().Exec(stmt); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}
	}()
	return func() int { close(done); <-finished; return p.w.LastTx() }
}

// waitFollowerAt waits until the follower at path holds transaction want
// (verified) and returns its verified count.
func waitFollowerAt(t *testing.T, path string, want int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	var m int
	var err error
	for time.Now().Before(deadline) {
		if m, err = sqlwriter.Verify(context.Background(), path); err == nil && m >= want {
			if m != want {
				t.Fatalf("follower holds transaction %d, the primary committed only %d", m, want)
			}
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("follower did not reach transaction %d in %s: at %d (%v)", want, d, m, err)
}

// followOpts are fast options for tests.
func followOpts(t *testing.T) litestream.FollowOptions {
	return litestream.FollowOptions{Interval: 20 * time.Millisecond, GenerationCheckInterval: 200 * time.Millisecond, Logger: testLogger(t)}
}

// runFollower runs a follower in this process until the test ends or the
// returned stop is called.
func runFollower(t *testing.T, repl, out string, opt litestream.FollowOptions) (*litestream.Follower, func() error) {
	t.Helper()
	r := litestream.NewReplica("file", file.NewReplicaClient(repl))
	f := litestream.NewFollower([]*litestream.Replica{r}, out, opt)
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		err := f.Run(ctx)
		if ctx.Err() == nil {
			t.Errorf("the follower stopped: %v", err)
		}
		errc <- err
	}()
	var once sync.Once
	var err error
	stop := func() error {
		once.Do(func() { cancel(); err = <-errc })
		return err
	}
	t.Cleanup(func() { stop() })
	return f, stop
}

// TestFollow_Readers: the follower applies a busy primary's segments,
// across shadow WAL rollovers and shrinking, while reader processes check
// every state they see; it ends at exactly what the primary committed.
func TestFollow_Readers(t *testing.T) {
	p := newFollowPrimary(t)
	out := filepath.Join(t.TempDir(), "follower.db")
	followWait(t, 10*time.Second, func() bool { return hasSnapshot(p.repl) })
	f, stopF := runFollower(t, p.repl, out, followOpts(t))
	readers := startReaders(t, out, 4)
	stopW := p.writeFor(t, 2*time.Millisecond)
	time.Sleep(4 * time.Second)
	last := stopW()
	waitFollowerAt(t, out, last, 30*time.Second)
	seen := stopReaders(t, readers)
	if err := stopF(); err != nil {
		t.Fatal(err)
	}
	st := f.Status()
	t.Logf("follower: %d steps, position %s; readers saw up to transaction %d of %d", st.Steps, st.Pos, seen, last)
	if st.Steps < 10 || seen < last/2 {
		t.Fatalf("too little was followed: %d steps, readers saw %d of %d", st.Steps, seen, last)
	}
	if st.Resyncs != 0 {
		t.Fatalf("%d resyncs without a reason", st.Resyncs)
	}
	requireSameContent(t, p.path, out)
}

// requireSameContent fails unless the two databases hold the same rows.
func requireSameContent(t *testing.T, a, b string) {
	t.Helper()
	sum := func(path string) string {
		db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		var n int
		var s sql.NullString
		if err := db.QueryRow("SELECT COUNT(*), group_concat(seq || ':' || sum, ',') FROM (SELECT seq, sum FROM t ORDER BY seq)").Scan(&n, &s); err != nil {
			t.Fatal(err)
		}
		return fmt.Sprintf("%d %s", n, s.String)
	}
	if sa, sb := sum(a), sum(b); sa != sb {
		t.Fatalf("%s and %s differ: %.80s vs %.80s", a, b, sa, sb)
	}
}

func hasSnapshot(repl string) bool {
	m, _ := filepath.Glob(filepath.Join(repl, "generations", "*", "snapshots", "*.snapshot.lz4"))
	return len(m) > 0
}

func followWait(t *testing.T, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s", d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestFollow_HelperProcess is the follower run as a separate process by
// TestFollow_KillResume; it does nothing in a normal test run.
func TestFollow_HelperProcess(t *testing.T) {
	repl, out := os.Getenv("FOLLOW_HELPER_REPLICA"), os.Getenv("FOLLOW_HELPER_OUTPUT")
	if repl == "" {
		t.Skip("run by TestFollow_KillResume")
	}
	ctx, stop := signalContext()
	defer stop()
	r := litestream.NewReplica("file", file.NewReplicaClient(repl))
	opt := followOpts(t)
	opt.Logger = nil
	if err := litestream.NewFollower([]*litestream.Replica{r}, out, opt).Run(ctx); err != nil {
		fmt.Println("follower:", err)
		os.Exit(1)
	}
}

func signalContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	c := make(chan os.Signal, 1)
	signalNotify(c)
	go func() {
		select {
		case <-c:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}

// TestFollow_KillResume kills the follower process with SIGKILL at random
// moments while it applies and restarts it on the same output: it resumes
// from its sidecar (no full restore), readers never see a state that was
// not committed, and it ends at exactly what the primary committed.
func TestFollow_KillResume(t *testing.T) {
	p := newFollowPrimary(t)
	out := filepath.Join(t.TempDir(), "follower.db")
	followWait(t, 10*time.Second, func() bool { return hasSnapshot(p.repl) })
	env := []string{"FOLLOW_HELPER_REPLICA=" + p.repl, "FOLLOW_HELPER_OUTPUT=" + out}
	start := func() *followProc {
		return startFollowProc(t, env, os.Args[0], "-test.run=^TestFollow_HelperProcess$", "-test.v")
	}
	stopW := p.writeFor(t, 2*time.Millisecond)
	fp := start()
	followWait(t, 30*time.Second, func() bool { _, err := os.Stat(out); return err == nil })
	readers := startReaders(t, out, 3)
	rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 7))
	kills := 8
	if testing.Short() {
		kills = 3
	}
	for i := 0; i < kills; i++ {
		time.Sleep(time.Duration(100+rng.IntN(400)) * time.Millisecond)
		fp.kill()
		if fp.err == nil || !strings.Contains(fp.err.Error(), "killed") {
			t.Fatalf("follower was not killed (%v):\n%s", fp.err, fp.output())
		}
		if strings.Contains(fp.output(), "resyncing") {
			t.Fatalf("the follower resynced:\n%s", fp.output())
		}
		fp = start()
	}
	last := stopW()
	waitFollowerAt(t, out, last, 60*time.Second)
	seen := stopReaders(t, readers)
	o := fp.stop(t)
	if strings.Contains(o, "resyncing") {
		t.Fatalf("the follower resynced:\n%s", o)
	}
	t.Logf("%d kills; readers saw up to transaction %d of %d", kills, seen, last)
	requireSameContent(t, p.path, out)
}

// TestFollow_ReapplyAfterCrash: the crash between a step's commit and its
// sidecar, made exact: the sidecar is put back to an earlier position and
// the follower restarted; it applies the same segments again on top of the
// later state and ends where the primary is.
func TestFollow_ReapplyAfterCrash(t *testing.T) {
	p := newFollowPrimary(t)
	out := filepath.Join(t.TempDir(), "follower.db")
	followWait(t, 10*time.Second, func() bool { return hasSnapshot(p.repl) })
	sidecar := litestream.FollowSidecarPath(out)
	var saved []byte
	var savedPos litestream.Pos
	opt := followOpts(t)
	opt.OnStep = func(st litestream.FollowStatus) {
		if saved == nil && st.Steps == 3 {
			saved, _ = os.ReadFile(sidecar)
			savedPos = st.Pos
		}
	}
	_, stopF := runFollower(t, p.repl, out, opt)
	for i := 0; i < 10; i++ {
		p.commit(t, 30)
		waitFollowerAt(t, out, p.w.LastTx(), 30*time.Second)
	}
	if err := stopF(); err != nil {
		t.Fatal(err)
	}
	if saved == nil {
		t.Fatal("the follower took fewer than 3 steps")
	}
	if err := os.WriteFile(sidecar, saved, 0o600); err != nil {
		t.Fatal(err)
	}
	p.commit(t, 50)
	opt.OnStep = nil
	f, stopF := runFollower(t, p.repl, out, opt)
	waitFollowerAt(t, out, p.w.LastTx(), 30*time.Second)
	if err := stopF(); err != nil {
		t.Fatal(err)
	}
	if st := f.Status(); st.Resyncs != 0 || st.Steps == 0 {
		t.Fatalf("after going back to %s: %d steps, %d resyncs", savedPos, st.Steps, st.Resyncs)
	}
	requireSameContent(t, p.path, out)
}

// TestFollow_NewGeneration: the primary loses continuity (its meta
// directory is removed while the engine is stopped) and starts a new
// generation; the follower says so, restores it to a temporary file and
// copies it in one transaction while readers check every state.
func TestFollow_NewGeneration(t *testing.T) {
	p := newFollowPrimary(t)
	out := filepath.Join(t.TempDir(), "follower.db")
	followWait(t, 10*time.Second, func() bool { return hasSnapshot(p.repl) })
	var logs syncBuffer
	opt := followOpts(t)
	opt.Logger = slogTo(&logs)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("follower log:\n%s", logs.String())
		}
	})
	f, stopF := runFollower(t, p.repl, out, opt)
	readers := startReaders(t, out, 2)
	p.commit(t, 200)
	waitFollowerAt(t, out, p.w.LastTx(), 30*time.Second)
	gen1 := f.Status().Pos.Generation

	p.stopEngine(t)
	if err := os.RemoveAll(filepath.Join(filepath.Dir(p.path), ".app.db-litestream")); err != nil {
		t.Fatal(err)
	}
	p.commit(t, 100)
	p.startEngine(t)
	p.commit(t, 100)
	waitFollowerAt(t, out, p.w.LastTx(), 30*time.Second)
	stopReaders(t, readers)
	if err := stopF(); err != nil {
		t.Fatal(err)
	}
	st := f.Status()
	if st.Pos.Generation == gen1 || st.Resyncs != 1 {
		t.Fatalf("generation %s -> %s, %d resyncs", gen1, st.Pos.Generation, st.Resyncs)
	}
	if !strings.Contains(logs.String(), "the primary started a new generation") {
		t.Fatalf("the log does not say so:\n%s", logs.String())
	}
	requireSameContent(t, p.path, out)
}

// TestFollow_ForeignWrite: another process writes to the follower
// database; the follower sees it in its next transaction and resyncs, so
// that readers see the primary's state again.
func TestFollow_ForeignWrite(t *testing.T) {
	p := newFollowPrimary(t)
	out := filepath.Join(t.TempDir(), "follower.db")
	followWait(t, 10*time.Second, func() bool { return hasSnapshot(p.repl) })
	f, stopF := runFollower(t, p.repl, out, followOpts(t))
	p.commit(t, 20)
	waitFollowerAt(t, out, p.w.LastTx(), 30*time.Second)
	other, err := sql.Open("sqlite", "file:"+out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Exec("INSERT INTO t (tx, nrows, payload, sum) VALUES (999999, 1, x'00', 'bad')"); err != nil {
		t.Fatal(err)
	}
	other.Close()
	p.commit(t, 20)
	waitFollowerAt(t, out, p.w.LastTx(), 30*time.Second)
	if err := stopF(); err != nil {
		t.Fatal(err)
	}
	if st := f.Status(); st.Resyncs != 1 {
		t.Fatalf("%d resyncs after a foreign write, want 1", st.Resyncs)
	}
	requireSameContent(t, p.path, out)
}

// TestFollow_ReplicaDisappears: the replica's directory goes away while
// the follower runs; it keeps serving the last state, says so in its
// status and log, and follows again once the replica is back.
func TestFollow_ReplicaDisappears(t *testing.T) {
	p := newFollowPrimary(t)
	out := filepath.Join(t.TempDir(), "follower.db")
	followWait(t, 10*time.Second, func() bool { return hasSnapshot(p.repl) })
	var logs syncBuffer
	opt := followOpts(t)
	opt.Logger = slogTo(&logs)
	f, stopF := runFollower(t, p.repl, out, opt)
	p.commit(t, 20)
	waitFollowerAt(t, out, p.w.LastTx(), 30*time.Second)
	p.stopEngine(t)
	served := p.w.LastTx()
	moved := p.repl + ".away"
	if err := os.Rename(p.repl, moved); err != nil {
		t.Fatal(err)
	}
	followWait(t, 10*time.Second, func() bool { return f.Status().LastErr != nil })
	time.Sleep(300 * time.Millisecond)
	if st := f.Status(); st.LastErr == nil || st.FailingSince.IsZero() {
		t.Fatalf("status does not say the replica is gone: %+v", st)
	}
	if m, err := sqlwriter.Verify(context.Background(), out); err != nil || m != served {
		t.Fatalf("the follower does not serve its last state: %d, %v", m, err)
	}
	if !strings.Contains(logs.String(), "serving the last state") {
		t.Fatalf("the log does not say so:\n%s", logs.String())
	}
	t.Logf("status while gone: %v", f.Status().LastErr)
	if err := os.Rename(moved, p.repl); err != nil {
		t.Fatal(err)
	}
	p.startEngine(t)
	p.commit(t, 20)
	waitFollowerAt(t, out, p.w.LastTx(), 30*time.Second)
	followWait(t, 10*time.Second, func() bool { return f.Status().LastErr == nil })
	if err := stopF(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "following the replica again") {
		t.Fatalf("the log does not say it recovered:\n%s", logs.String())
	}
}

// TestFollow_RefusesForeignOutput: an output that exists without the
// follower's sidecar is refused, and the error names the sidecar.
func TestFollow_RefusesForeignOutput(t *testing.T) {
	dir := t.TempDir()
	out := filepath.Join(dir, "app.db")
	if err := os.WriteFile(out, []byte("not mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := litestream.CheckFollowOutput(out)
	if !errors.Is(err, litestream.ErrNotFollower) || !strings.Contains(err.Error(), filepath.Join(dir, ".app.db-follow")) {
		t.Fatalf("got %v", err)
	}
	r := litestream.NewReplica("file", file.NewReplicaClient(filepath.Join(dir, "replica")))
	err = litestream.NewFollower([]*litestream.Replica{r}, out, followOpts(t)).Run(context.Background())
	if !errors.Is(err, litestream.ErrNotFollower) {
		t.Fatalf("Run: %v", err)
	}
	if b, _ := os.ReadFile(out); string(b) != "not mine" {
		t.Fatal("the output was changed")
	}
}
