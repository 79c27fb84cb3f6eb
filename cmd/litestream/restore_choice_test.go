package main

import (
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/litestream-go/litestream/internal/s3test"
)

// restoringLine returns the "restoring ... from ..." line of a restore.
func restoringLine(t *testing.T, r cmdResult) string {
	t.Helper()
	for _, l := range r.stderrLines() {
		if strings.HasPrefix(l, "restoring ") {
			return l
		}
	}
	t.Fatalf("no restoring line: exit %d, stderr %q", r.code, r.stderr)
	return ""
}

var choiceRE = regexp.MustCompile(`; chose (\S+) \((\w+), [0-9.]+ k?B\) over (\S+) \((\w+), [0-9.]+ k?B\): (.*)$`)

// TestRestoreCommand_ChoosesReplica, with a directory and a real S3
// server: at the same position the directory wins though S3 is listed
// first; when S3 holds more commits it wins; -replica pins either.
func TestRestoreCommand_ChoosesReplica(t *testing.T) {
	srv := s3test.StartServer(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dbPath, s3Replica(srv, "s3", srv.CreateBucket(t))+"      - name: local\n        path: "+filepath.Join(dir, "local")+"\n")
	src := openSource(t, cfg, dbPath)
	src.commit(20)
	src.sync("s3", "local")
	src.commit(20)
	src.sync("local", "s3") // S3 written last: its objects are the newest

	restore := func(want int, args ...string) string {
		t.Helper()
		out := filepath.Join(t.TempDir(), "restored.db")
		r := runCmd(append(append([]string{"restore", "-config", cfg, "-o", out}, args...), dbPath)...)
		if r.code != 0 {
			t.Fatalf("restore %v: exit %d: %s", args, r.code, r.stderr)
		}
		requireRestored(t, out, want)
		return restoringLine(t, r)
	}

	line := restore(40)
	m := choiceRE.FindStringSubmatch(line)
	if m == nil || m[1] != "local" || m[2] != "file" || m[3] != "s3" || m[4] != "s3" || m[5] != "same position, local directory" {
		t.Fatalf("same position: %s", line)
	}
	if !strings.HasPrefix(line, "restoring ") || !strings.Contains(line, " from replica local, generation ") {
		t.Fatalf("same position: %s", line)
	}

	src.commit(10)
	src.sync("s3")
	line = restore(50)
	m = choiceRE.FindStringSubmatch(line)
	if m == nil || m[1] != "s3" || m[3] != "local" || !strings.HasPrefix(m[5], "reaches further (") {
		t.Fatalf("S3 further: %s", line)
	}

	line = restore(40, "-replica", "local")
	if !strings.Contains(line, " from replica local, ") || strings.Contains(line, "; chose ") {
		t.Fatalf("-replica local: %s", line)
	}
}

// TestRestoreCommand_S3Failure: a replica whose bucket is missing fails
// the restore in one line that names the listing once.
func TestRestoreCommand_S3Failure(t *testing.T) {
	srv := s3test.StartServer(t)
	dbPath := filepath.Join(t.TempDir(), "app.db")
	cfg := writeConfig(t, dbPath, s3Replica(srv, "s3", "nosuchbucket"))
	out := filepath.Join(t.TempDir(), "out.db")
	requireFailure(t, runCmd("restore", "-config", cfg, "-o", out, dbPath),
		"litestream restore: replica s3: list generations: bucket \"nosuchbucket\" does not exist")
}
