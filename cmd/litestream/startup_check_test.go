package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/s3test"
)

// asLitestream makes the test binary run as the litestream command when
// started by litestreamProcess, so that tests see the exit code and every
// byte it prints, the SDK's included.
const asLitestream = "LITESTREAM_TEST_AS_COMMAND"

func init() {
	if os.Getenv(asLitestream) == "1" {
		main()
		os.Exit(0)
	}
}

// litestreamProcess returns the litestream command with args, with no AWS
// credentials or config in its environment but env.
func litestreamProcess(t *testing.T, env []string, args ...string) *exec.Cmd {
	home := t.TempDir()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), asLitestream+"=1", "HOME="+home,
		"AWS_CONFIG_FILE="+filepath.Join(home, "config"), "AWS_SHARED_CREDENTIALS_FILE="+filepath.Join(home, "credentials"),
		"AWS_ACCESS_KEY_ID=", "AWS_SECRET_ACCESS_KEY=", "AWS_SESSION_TOKEN=", "AWS_PROFILE=",
		"LITESTREAM_ACCESS_KEY_ID=", "LITESTREAM_SECRET_ACCESS_KEY=", "LITESTREAM_CONFIG=")
	cmd.Env = append(cmd.Env, env...)
	return cmd
}

// replicateUntilExit runs replicate with cfg and returns its exit code,
// stdout and stderr.
func replicateUntilExit(t *testing.T, env []string, cfg string, args ...string) (int, string, string) {
	t.Helper()
	cmd := litestreamProcess(t, env, append([]string{"replicate", "-config", cfg}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		<-done
		t.Fatalf("replicate did not exit; stdout:\n%s\nstderr:\n%s", &stdout, &stderr)
	}
	return cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()
}

// s3Config writes a config file with one database and an S3 replica named
// s3, the given extra replica lines indented under it.
func s3Config(t *testing.T, bucket, endpoint string, extra ...string) (cfg, dbPath string) {
	t.Helper()
	dir := t.TempDir()
	dbPath = filepath.Join(dir, "app.db")
	var b strings.Builder
	fmt.Fprintf(&b, "logging:\n  type: json\ndbs:\n  - path: %s\n    replicas:\n      - name: s3\n        url: s3://%s/app\n        endpoint: %s\n", dbPath, bucket, endpoint)
	for _, l := range extra {
		b.WriteString("        " + l + "\n")
	}
	cfg = filepath.Join(dir, "litestream.yml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, dbPath
}

// requireOneLine checks that replicate refused to start: exit 1, one line
// on stderr naming the replica and holding want, and only JSON on stdout.
func requireOneLine(t *testing.T, code int, stdout, stderr, dbPath, want string) {
	t.Helper()
	prefix := "litestream replicate: replica s3 of " + dbPath + ": "
	if code != 1 || strings.Count(stderr, "\n") != 1 || !strings.HasPrefix(stderr, prefix) || !strings.Contains(stderr, want) {
		t.Fatalf("exit %d, stderr %q; want exit 1 and one line %q...%q", code, stderr, prefix, want)
	}
	requireJSONLines(t, stdout)
	t.Logf("%s", strings.TrimSpace(stderr))
}

// requireJSONLines checks that every line of the log is a JSON object: no
// SDK line breaks logging.type json.
func requireJSONLines(t *testing.T, log string) {
	t.Helper()
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		if line != "" && !json.Valid([]byte(line)) {
			t.Fatalf("log line is not JSON: %q", line)
		}
	}
}

// TestReplicateStartupCheck: replicate refuses to start, in one line that
// names the replica and never the secret, when the store rejects the
// credentials, the bucket is missing, no credentials are found, or the
// endpoint cannot be reached; with -exec the child never starts. A store
// that answers with server errors does not stop it.
func TestReplicateStartupCheck(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	const secret = "s3cr3t-that-must-never-be-printed"
	keys := []string{"access-key-id: " + s3test.AccessKey, "secret-access-key: " + s3test.SecretKey}

	t.Run("wrong secret", func(t *testing.T) {
		t.Parallel()
		cfg, dbPath := s3Config(t, bucket, srv.Endpoint(), "access-key-id: "+s3test.AccessKey, "secret-access-key: "+secret)
		code, stdout, stderr := replicateUntilExit(t, nil, cfg)
		requireOneLine(t, code, stdout, stderr, dbPath, `access denied for access key id "`+s3test.AccessKey+`" on bucket "`+bucket+`" (SignatureDoesNotMatch, HTTP 403)`)
		if strings.Contains(stdout+stderr, secret) {
			t.Fatal("the secret was printed")
		}
	})
	t.Run("wrong secret from the environment, with -exec", func(t *testing.T) {
		t.Parallel()
		cfg, dbPath := s3Config(t, bucket, srv.Endpoint())
		marker := filepath.Join(t.TempDir(), "child-ran")
		env := []string{"LITESTREAM_ACCESS_KEY_ID=" + s3test.AccessKey, "LITESTREAM_SECRET_ACCESS_KEY=" + secret}
		code, stdout, stderr := replicateUntilExit(t, env, cfg, "-exec", "touch "+marker)
		requireOneLine(t, code, stdout, stderr, dbPath, "access denied")
		if strings.Contains(stdout+stderr, secret) {
			t.Fatal("the secret was printed")
		}
		if _, err := os.Stat(marker); err == nil {
			t.Fatal("the child process ran")
		}
	})
	t.Run("unknown key id", func(t *testing.T) {
		t.Parallel()
		cfg, dbPath := s3Config(t, bucket, srv.Endpoint(), "access-key-id: nosuchkey", "secret-access-key: "+secret)
		code, stdout, stderr := replicateUntilExit(t, nil, cfg)
		requireOneLine(t, code, stdout, stderr, dbPath, `access denied for access key id "nosuchkey"`)
		if strings.Contains(stdout+stderr, secret) {
			t.Fatal("the secret was printed")
		}
	})
	t.Run("missing bucket", func(t *testing.T) {
		t.Parallel()
		cfg, dbPath := s3Config(t, "no-such-bucket", srv.Endpoint(), keys...)
		code, stdout, stderr := replicateUntilExit(t, nil, cfg)
		requireOneLine(t, code, stdout, stderr, dbPath, `bucket "no-such-bucket" does not exist at `+srv.Endpoint()+` (NoSuchBucket, HTTP 404): create it or fix the bucket name`)
	})
	t.Run("no credentials", func(t *testing.T) {
		t.Parallel()
		cfg, dbPath := s3Config(t, bucket, srv.Endpoint())
		code, stdout, stderr := replicateUntilExit(t, nil, cfg)
		requireOneLine(t, code, stdout, stderr, dbPath, "no S3 credentials: set LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY, or access-key-id in the config")
		if strings.Contains(stdout+stderr, "IMDS") || strings.Contains(stdout+stderr, "SDK ") {
			t.Fatalf("the SDK's internals were printed:\n%s%s", stdout, stderr)
		}
	})
	t.Run("unreachable endpoint", func(t *testing.T) {
		t.Parallel()
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		cfg, dbPath := s3Config(t, bucket, "http://"+addr, keys...)
		start := time.Now()
		code, stdout, stderr := replicateUntilExit(t, nil, cfg)
		requireOneLine(t, code, stdout, stderr, dbPath, "cannot reach the S3 endpoint http://"+addr)
		if took := time.Since(start); took < startupCheckTimeout-time.Second || took > startupCheckTimeout+5*time.Second {
			t.Fatalf("gave up after %s; the bound is %s", took, startupCheckTimeout)
		}
	})
	t.Run("server errors", func(t *testing.T) {
		t.Parallel()
		proxy := s3test.StartFaultProxy(t, srv.Endpoint(), 1)
		proxy.SetFaults(s3test.Faults{Error500: 1})
		cfg, _ := s3Config(t, bucket, proxy.Endpoint(), keys...)
		cmd := litestreamProcess(t, nil, "replicate", "-config", cfg)
		var stdout, stderr lockedBuffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		deadline := time.After(time.Minute)
		for !strings.Contains(stdout.String(), `"msg":"replicating"`) {
			select {
			case <-deadline:
				cmd.Process.Kill()
				<-done
				t.Fatalf("replicate did not start; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			case <-done:
				t.Fatalf("replicate exited; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
			case <-time.After(100 * time.Millisecond):
			}
		}
		proxy.SetFaults(s3test.Faults{})
		cmd.Process.Signal(syscall.SIGINT)
		<-done
		if !strings.Contains(stdout.String(), "the replica's store fails at startup; replicating anyway") || !strings.Contains(stdout.String(), "InternalError, HTTP 500") {
			t.Fatalf("no warning of the failing store:\n%s", stdout.String())
		}
		requireJSONLines(t, stdout.String())
	})
}
