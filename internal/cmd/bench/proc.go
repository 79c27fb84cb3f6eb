package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/litestream-go/litestream/internal/s3test"
)

// replicaBlock returns the config of a replica of the given kind.
func (b *bench) replicaBlock(kind, dir string, syncInterval time.Duration) string {
	if kind == "s3" {
		return fmt.Sprintf("      - url: s3://%s/%s\n        endpoint: %s\n        access-key-id: %s\n        secret-access-key: %s\n        sync-interval: %s\n",
			b.bucket, filepath.Base(dir), b.s3.Endpoint(), s3test.AccessKey, s3test.SecretKey, syncInterval)
	}
	return fmt.Sprintf("      - path: %s\n        sync-interval: %s\n", filepath.Join(dir, "replica"), syncInterval)
}

// daemon is a running `litestream replicate`.
type daemon struct {
	cmd  *exec.Cmd
	addr string
}

// startDaemon runs replicate for dbPath with one replica of kind, serving
// metrics on a free port.
func (b *bench) startDaemon(dir, dbPath, kind string) (*daemon, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	cfg := filepath.Join(dir, "litestream.yml")
	text := fmt.Sprintf("addr: %s\ndbs:\n  - path: %s\n    replicas:\n%s", addr, dbPath, b.replicaBlock(kind, dir, time.Second))
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		return nil, err
	}
	cmd := exec.Command(b.litestream, "replicate", "-config", cfg)
	logf, err := os.Create(filepath.Join(dir, "replicate.log"))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	d := &daemon{cmd: cmd, addr: addr}
	for i := 0; i < 200; i++ {
		if _, err := d.metrics(); err == nil {
			return d, nil
		}
		time.Sleep(25 * time.Millisecond)
	}
	d.cmd.Process.Kill()
	return nil, fmt.Errorf("replicate did not start")
}

// metrics scrapes /metrics.
func (d *daemon) metrics() (string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + d.addr + "/metrics")
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// metricSum adds the samples of name whose label text matches labelRE.
func metricSum(body, name, labelRE string) float64 {
	re := regexp.MustCompile(`(?m)^` + name + `(\{[^}]*\})? (\S+)$`)
	lre := regexp.MustCompile(labelRE)
	var sum float64
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		if lre.MatchString(m[1]) {
			v, _ := strconv.ParseFloat(m[2], 64)
			sum += v
		}
	}
	return sum
}

// waitCaughtUp waits until the replica has everything the shadow WAL has.
func (d *daemon) waitCaughtUp(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		body, err := d.metrics()
		if err == nil && metricSum(body, "litestream_shadow_wal_size", "") > 0 &&
			metricSum(body, "litestream_replica_lag_seconds", "") == 0 &&
			metricSum(body, "litestream_replica_wal_offset", "") == metricSum(body, "litestream_shadow_wal_size", "") {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("replica did not catch up within %s", timeout)
}

// stop reads the daemon's CPU time and peak RSS from /proc, then sends
// SIGINT and waits for it. (rusage of a child counts the parent's memory
// from before exec, so it is not used.)
func (d *daemon) stop() (cpu time.Duration, maxRSS int64, err error) {
	pid := d.cmd.Process.Pid
	if b, rerr := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); rerr == nil {
		if m := regexp.MustCompile(`VmHWM:\s+(\d+) kB`).FindSubmatch(b); m != nil {
			kb, _ := strconv.ParseInt(string(m[1]), 10, 64)
			maxRSS = kb * 1024
		}
	}
	cpu = procCPU(pid)
	d.cmd.Process.Signal(syscall.SIGINT)
	if err := d.cmd.Wait(); err != nil {
		return 0, 0, fmt.Errorf("replicate: %w", err)
	}
	return cpu, maxRSS, nil
}

// procCPU returns the CPU time (user and system) a running process has
// used so far, from /proc; zero when it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// Fields after the command name: utime and stime are the 12th and
	// 13th, in clock ticks (100 per second on Linux).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	if len(f) <= 12 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// runWriter runs the sqlwriter and returns its wall time.
func (b *bench) runWriter(args ...string) (time.Duration, error) {
	wall, _, err := b.runWriterCPU(args...)
	return wall, err
}

// runWriterCPU runs the sqlwriter and returns its wall time and the CPU
// time (user and system) it used.
func (b *bench) runWriterCPU(args ...string) (wall, cpu time.Duration, err error) {
	start := time.Now()
	cmd := exec.Command(b.writer, args...)
	cmd.Stdout = io.Discard
	out, err := os.CreateTemp(b.dir, "writer-*.log")
	if err != nil {
		return 0, 0, err
	}
	defer out.Close()
	cmd.Stderr = out
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out.Name())
		return 0, 0, fmt.Errorf("writer %v: %v: %s", args, err, b)
	}
	wall = time.Since(start)
	return wall, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), nil
}
