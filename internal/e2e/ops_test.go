package e2e

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/s3test"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func httpGet(url string) (int, string) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// metric returns the value of the first sample of name whose labels contain
// every label given.
func metric(body, name string, labels ...string) (float64, bool) {
	re := regexp.MustCompile(`(?m)^` + name + `(\{[^}]*\})? (\S+)$`)
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l)
		}
		if ok {
			v, _ := strconv.ParseFloat(m[2], 64)
			return v, true
		}
	}
	return 0, false
}

// TestMetricsAndHealth scrapes /metrics during replication to a real S3
// server: WAL bytes grow, the replica position follows, lag returns to 0;
// /healthz turns 503 while the server is down and 200 when it is back.
func TestMetricsAndHealth(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	addr := freeAddr(t)
	cfg := writeConfig(t, dir, dbPath, fmt.Sprintf(
		"      - name: s3\n        url: s3://%s/app\n        endpoint: %s\n        access-key-id: %s\n        secret-access-key: %s\n        sync-interval: 100ms\n",
		bucket, srv.Endpoint(), s3test.AccessKey, s3test.SecretKey))
	cfgText := fmt.Sprintf("addr: %s\nhealth-window: 3s\n", addr)
	prependConfig(t, cfg, cfgText)
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	url := "http://" + addr
	WaitFor(t, 10*time.Second, "metrics endpoint", func() bool { code, _ := httpGet(url + "/metrics"); return code == 200 })

	w := Start(t, bin.Writer, "-db", dbPath, "-n", "300", "-every", "2ms")
	w.Wait(time.Minute)
	var body string
	WaitFor(t, 20*time.Second, "replica caught up (lag 0)", func() bool {
		_, body = httpGet(url + "/metrics")
		lag, ok := metric(body, "litestream_replica_lag_seconds", `name="s3"`)
		shadow, _ := metric(body, "litestream_shadow_wal_size")
		off, _ := metric(body, "litestream_replica_wal_offset", `name="s3"`)
		sIdx, _ := metric(body, "litestream_shadow_wal_index")
		rIdx, _ := metric(body, "litestream_replica_wal_index", `name="s3"`)
		return ok && lag == 0 && shadow == off && sIdx == rIdx
	})
	for _, m := range []struct {
		name   string
		labels []string
	}{
		{"litestream_total_wal_bytes", nil}, {"litestream_db_size", nil}, {"litestream_sync_count", nil},
		{"litestream_replica_wal_bytes", []string{`name="s3"`}},
		{"litestream_replica_operation_total", []string{`operation="PUT"`, `replica_type="s3"`}},
		{"litestream_replica_operation_bytes", []string{`operation="PUT"`}},
	} {
		if v, ok := metric(body, m.name, m.labels...); !ok || v <= 0 {
			t.Errorf("%s%v = %v (present %v), want > 0", m.name, m.labels, v, ok)
		}
	}
	// As v0.3's default registry did: the Go runtime's and the process's.
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_resident_memory_bytes", "process_cpu_seconds_total", "process_open_fds"} {
		if v, ok := metric(body, name); !ok || v <= 0 {
			t.Errorf("%s = %v (present %v), want > 0", name, v, ok)
		}
	}
	// The engine runs PASSIVE checkpoints only, and says so.
	if v, ok := metric(body, "litestream_checkpoint_count", `mode="PASSIVE"`); !ok || v < 0 {
		t.Errorf("litestream_checkpoint_count{mode=PASSIVE} = %v (present %v)", v, ok)
	}
	for _, mode := range []string{"FULL", "RESTART", "TRUNCATE"} {
		if _, ok := metric(body, "litestream_checkpoint_count", `mode="`+mode+`"`); ok {
			t.Errorf("litestream_checkpoint_count{mode=%s} present: the engine never runs that mode", mode)
		}
	}
	for _, name := range []string{"litestream_checkpoint_lock_max_seconds", "litestream_checkpoint_put_off_count"} {
		if v, ok := metric(body, name); !ok || v < 0 {
			t.Errorf("%s = %v (present %v), want present", name, v, ok)
		}
	}
	before, _ := metric(body, "litestream_total_wal_bytes")
	w = Start(t, bin.Writer, "-db", dbPath, "-n", "100")
	w.Wait(time.Minute)
	WaitFor(t, 10*time.Second, "WAL bytes to grow", func() bool {
		_, body = httpGet(url + "/metrics")
		v, _ := metric(body, "litestream_total_wal_bytes")
		return v > before
	})
	if code, _ := httpGet(url + "/debug/pprof/"); code == 200 {
		t.Error("/debug/pprof served without pprof: true")
	}

	if code, b := httpGet(url + "/healthz"); code != 200 {
		t.Fatalf("healthz %d: %s", code, b)
	}
	srv.Stop()
	w = Start(t, bin.Writer, "-db", dbPath, "-n", "50")
	w.Wait(time.Minute)
	WaitFor(t, 30*time.Second, "healthz 503 while S3 is down", func() bool { code, _ := httpGet(url + "/healthz"); return code == 503 })
	_, b := httpGet(url + "/healthz")
	if !strings.Contains(b, "replica s3") {
		t.Errorf("503 without a reason naming the replica: %s", b)
	}
	srv.Start()
	WaitFor(t, 60*time.Second, "healthz 200 once S3 is back", func() bool { code, _ := httpGet(url + "/healthz"); return code == 200 })
	stopReplicate(t, rep)
	restoreAndVerify(t, 450, "-config", cfg, dbPath)
	requireLive(t, dbPath, 450)
}

func prependConfig(t *testing.T, path, text string) {
	t.Helper()
	b := readFile(t, path)
	writeFile(t, path, text+b)
}

// TestExec: the child's exit code becomes litestream's, after a last sync
// that the restore proves.
func TestExec(t *testing.T) {
	dir := t.TempDir()
	dbPath, replica := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	script := filepath.Join(dir, "app.sh")
	writeFile(t, script, fmt.Sprintf("#!/bin/sh\n%s -db %s -n 200 > /dev/null || exit 9\nexit 3\n", bin.Writer, dbPath))
	chmodX(t, script)
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", replica))
	_, stderr, code := Run(context.Background(), bin.Litestream, "replicate", "-config", cfg, "-exec", script)
	if code != 3 {
		t.Fatalf("exit %d, want the child's 3; stderr %s", code, stderr)
	}
	restoreAndVerify(t, 200, replica)
	requireLive(t, dbPath, 200)

	// The child is stopped by a signal sent to litestream.
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg, "-exec", bin.Writer+" -db "+dbPath+" -n 0 -every 5ms")
	time.Sleep(1500 * time.Millisecond)
	rep.Signal(syscall.SIGTERM)
	if code := rep.Wait(time.Minute); code != 0 {
		t.Fatalf("exit %d after SIGTERM (the writer exits 0 on SIGTERM)", code)
	}
	if !strings.Contains(rep.Output(), "forwarding signal") {
		t.Errorf("signal not forwarded:\n%s", rep.Output())
	}
	// The child's "committed N" lines reach replicate's output.
	requireLive(t, dbPath, rep.LastCommitted())
}

func TestOpsBadInput(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", filepath.Join(dir, "r")))
	prependConfig(t, cfg, "addr: "+l.Addr().String()+"\n")
	_, stderr, code := Run(context.Background(), bin.Litestream, "replicate", "-config", cfg)
	if code != 1 || !strings.Contains(stderr, "cannot listen") {
		t.Fatalf("busy addr: exit %d, %s", code, stderr)
	}
	cfg2 := writeConfig(t, t.TempDir(), dbPath, fileReplica("file", filepath.Join(dir, "r")))
	_, stderr, code = Run(context.Background(), bin.Litestream, "replicate", "-config", cfg2, "-exec", "no-such-command-xyz --flag")
	if code != 1 || !strings.Contains(stderr, "no-such-command-xyz") || !strings.Contains(stderr, "not found") {
		t.Fatalf("missing -exec command: exit %d, %s", code, stderr)
	}
}

// TestLoggingAndExecOverride: logging.type json on stderr gives one JSON
// object a line, with the database path; with exec in the config and
// -exec on the command line, the flag wins and the log says so.
func TestLoggingAndExecOverride(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dir, dbPath, fileReplica("file", filepath.Join(dir, "r")))
	prependConfig(t, cfg, "exec: /bin/false\nlogging:\n  type: json\n  stderr: true\n  level: debug\n")
	stdout, stderr, code := Run(context.Background(), bin.Litestream, "replicate", "-config", cfg, "-exec", "/bin/sh -c 'exit 4'")
	if code != 4 {
		t.Fatalf("exit %d, want 4 from the -exec command; stderr %s", code, stderr)
	}
	if strings.TrimSpace(stdout) != "" {
		t.Errorf("logs went to stdout with stderr: true: %q", stdout)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	for _, l := range lines {
		if !strings.HasPrefix(l, "{") || !strings.HasSuffix(l, "}") {
			t.Fatalf("not a JSON log line: %q", l)
		}
	}
	if !strings.Contains(stderr, "overrides the config file's exec") || !strings.Contains(stderr, `"db":"`+dbPath+`"`) {
		t.Fatalf("missing override notice or db attribute:\n%s", stderr)
	}
}
