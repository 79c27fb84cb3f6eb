package sftp_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/sftptest"
)

// TestRemoveLeftovers: the temporary files killed writes left under the
// replica's generations go; one written after the start (a write in
// progress), replica files, other files and temporary files outside
// generations/ stay.
func TestRemoveLeftovers(t *testing.T) {
	srv := sftptest.StartServer(t)
	c := closeAtEnd(t, newClient(t, srv))
	ctx := context.Background()
	gen := filepath.Join(c.Path, "generations", "0123456789abcdef")
	old := time.Now().Add(-time.Hour)
	write := func(p string, mtime time.Time) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	leftovers := []string{
		filepath.Join(gen, "snapshots", ".00000001.snapshot.lz4.0123456789abcdef.tmp"),
		filepath.Join(gen, "wal", ".00000001_00000000.wal.lz4.fedcba9876543210.tmp"),
	}
	for _, p := range leftovers {
		write(p, old)
	}
	start := time.Now()
	kept := []string{
		filepath.Join(gen, "wal", ".00000002_00000000.wal.lz4.00112233445566ff.tmp"), // in progress
		filepath.Join(gen, "wal", "00000001_00000000.wal.lz4"),
		filepath.Join(gen, "wal", "notes.tmp"),
		filepath.Join(gen, "wal", ".x.tmp"),
		filepath.Join(c.Path, ".db.0123456789abcdef.tmp"), // not under generations/
	}
	write(kept[0], start.Add(2*time.Second))
	for _, p := range kept[1:] {
		write(p, old)
	}
	n, err := c.RemoveLeftovers(ctx, start)
	if err != nil || n != 2 {
		t.Fatalf("removed %d, err %v; want 2", n, err)
	}
	for _, p := range leftovers {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s is still there", p)
		}
	}
	for _, p := range kept {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	if n, err := c.RemoveLeftovers(ctx, start); n != 0 || err != nil {
		t.Fatalf("second run: removed %d, err %v", n, err)
	}
	segs, err := c.Segments(ctx, "0123456789abcdef")
	if err != nil || len(segs) != 1 || segs[0].Pos() != (litestream.Pos{Generation: "0123456789abcdef", Index: 1}) {
		t.Fatalf("segments %+v, %v", segs, err)
	}

	// An empty replica has no leftovers.
	empty := closeAtEnd(t, newClient(t, srv))
	if n, err := empty.RemoveLeftovers(ctx, start); n != 0 || err != nil {
		t.Fatalf("empty replica: removed %d, err %v", n, err)
	}
}

// TestFailedWriteLeavesNoTempFile: a write whose body fails removes its
// temporary file at once.
func TestFailedWriteLeavesNoTempFile(t *testing.T) {
	srv := sftptest.StartServer(t)
	c := closeAtEnd(t, newClient(t, srv))
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelAfter{n: 3 << 20, cancel: cancel}
	if _, err := c.WriteSnapshot(ctx, "0123456789abcdef", 1, r); err == nil {
		t.Fatal("write succeeded")
	}
	var files []string
	filepath.Walk(c.Path, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if !slices.Equal(files, nil) {
		t.Fatalf("files left: %v", files)
	}
}

// cancelAfter yields zeros and cancels its context after n bytes.
type cancelAfter struct {
	n      int
	cancel context.CancelFunc
}

func (r *cancelAfter) Read(p []byte) (int, error) {
	if r.n <= 0 {
		r.cancel()
	}
	n := min(len(p), max(r.n, 1))
	clear(p[:n])
	r.n -= n
	return n, nil
}
