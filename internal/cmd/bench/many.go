package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/s3test"
)

// manyWriters is how many databases are being written at any moment.
const manyWriters = 10

// manyPassEvery is how often each database gets its small write.
const manyPassEvery = 5 * time.Second

// many runs one `litestream replicate` with many databases (1,000; 50 with
// -quick), once against the S3 server and once against file replicas, and
// measures what each database costs: memory and descriptors beyond the
// same binary with one database, idle CPU and store requests, startup,
// shutdown and a /metrics scrape.
func (b *bench) many(ctx context.Context) error {
	// The idle window spans two of the engine's idle backstops (a sync of
	// each database and replica a minute), so that their cost is counted.
	n, load, idle := 1000, 60*time.Second, 2*time.Minute
	if b.quick {
		n, load, idle = 50, 15*time.Second, 30*time.Second
	}
	for _, kind := range []string{"file", "s3"} {
		if err := b.manyRun(ctx, kind, n, load, idle); err != nil {
			return fmt.Errorf("%s replicas: %w", kind, err)
		}
	}
	return nil
}

// manyFleet is one run's databases and daemon.
type manyFleet struct {
	b      *bench
	kind   string
	dir    string
	dbs    []string
	writes []int // rows written to each database by the load, beyond its first
	busy   int   // application writes that failed with SQLITE_BUSY (busy_timeout 5 s)
}

func (b *bench) manyRun(ctx context.Context, kind string, n int, load, idle time.Duration) error {
	dir, err := os.MkdirTemp(b.dir, "many-"+kind+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	f := &manyFleet{b: b, kind: kind, dir: dir, writes: make([]int, n)}
	for i := 0; i < n; i++ {
		p := filepath.Join(dir, "db", fmt.Sprintf("tenant-%04d.db", i))
		f.dbs = append(f.dbs, p)
	}
	if err := os.MkdirAll(filepath.Join(dir, "db"), 0o755); err != nil {
		return err
	}
	for _, p := range f.dbs {
		if err := createTenantDB(ctx, p); err != nil {
			return err
		}
	}
	sec := "many (" + kind + ")"
	label := func(s string) string { return fmt.Sprintf("%s, %d databases", s, n) }

	// The base: the same binary and config shape with one database, idle.
	base, err := f.start(ctx, "base", f.dbs[:1])
	if err != nil {
		return err
	}
	if _, err := base.waitReplicating(ctx, f.dbs[:1], time.Minute); err != nil {
		base.kill()
		return fmt.Errorf("base: %w", err)
	}
	time.Sleep(5 * time.Second)
	baseRSS, baseFDs := procRSS(base.pid()), procFDs(base.pid())
	if _, err := base.terminate(time.Minute); err != nil {
		return fmt.Errorf("base: %w", err)
	}
	fmt.Fprintf(os.Stderr, "   base (1 database): RSS %.1f MiB, %d descriptors\n", float64(baseRSS)/(1<<20), baseFDs)

	d, err := f.start(ctx, "all", f.dbs)
	if err != nil {
		return err
	}
	defer d.kill()
	profDir := os.Getenv("BENCH_MANY_PROFILE")
	var profDone chan struct{}
	if profDir != "" {
		profDone = make(chan struct{})
		go func() {
			defer close(profDone)
			d.saveCPUProfile(filepath.Join(profDir, kind), "startup-cpu.pb.gz", 20)
		}()
	}
	startup, err := d.waitReplicating(ctx, f.dbs, 5*time.Minute)
	if profDone != nil {
		<-profDone
	}
	if err != nil {
		return fmt.Errorf("%w; the daemon's log ends: %s", err, f.logTail("all"))
	}
	b.add(Figure{Section: sec, Name: label("startup, exec to every database replicating"), Value: startup.Seconds(), Unit: "s", Target: "≤ 10 s", Met: met(startup <= 10*time.Second)})

	writes, pass, err := f.writeLoad(ctx, load)
	if err != nil {
		return fmt.Errorf("%w; the daemon's log ends: %s", err, f.logTail("all"))
	}
	loadRSS := procRSS(d.pid())
	b.add(Figure{Section: sec, Name: "load: application writes that failed with SQLITE_BUSY after its 5 s busy_timeout", Value: float64(f.busy), Unit: "tx", Target: "0", Met: met(f.busy == 0)})
	b.add(Figure{Section: sec, Name: fmt.Sprintf("load: writes per second (%d writing at once, one pass over every database every %s)", manyWriters, manyPassEvery), Value: float64(writes) / load.Seconds(), Unit: "tx/s"})
	b.add(Figure{Section: sec, Name: "load: slowest pass over every database", Value: pass.Seconds(), Unit: "s"})
	b.add(Figure{Section: sec, Name: label("RSS under load"), Value: float64(loadRSS) / (1 << 20), Unit: "MiB"})
	if _, err := d.waitReplicating(ctx, f.dbs, 5*time.Minute); err != nil {
		return fmt.Errorf("after the load: %w", err)
	}

	if body, err := d.get("/metrics"); err == nil {
		lock := metricMax(string(body), "litestream_checkpoint_lock_max_seconds")
		b.add(Figure{Section: sec, Name: "longest hold of a database's write lock by a checkpoint (max over databases)", Value: lock * 1000, Unit: "ms"})
	}

	// Idle: nothing writes; the daemon should cost nothing per database.
	// First the checkpoint interval's checkpoint of each database the load
	// wrote (and the upload of the WAL restart it makes) has to pass: that
	// is the load's cost, once, not the idle one.
	settle := 5 * time.Second
	if !b.quick {
		settle = litestream.DefaultCheckpointInterval + 15*time.Second
	}
	time.Sleep(settle)
	ops0, err := d.storeOps()
	if err != nil {
		return err
	}
	cpu0, t0 := procCPU(d.pid()), time.Now()
	time.Sleep(idle)
	cpu1, t1 := procCPU(d.pid()), time.Now()
	ops1, err := d.storeOps()
	if err != nil {
		return err
	}
	cpuFrac := (cpu1 - cpu0).Seconds() / t1.Sub(t0).Seconds()
	reqPerMin := (ops1 - ops0) / t1.Sub(t0).Minutes()
	rss, fds := procRSS(d.pid()), procFDs(d.pid())
	perDB := float64(rss-baseRSS) / float64(n-1) / (1 << 20)
	fdPerDB := float64(fds-baseFDs) / float64(n-1)
	b.add(Figure{Section: sec, Name: fmt.Sprintf("idle CPU (%s measured)", idle), Value: cpuFrac * 100, Unit: "% of a core", Target: "< 1%", Met: met(cpuFrac < 0.01)})
	b.add(Figure{Section: sec, Name: fmt.Sprintf("store requests per minute while idle (%s measured)", idle), Value: reqPerMin, Unit: "req/min", Target: "0", Met: met(reqPerMin == 0)})
	b.add(Figure{Section: sec, Name: label("RSS while idle"), Value: float64(rss) / (1 << 20), Unit: "MiB", Baseline: float64(baseRSS) / (1 << 20), BaseName: "1 database"})
	b.add(Figure{Section: sec, Name: "resident memory per database beyond the base", Value: perDB, Unit: "MiB", Target: "≤ 1 MiB", Met: met(perDB <= 1)})
	b.add(Figure{Section: sec, Name: "descriptors per database beyond the base", Value: fdPerDB, Unit: "fd", Target: "≤ 4", Met: met(fdPerDB <= 4)})

	scrape, size, err := d.scrapeTime(10)
	if err != nil {
		return err
	}
	b.add(Figure{Section: sec, Name: fmt.Sprintf("/metrics scrape, median of 10 (%d KiB)", size>>10), Value: float64(scrape.Microseconds()) / 1000, Unit: "ms", Target: "≤ 100 ms", Met: met(scrape <= 100*time.Millisecond)})

	if profDir != "" {
		if err := d.saveProfiles(filepath.Join(profDir, kind)); err != nil {
			return err
		}
	}

	stop, err := d.terminate(5 * time.Minute)
	if err != nil {
		return err
	}
	b.add(Figure{Section: sec, Name: "shutdown, SIGTERM to exit", Value: stop.Seconds(), Unit: "s", Target: "≤ 10 s", Met: met(stop <= 10*time.Second)})
	return f.checkApps(ctx)
}

// createTenantDB creates a small WAL-mode database with one row.
func createTenantDB(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(wal)&_pragma=busy_timeout(5000)")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT); INSERT INTO t (v) VALUES ('first')`); err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	return nil
}

// writeLoad gives every database a small write each manyPassEvery, from
// manyWriters workers, each through a connection opened for that write
// and closed after it, as a per-tenant application does. It returns the
// writes made and the slowest pass.
func (f *manyFleet) writeLoad(ctx context.Context, dur time.Duration) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, dur)
	defer cancel()
	var (
		mu       sync.Mutex
		total    int
		slowest  time.Duration
		firstErr error
		wg       sync.WaitGroup
	)
	for w := 0; w < manyWriters; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				start := time.Now()
				for i := w; i < len(f.dbs) && ctx.Err() == nil; i += manyWriters {
					err := writeOne(f.dbs[i])
					if err != nil && strings.Contains(err.Error(), "SQLITE_BUSY") {
						mu.Lock()
						f.busy++
						mu.Unlock()
						continue
					}
					if err != nil {
						mu.Lock()
						firstErr = errors.Join(firstErr, err)
						mu.Unlock()
						return
					}
					mu.Lock()
					f.writes[i]++
					total++
					mu.Unlock()
				}
				took := time.Since(start)
				mu.Lock()
				slowest = max(slowest, took)
				mu.Unlock()
				select {
				case <-ctx.Done():
				case <-time.After(manyPassEvery - took):
				}
			}
		}()
	}
	wg.Wait()
	return total, slowest, firstErr
}

// writeOne commits one small row through a connection of its own; it
// ignores the load's deadline so that no write is cut in half.
func writeOne(path string) error {
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=synchronous(normal)")
	if err != nil {
		return err
	}
	defer db.Close()
	if _, err := db.Exec(`INSERT INTO t (v) VALUES (hex(randomblob(50)))`); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// checkApps checks every application database after the daemon exited:
// integrity_check ok, and every committed row there.
func (f *manyFleet) checkApps(ctx context.Context) error {
	for i, p := range f.dbs {
		db, err := sql.Open("sqlite", "file:"+p+"?mode=ro")
		if err != nil {
			return err
		}
		var ic string
		var rows int
		err = db.QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&ic)
		if err == nil {
			err = db.QueryRowContext(ctx, "SELECT COUNT(*) FROM t").Scan(&rows)
		}
		db.Close()
		switch {
		case err != nil:
			return fmt.Errorf("application database %s: %w", p, err)
		case ic != "ok":
			return fmt.Errorf("application database %s: integrity_check: %s", p, ic)
		case rows != 1+f.writes[i]:
			return fmt.Errorf("application database %s: %d rows, %d committed", p, rows, 1+f.writes[i])
		}
	}
	return nil
}

// manyDaemon is a running `litestream replicate` of many databases.
type manyDaemon struct {
	cmd     *exec.Cmd
	addr    string
	started time.Time
	done    chan error
}

// start writes a config for dbs (each with one replica of the fleet's
// kind, sync-interval 1s) and runs replicate on it.
func (f *manyFleet) start(ctx context.Context, name string, dbs []string) (*manyDaemon, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	var cfg strings.Builder
	fmt.Fprintf(&cfg, "addr: %s\npprof: true\ndbs:\n", addr)
	for _, p := range dbs {
		fmt.Fprintf(&cfg, "  - path: %s\n    replicas:\n", p)
		base := filepath.Base(p)
		if f.kind == "s3" {
			fmt.Fprintf(&cfg, "      - url: s3://%s/%s/%s/%s\n        endpoint: %s\n        access-key-id: %s\n        secret-access-key: %s\n        sync-interval: 1s\n",
				f.b.bucket, filepath.Base(f.dir), name, base, f.b.s3.Endpoint(), s3test.AccessKey, s3test.SecretKey)
		} else {
			fmt.Fprintf(&cfg, "      - path: %s\n        sync-interval: 1s\n", filepath.Join(f.dir, "replica", name, base))
		}
	}
	cfgPath := filepath.Join(f.dir, name+".yml")
	if err := os.WriteFile(cfgPath, []byte(cfg.String()), 0o644); err != nil {
		return nil, err
	}
	logf, err := os.Create(filepath.Join(f.dir, name+".log"))
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(f.b.litestream, "replicate", "-config", cfgPath)
	cmd.Stdout, cmd.Stderr = logf, logf
	d := &manyDaemon{cmd: cmd, addr: addr, started: time.Now(), done: make(chan error, 1)}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, err
	}
	go func() { d.done <- cmd.Wait(); logf.Close() }()
	return d, nil
}

func (d *manyDaemon) pid() int { return d.cmd.Process.Pid }

// kill ends the daemon if it still runs.
func (d *manyDaemon) kill() {
	select {
	case <-d.done:
		d.done <- nil
	default:
		d.cmd.Process.Kill()
	}
}

// terminate sends SIGTERM and returns how long the daemon took to exit.
func (d *manyDaemon) terminate(limit time.Duration) (time.Duration, error) {
	start := time.Now()
	if err := d.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, err
	}
	select {
	case err := <-d.done:
		d.done <- nil
		if err != nil {
			return 0, fmt.Errorf("replicate exited: %w", err)
		}
		return time.Since(start), nil
	case <-time.After(limit):
		d.cmd.Process.Kill()
		return 0, fmt.Errorf("replicate did not exit within %s of SIGTERM", limit)
	}
}

// get fetches a path from the daemon's HTTP server.
func (d *manyDaemon) get(path string) ([]byte, error) {
	c := http.Client{Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + d.addr + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}
	return io.ReadAll(resp.Body)
}

// waitReplicating waits until every database of dbs has a shadow WAL and
// its replica has reached the shadow's end, and returns the time since
// exec.
// manyPollEvery spaces the scrapes that wait for the databases: a scrape
// of 1,000 databases takes tens of milliseconds of the daemon's CPU and
// the bench's, which at every 100 ms slowed the startup it measured.
const manyPollEvery = 500 * time.Millisecond

func (d *manyDaemon) waitReplicating(ctx context.Context, dbs []string, limit time.Duration) (time.Duration, error) {
	deadline := time.Now().Add(limit)
	var behind []string
	for time.Now().Before(deadline) {
		select {
		case err := <-d.done:
			d.done <- err
			return 0, fmt.Errorf("replicate exited: %v", err)
		default:
		}
		if body, err := d.get("/metrics"); err == nil {
			behind = notReplicating(string(body), dbs)
			if len(behind) == 0 {
				return time.Since(d.started), nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(manyPollEvery):
		}
	}
	sort.Strings(behind)
	return 0, fmt.Errorf("%d databases not replicating within %s (first: %v)", len(behind), limit, behind[:min(3, len(behind))])
}

var manySample = regexp.MustCompile(`(?m)^(litestream_shadow_wal_index|litestream_shadow_wal_size|litestream_replica_wal_index|litestream_replica_wal_offset)\{db="([^"]*)"[^}]*\} (\S+)$`)

// notReplicating returns the databases of dbs that have no shadow WAL yet
// or whose replica has not reached its end, by the metrics in body.
func notReplicating(body string, dbs []string) []string {
	type state struct{ shIndex, shSize, repIndex, repOffset float64 }
	got := map[string]*state{}
	for _, m := range manySample.FindAllStringSubmatch(body, -1) {
		s := got[m[2]]
		if s == nil {
			s = &state{repIndex: -1}
			got[m[2]] = s
		}
		v, _ := strconv.ParseFloat(m[3], 64)
		switch m[1] {
		case "litestream_shadow_wal_index":
			s.shIndex = v
		case "litestream_shadow_wal_size":
			s.shSize = v
		case "litestream_replica_wal_index":
			s.repIndex = v
		case "litestream_replica_wal_offset":
			s.repOffset = v
		}
	}
	var out []string
	for _, p := range dbs {
		s := got[p]
		if s == nil || s.shSize == 0 || s.repIndex != s.shIndex || s.repOffset != s.shSize {
			out = append(out, p)
		}
	}
	return out
}

// metricMax returns the largest sample of name in body.
func metricMax(body, name string) float64 {
	re := regexp.MustCompile(`(?m)^` + name + `(\{[^}]*\})? (\S+)$`)
	var out float64
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		v, _ := strconv.ParseFloat(m[2], 64)
		out = max(out, v)
	}
	return out
}

// storeOps returns the store requests the daemon has made so far.
func (d *manyDaemon) storeOps() (float64, error) {
	body, err := d.get("/metrics")
	if err != nil {
		return 0, err
	}
	return metricSum(string(body), "litestream_replica_operation_total", ""), nil
}

// scrapeTime returns the median time of k scrapes of /metrics and the
// size of the last.
func (d *manyDaemon) scrapeTime(k int) (time.Duration, int, error) {
	var times []time.Duration
	size := 0
	for i := 0; i < k; i++ {
		start := time.Now()
		body, err := d.get("/metrics")
		if err != nil {
			return 0, 0, err
		}
		times = append(times, time.Since(start))
		size = len(body)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	return times[len(times)/2], size, nil
}

// saveProfiles writes the daemon's heap and goroutine profiles to dir.
func (d *manyDaemon) saveProfiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for name, path := range map[string]string{"heap.pb.gz": "/debug/pprof/heap", "goroutine.txt": "/debug/pprof/goroutine?debug=1", "allocs.pb.gz": "/debug/pprof/allocs"} {
		body, err := d.get(path)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, name), body, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// saveCPUProfile writes a CPU profile of the next secs seconds to dir,
// once the daemon serves /debug/pprof; it reports nothing, being a help
// for reading the figures, not one of them.
func (d *manyDaemon) saveCPUProfile(dir, name string, secs int) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return
	}
	c := http.Client{Timeout: time.Duration(secs+30) * time.Second}
	for i := 0; i < 100; i++ {
		resp, err := c.Get(fmt.Sprintf("http://%s/debug/pprof/profile?seconds=%d", d.addr, secs))
		if err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		_ = os.WriteFile(filepath.Join(dir, name), body, 0o644)
		return
	}
}

// logTail returns the last lines of the named daemon's log, on one line.
func (f *manyFleet) logTail(name string) string {
	b, err := os.ReadFile(filepath.Join(f.dir, name+".log"))
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-15):], " | ")
}

// procRSS returns a process's resident memory now, in bytes.
func procRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	m := regexp.MustCompile(`VmRSS:\s+(\d+) kB`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
	return kb * 1024
}

// procFDs returns how many descriptors a process has open.
func procFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0
	}
	return len(ents)
}
