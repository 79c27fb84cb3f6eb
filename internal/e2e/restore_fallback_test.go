package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/s3test"
	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// TestRestoreFallback: a writer process commits while replicate ships to
// a directory ("local", which restore prefers at the same position) and to
// the local S3 server. A damaged middle segment of local is named with its
// replica, and the restore from S3 holds every commit; -replica local
// fails instead; with local's directory replaced by a file (it cannot be
// listed), restore still restores everything from S3 and says why.
func TestRestoreFallback(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	useS3Credentials(t)
	dir := t.TempDir()
	dbPath, local := filepath.Join(dir, "app.db"), filepath.Join(dir, "local")
	cfg := writeConfig(t, dir, dbPath, fmt.Sprintf(
		"      - name: s3\n        url: s3://%s/app\n        endpoint: %s\n        sync-interval: 100ms\n", bucket, srv.Endpoint()),
		fileReplica("local", local))
	rep := Start(t, bin.Litestream, "replicate", "-config", cfg)
	w := Start(t, bin.Writer, "-db", dbPath, "-n", "1200", "-rows", "2", "-size", "800", "-every", "2ms")
	if code := w.Wait(3 * time.Minute); code != 0 {
		t.Fatalf("writer exited %d: %s", code, w.Output())
	}
	stopReplicate(t, rep)
	want := w.LastCommitted()

	// Both reach the same point: local is chosen.
	out, stderr := restoreCLI(t, 0, "-config", cfg, dbPath)
	requireTx(t, out, want)
	if !strings.Contains(stderr, " from replica local, ") {
		t.Fatalf("local not chosen at the same position:\n%s", stderr)
	}

	seg := damageMiddleSegment(t, local)
	out, stderr = restoreCLI(t, 0, "-config", cfg, dbPath)
	requireTx(t, out, want)
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return strings.Contains(l, "restoring from replica s3 instead") })
	if i < 0 || !strings.Contains(lines[i], "replica local: ") || !strings.Contains(lines[i], filepath.Base(seg)) ||
		!strings.Contains(lines[i], "which reaches the same point") {
		t.Fatalf("the fallback is not said, with the file and the replica:\n%s", stderr)
	}

	// Pinned: one line naming the file and the replica, no output.
	pinned := filepath.Join(t.TempDir(), "pinned.db")
	stdout, stderr, code := Run(context.Background(), bin.Litestream, "restore", "-config", cfg, "-replica", "local", "-o", pinned, dbPath)
	if code != 1 || !strings.Contains(stderr, "litestream restore: replica local: ") || !strings.Contains(stderr, filepath.Base(seg)) ||
		strings.Contains(stderr, "instead") {
		t.Fatalf("-replica local: exit %d\n%s%s", code, stdout, stderr)
	}
	if ents, _ := os.ReadDir(filepath.Dir(pinned)); len(ents) != 0 {
		t.Fatalf("a failed restore left %v", ents)
	}

	// A replica that cannot be listed is passed over, and said so.
	if err := os.Rename(local, local+".away"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(local, []byte("not a directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr = restoreCLI(t, 0, "-config", cfg, dbPath)
	requireTx(t, out, want)
	if !strings.Contains(stderr, "cannot list this replica; restoring from the others") || !strings.Contains(stderr, "local (file): cannot list it: ") {
		t.Fatalf("the unlisted replica is not said:\n%s", stderr)
	}
}

// restoreCLI restores with the binary and requires exit status code; it
// returns the output path and stderr.
func restoreCLI(t *testing.T, code int, args ...string) (string, string) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "restored.db")
	stdout, stderr, c := Run(context.Background(), bin.Litestream, append([]string{"restore", "-o", out}, args...)...)
	if c != code {
		t.Fatalf("restore %v: exit %d, want %d\n%s%s", args, c, code, stdout, stderr)
	}
	return out, stderr
}

// requireTx requires the database at path to hold exactly want
// transactions of the writer.
func requireTx(t *testing.T, path string, want int) {
	t.Helper()
	m, err := sqlwriter.Verify(context.Background(), path)
	if err != nil {
		t.Fatalf("restored database: %v", err)
	}
	if m != want {
		t.Fatalf("restored %d transactions, want %d", m, want)
	}
}

// damageMiddleSegment overwrites bytes in the middle of a segment in the
// middle of the directory replica's last generation (not the first of its
// index) and returns its path.
func damageMiddleSegment(t *testing.T, replica string) string {
	t.Helper()
	gens, err := os.ReadDir(filepath.Join(replica, "generations"))
	if err != nil || len(gens) == 0 {
		t.Fatalf("no generation in %s (%v)", replica, err)
	}
	walDir := filepath.Join(replica, "generations", gens[len(gens)-1].Name(), "wal")
	ents, err := os.ReadDir(walDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		if _, off, err := litestream.ParseSegmentName(e.Name()); err == nil && off > 0 {
			if fi, _ := e.Info(); fi != nil && fi.Size() > 64 {
				names = append(names, e.Name())
			}
		}
	}
	if len(names) < 3 {
		t.Fatalf("only %d later segments in %s", len(names), walDir)
	}
	p := filepath.Join(walDir, names[len(names)/2])
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(b) / 2; i < len(b)/2+16 && i < len(b)-8; i++ {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}
