package main

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests in this file run the litestream binary, built the way a user
// builds it (a plain go build), in a temporary working directory. A bad
// input gives one line on stderr, exit 1, and leaves the disk as it was.

// buildLitestream compiles this command as a plain go build does, with VCS
// stamping on (-buildvcs=auto, the go command's default, which a GOFLAGS of
// the environment may have turned off) unless the go command cannot read
// the checkout; stamped reports which it was.
func buildLitestream(t *testing.T) (bin string, stamped bool) {
	t.Helper()
	bin = filepath.Join(t.TempDir(), "litestream")
	build := func(vcs string) ([]byte, error) {
		cmd := exec.Command("go", "build", vcs, "-o", bin, "./cmd/litestream")
		cmd.Dir = "../.."
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		return cmd.CombinedOutput()
	}
	out, err := build("-buildvcs=auto")
	if err != nil && bytes.Contains(out, []byte("VCS status")) {
		out, err = build("-buildvcs=false")
		if err == nil {
			return bin, false
		}
	}
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin, true
}

type cliResult struct {
	code           int
	stdout, stderr string
}

// runCLI runs the binary to its end in dir.
func runCLI(t *testing.T, bin, dir string, args ...string) cliResult {
	t.Helper()
	// Every command run this way ends at once; one that replicates instead
	// is killed, and fails the test on its exit code.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LITESTREAM_CONFIG="+filepath.Join(dir, "no-default-config.yml"))
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	return cliResult{code, stdout.String(), stderr.String()}
}

// wantOneErrorLine checks a refused command: exit 1, nothing on stdout, one
// line on stderr holding every want.
func wantOneErrorLine(t *testing.T, r cliResult, want ...string) {
	t.Helper()
	if r.code != 1 || r.stdout != "" || strings.Count(strings.TrimSuffix(r.stderr, "\n"), "\n") != 0 {
		t.Fatalf("want exit 1 and one line on stderr; got exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(r.stderr, w) {
			t.Errorf("stderr %q does not contain %q", r.stderr, w)
		}
	}
}

// tree lists every path under dir.
func tree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// lockedBuffer is an output buffer the process and the test share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// startAndStop runs replicate until its output holds n "replicating" lines,
// stops it with SIGTERM and returns its output and exit code.
func startAndStop(t *testing.T, bin, dir string, n int, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LITESTREAM_CONFIG="+filepath.Join(dir, "no-default-config.yml"))
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for strings.Count(out.String(), "msg=replicating") < n {
		select {
		case err := <-done:
			t.Fatalf("replicate exited (%v) before logging %d replicas:\n%s", err, n, out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			t.Fatalf("no %d replicating lines after 30 s:\n%s", n, out.String())
		}
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	code := 0
	select {
	case err := <-done:
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("replicate did not exit after SIGTERM:\n%s", out.String())
	}
	return out.String(), code
}

func TestBinary(t *testing.T) {
	headBefore := gitHead()
	bin, stamped := buildLitestream(t)

	// A mistyped replica URL is refused with the form expected, by every
	// command that takes one, and creates nothing (a path it were read as
	// would be a directory ./s3:, or the database's meta directory).
	t.Run("bad replica URL", func(t *testing.T) {
		for _, tc := range []struct{ url, want string }{
			{"s3:/bucket/x", `replica URL "s3:/bucket/x": write s3://BUCKET/PATH`},
			{"s3:bucket/y", `replica URL "s3:bucket/y": write s3://BUCKET/PATH`},
			{"s3:///x", `write s3://BUCKET/PATH`},
			{"S3:/bucket/x", `write s3://BUCKET/PATH`},
			{"s3://b/x?endpont=http://localhost:9000", `unknown parameter "endpont"`},
			{"s3://key:hunter2@b/x", `an s3 URL carries no credentials`},
			{"file:rel", `replica URL "file:rel": write file:///ABSOLUTE/PATH, or a plain path for a relative directory`},
			{"file://rel/dir", `a file URL has no host: write file:///ABSOLUTE/PATH`},
			{"file:///backups/a#1", `takes no ?query or #fragment`},
			{"backups:2024/x", `unknown scheme "backups"`},
			{"my backups:x", `not a URL or a path`},
		} {
			dir := t.TempDir()
			before := tree(t, dir)
			for _, args := range [][]string{
				{"replicate", "./a.db", tc.url},
				{"restore", "-o", "./out.db", tc.url},
				{"generations", tc.url},
			} {
				t.Run(args[0]+" "+tc.url, func(t *testing.T) {
					r := runCLI(t, bin, dir, args...)
					wantOneErrorLine(t, r, tc.want)
					if strings.Contains(r.stderr, "hunter2") {
						t.Errorf("password in the error: %q", r.stderr)
					}
					if after := tree(t, dir); !slices.Equal(before, after) {
						t.Errorf("created %v", after[len(before):])
					}
				})
			}
		}
	})

	// Two replicas in one place, or one inside the other, are refused
	// at load with both lines, before anything is created.
	t.Run("shared replica path", func(t *testing.T) {
		dir := t.TempDir()
		cfg := filepath.Join(dir, "c.yml")
		text := "dbs:\n  - path: " + dir + "/a.db\n    replicas:\n      - path: " + dir + "/rep\n" +
			"  - path: " + dir + "/b.db\n    replicas:\n      - url: file://" + dir + "/rep/\n"
		if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		before := tree(t, dir)
		wantOneErrorLine(t, runCLI(t, bin, dir, "replicate", "-config", cfg),
			"line 7:", `replica "file" of `+dir+"/b.db writes to "+dir+"/rep", "(line 4)", "retention")
		wantOneErrorLine(t, runCLI(t, bin, dir, "replicate", "./a.db", "./rep", "./rep/sub"),
			`replica "file2" of `+dir+"/a.db writes to "+dir+"/rep/sub, inside "+dir+"/rep", "must not nest")
		wantOneErrorLine(t, runCLI(t, bin, dir, "replicate", "./a.db", "s3://bkt/app/", "s3://bkt//app"),
			"writes to s3://bkt/app, as does")
		if after := tree(t, dir); !slices.Equal(before, after) {
			t.Errorf("created %v", after[len(before):])
		}
	})

	// The startup log gives the version once, then where each replica
	// writes; a plain path, a drive-letter path and a file: URL are
	// directories, as in the config file.
	t.Run("startup log", func(t *testing.T) {
		dir := t.TempDir()
		out, code := startAndStop(t, bin, dir, 3, "replicate", "./a.db", "file:"+dir+"/r1", "./r2", "C:/r3")
		if code != 0 {
			t.Fatalf("exit %d after SIGTERM:\n%s", code, out)
		}
		if n := strings.Count(out, "version="); n != 1 || !strings.Contains(strings.SplitN(out, "\n", 2)[0], `msg="starting litestream" version=`) {
			t.Errorf("want the version once, on the first line; got %d:\n%s", n, out)
		}
		for _, want := range []string{
			"replica=file type=file path=" + dir + "/r1 sync_interval=1s",
			"replica=file2 type=file path=" + dir + "/r2 sync_interval=1s",
			"replica=file3 type=file path=" + dir + "/C:/r3 sync_interval=1s",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
	})

	t.Run("missing database directory", func(t *testing.T) {
		dir := t.TempDir()
		before := tree(t, dir)
		wantOneErrorLine(t, runCLI(t, bin, dir, "replicate", dir+"/no/such/a.db", dir+"/rep"),
			"database "+dir+"/no/such/a.db: directory "+dir+"/no/such does not exist: create it or correct the path")
		wantOneErrorLine(t, runCLI(t, bin, dir, "replicate", dir, dir+"/rep"),
			"database "+dir+" is a directory: give the database file's path")
		wantOneErrorLine(t, runCLI(t, bin, dir, "replicate", "s3://bkt/app", "./rep"),
			`DB_PATH "s3://bkt/app" is not a file path: give the database first`)
		cfg := filepath.Join(dir, "c.yml")
		if err := os.WriteFile(cfg, []byte("dbs:\n  - path: "+dir+"/no/a.db\n    replicas:\n      - path: "+dir+"/rep\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		before = append(before, cfg)
		wantOneErrorLine(t, runCLI(t, bin, dir, "replicate", "-config", cfg),
			"config file "+cfg+": line 2: database "+dir+"/no/a.db: directory "+dir+"/no does not exist")
		if after := tree(t, dir); !slices.Equal(before, after) {
			t.Errorf("created %v", after[len(before):])
		}
	})

	t.Run("config file messages", func(t *testing.T) {
		dir := t.TempDir()
		for _, tc := range []struct {
			name, text string
			args       []string
			want       []string
		}{
			{"tab", "dbs:\n  - path: /a.db\n    replicas:\n      - path: /x\n\tname: y\n", []string{"databases"},
				[]string{"config file c.yml: line 5: found a tab character"}},
			{"bad key", "dbs:\n  - path: /a.db\n    replicas:\n      - path: /x\n    - path: /y\n", []string{"databases"},
				[]string{"line 5: did not find expected key"}},
			{"dbs as a map", "dbs:\n  path: /a.db\n", []string{"databases"},
				[]string{`line 2: dbs must be a list of databases, each entry starting with "- path:"; found keys and values (a map)`}},
			{"not in the config", "dbs:\n  - path: /a.db\n", []string{"generations", "/b.db"},
				[]string{"database /b.db is not in the config file c.yml"}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if err := os.WriteFile(filepath.Join(dir, "c.yml"), []byte(tc.text), 0o644); err != nil {
					t.Fatal(err)
				}
				args := append([]string{tc.args[0], "-config", "c.yml"}, tc.args[1:]...)
				r := runCLI(t, bin, dir, args...)
				wantOneErrorLine(t, r, tc.want...)
				if strings.Contains(r.stderr, "main.") || strings.Contains(r.stderr, "!!") {
					t.Errorf("Go or YAML library terms in %q", r.stderr)
				}
			})
		}
	})

	t.Run("commands", func(t *testing.T) {
		dir := t.TempDir()
		wantOneErrorLine(t, runCLI(t, bin, dir, "replicat"), `unknown command "replicat" (did you mean "replicate"?)`)
		wantOneErrorLine(t, runCLI(t, bin, dir, "snapshot"), `(did you mean "snapshots"?)`)

		r := runCLI(t, bin, dir)
		if r.code != 1 || r.stdout != "" || !strings.Contains(r.stderr, "Usage:") {
			t.Errorf("bare litestream: want usage on stderr and exit 1; got exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
		}
		if r := runCLI(t, bin, dir, "-h"); r.code != 0 || !strings.Contains(r.stdout, "With no command, litestream prints this text\nto stderr and exits 1") {
			t.Errorf("-h: exit %d, stdout %q", r.code, r.stdout)
		}

		v := runCLI(t, bin, dir, "version")
		version := strings.TrimSpace(v.stdout)
		if v.code != 0 || version == "" || strings.Contains(version, "\n") {
			t.Fatalf("version: exit %d, stdout %q, stderr %q", v.code, v.stdout, v.stderr)
		}
		for _, flag := range []string{"--version", "-version"} {
			if r := runCLI(t, bin, dir, flag); r.code != 0 || strings.TrimSpace(r.stdout) != version {
				t.Errorf("%s: exit %d, stdout %q; want %q", flag, r.code, r.stdout, version)
			}
		}
		// A plain go build names the commit it was built from.
		if !stamped {
			t.Logf("the go command cannot read the checkout: version %q not checked", version)
			return
		}
		// Another commit may land while the binary builds.
		revs := []string{headBefore, gitHead()}
		if revs[0] == "" || revs[1] == "" || strings.Contains(version, "(development build)") {
			// No VCS information reached the build (a worktree, a
			// checkout the go command does not stamp): nothing to compare.
			t.Logf("no VCS information: version %q not checked", version)
			return
		}
		if !strings.Contains(version, revs[0][:12]) && !strings.Contains(version, revs[1][:12]) {
			t.Errorf("version %q does not name commit %s", version, revs[1])
		}
	})
}

// gitHead returns the checkout's commit, or "" without git.
func gitHead() string {
	rev, err := exec.Command("git", "-C", "../..", "rev-parse", "HEAD").Output()
	if err != nil || len(strings.TrimSpace(string(rev))) < 12 {
		return ""
	}
	return strings.TrimSpace(string(rev))
}
