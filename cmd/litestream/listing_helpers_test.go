package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/s3test"
	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// cmdResult is what one command line did.
type cmdResult struct {
	code           int
	stdout, stderr string
}

// runCmd runs a command line in-process.
func runCmd(args ...string) cmdResult {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), args, &stdout, &stderr)
	return cmdResult{code, stdout.String(), stderr.String()}
}

// stderrLines returns the lines the command wrote on stderr.
func (r cmdResult) stderrLines() []string {
	s := strings.TrimSuffix(r.stderr, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// requireFailure requires exit status 1, nothing on stdout, and exactly one
// line on stderr that holds every one of want.
func requireFailure(t *testing.T, r cmdResult, want ...string) {
	t.Helper()
	lines := r.stderrLines()
	if r.code != 1 || r.stdout != "" || len(lines) != 1 {
		t.Fatalf("want exit 1, nothing on stdout, one line on stderr; got exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(lines[0], w) {
			t.Errorf("stderr %q does not say %q", lines[0], w)
		}
	}
}

// writeConfig writes a config file of the one database dbPath with the
// given replicas (YAML list items, indented six spaces) and returns its
// path.
func writeConfig(t *testing.T, dbPath, replicas string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "litestream.yml")
	if err := os.WriteFile(p, []byte("dbs:\n  - path: "+dbPath+"\n    replicas:\n"+replicas), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// source is the test writer on a database of a config file and the engine
// on it with the config's replicas, every sync run by the test.
type source struct {
	t  *testing.T
	w  *sqlwriter.Writer
	db *litestream.DB
}

// openSource opens dbPath of the config file cfgPath.
func openSource(t *testing.T, cfgPath, dbPath string) *source {
	t.Helper()
	ctx := context.Background()
	cfg, err := ReadConfigFile(cfgPath, true)
	if err != nil {
		t.Fatal(err)
	}
	w, err := sqlwriter.Open(ctx, dbPath, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	db, err := newDBFromConfig(cfg.DBConfig(dbPath), slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	db.CheckpointInterval, db.MinCheckpointPageN = 0, 0
	t.Cleanup(func() { db.Close(ctx) })
	return &source{t: t, w: w, db: db}
}

// commit commits n one-row transactions.
func (s *source) commit(n int) {
	s.t.Helper()
	for i := 0; i < n; i++ {
		if _, err := s.w.Commit(context.Background(), 1, 200); err != nil {
			s.t.Fatal(err)
		}
	}
}

// sync copies the WAL into the shadow WAL and ships it to the replicas
// named.
func (s *source) sync(names ...string) {
	s.t.Helper()
	ctx := context.Background()
	if err := s.db.Sync(ctx); err != nil {
		s.t.Fatal(err)
	}
	for _, name := range names {
		r := s.replica(name)
		if err := r.Sync(ctx); err != nil {
			s.t.Fatalf("sync replica %s: %v", name, err)
		}
	}
}

func (s *source) replica(name string) *litestream.Replica {
	s.t.Helper()
	for _, r := range s.db.Replicas {
		if r.Name == name {
			return r
		}
	}
	s.t.Fatalf("no replica %s", name)
	return nil
}

// requireRestored requires the database at path to hold exactly the
// first n transactions.
func requireRestored(t *testing.T, path string, n int) {
	t.Helper()
	m, err := sqlwriter.Verify(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if m != n {
		t.Fatalf("%s holds %d transactions, want %d", path, m, n)
	}
}

// s3Replica returns the YAML list item of an S3 replica named name on the
// test server.
func s3Replica(srv *s3test.Server, name, bucket string) string {
	return fmt.Sprintf("      - name: %s\n        url: s3://%s/app\n        endpoint: %s\n        access-key-id: %s\n        secret-access-key: %s\n",
		name, bucket, srv.Endpoint(), s3test.AccessKey, s3test.SecretKey)
}
