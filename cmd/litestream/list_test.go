package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litestream-go/litestream/internal/s3test"
)

// brokenReplicaDir returns a replica path that is a file, so that every
// listing of it fails.
func brokenReplicaDir(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "notadir")
	if err := os.WriteFile(p, []byte("not a replica"), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestListings_BrokenReplica: generations, snapshots and wal list the
// replica that answers and give the one that fails a line of its own on
// stderr; they exit 1, with nothing on stdout, only when none answers.
func TestListings_BrokenReplica(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	broken := brokenReplicaDir(t)
	cfg := writeConfig(t, dbPath, "      - name: good\n        path: "+filepath.Join(dir, "good")+"\n      - name: broken\n        path: "+broken+"\n")
	src := openSource(t, cfg, dbPath)
	src.commit(3)
	src.sync("good")
	gen := src.replica("good").Pos().Generation

	for _, cmd := range []string{"generations", "snapshots", "wal"} {
		r := runCmd(cmd, "-config", cfg, dbPath)
		lines := r.stderrLines()
		if r.code != 0 || len(lines) != 1 {
			t.Fatalf("%s: exit %d, stderr %q; want 0 and one line", cmd, r.code, r.stderr)
		}
		if want := "litestream " + cmd + ": replica broken: list " + broken + "/generations: replica path " + broken + " is not a directory"; !strings.HasPrefix(lines[0], want) {
			t.Errorf("%s: stderr %q, want it to start %q", cmd, lines[0], want)
		}
		if rows := strings.Split(strings.TrimSpace(r.stdout), "\n"); len(rows) < 2 || !strings.HasPrefix(rows[1], "good ") || !strings.Contains(rows[1], gen) || strings.Contains(r.stdout, "broken") {
			t.Errorf("%s: stdout lists not just the good replica's rows:\n%s", cmd, r.stdout)
		}
	}

	// None answers: a line for each, exit 1, nothing on stdout.
	other := filepath.Join(t.TempDir(), "other.db")
	cfg = writeConfig(t, other, "      - name: b1\n        path: "+broken+"\n      - name: b2\n        path: "+brokenReplicaDir(t)+"\n")
	for _, cmd := range []string{"generations", "snapshots", "wal"} {
		r := runCmd(cmd, "-config", cfg, other)
		lines := r.stderrLines()
		if r.code != 1 || r.stdout != "" || len(lines) != 2 ||
			!strings.HasPrefix(lines[0], "litestream "+cmd+": replica b1: ") || !strings.HasPrefix(lines[1], "litestream "+cmd+": replica b2: ") {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q; want exit 1, no stdout, a line per replica", cmd, r.code, r.stdout, r.stderr)
		}
	}
	requireFailure(t, runCmd("generations", "-config", cfg, "-replica", "b2", other), "litestream generations: replica b2: list ", "is not a directory")
}

// TestListings_Arguments: the replica and generation named must exist,
// and an error says which do.
func TestListings_Arguments(t *testing.T) {
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dbPath, "      - name: good\n        path: "+filepath.Join(dir, "good")+"\n      - name: second\n        path: "+filepath.Join(dir, "second")+"\n")
	src := openSource(t, cfg, dbPath)
	src.commit(3)
	src.sync("good")
	gen := src.replica("good").Pos().Generation

	requireFailure(t, runCmd("snapshots", "-config", cfg, "-replica", "nosuch", dbPath),
		`litestream snapshots: no replica named "nosuch" (replicas: good, second)`)
	requireFailure(t, runCmd("wal", "-config", cfg, "-generation", "0123456789abcdef", dbPath),
		"litestream wal: -generation 0123456789abcdef: no replica has this generation (generations: "+gen+")")
	requireFailure(t, runCmd("wal", "-config", cfg, "-replica", "second", "-generation", gen, dbPath),
		"litestream wal: -generation "+gen+": no replica has this generation (there are no generations)")

	r := runCmd("wal", "-config", cfg, "-generation", gen, dbPath)
	if rows := strings.Split(strings.TrimSpace(r.stdout), "\n"); r.code != 0 || r.stderr != "" || len(rows) < 2 || !strings.Contains(rows[1], gen) {
		t.Fatalf("wal -generation %s: exit %d, stdout %q, stderr %q", gen, r.code, r.stdout, r.stderr)
	}
}

// TestListings_EmptyDirectory: a bare empty directory is an empty
// replica: every listing shows its header alone and exits 0; wal
// -generation says there are no generations.
func TestListings_EmptyDirectory(t *testing.T) {
	empty := t.TempDir()
	headers := map[string]string{
		"generations": "name  generation  lag  start  end",
		"snapshots":   "replica  generation  index  size  created",
		"wal":         "replica  generation  index  offset  size  created",
	}
	for cmd, header := range headers {
		r := runCmd(cmd, empty)
		if r.code != 0 || r.stderr != "" || strings.Join(strings.Fields(r.stdout), " ") != strings.Join(strings.Fields(header), " ") {
			t.Errorf("%s of an empty directory: exit %d, stdout %q, stderr %q", cmd, r.code, r.stdout, r.stderr)
		}
	}
	requireFailure(t, runCmd("wal", "-generation", "0123456789abcdef", empty), "(there are no generations)")
}

// TestListings_HelpExamples: each listing's -h shows examples of its use.
func TestListings_HelpExamples(t *testing.T) {
	for _, cmd := range []string{"generations", "snapshots", "wal"} {
		r := runCmd(cmd, "-h")
		if r.code != 0 || !strings.Contains(r.stdout, "\nExamples:\n") || strings.Count(r.stdout, "\tlitestream "+cmd+" ") < 2 {
			t.Errorf("%s -h: exit %d, no examples:\n%s", cmd, r.code, r.stdout)
		}
	}
}

// TestListings_S3Failure: an S3 replica whose bucket is missing is
// reported in one line that names the listing once, and the directory
// replica beside it is still listed.
func TestListings_S3Failure(t *testing.T) {
	srv := s3test.StartServer(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	cfg := writeConfig(t, dbPath, "      - name: local\n        path: "+filepath.Join(dir, "local")+"\n"+s3Replica(srv, "s3", "nosuchbucket"))
	src := openSource(t, cfg, dbPath)
	src.commit(3)
	src.sync("local")

	for _, cmd := range []string{"generations", "snapshots", "wal"} {
		r := runCmd(cmd, "-config", cfg, dbPath)
		lines := r.stderrLines()
		if r.code != 0 || len(lines) != 1 || !strings.Contains(r.stdout, "\nlocal ") {
			t.Fatalf("%s: exit %d, stdout %q, stderr %q", cmd, r.code, r.stdout, r.stderr)
		}
		if want := "litestream " + cmd + ": replica s3: list generations: bucket \"nosuchbucket\" does not exist"; !strings.HasPrefix(lines[0], want) {
			t.Errorf("%s: stderr %q, want it to start %q", cmd, lines[0], want)
		}
	}
}
