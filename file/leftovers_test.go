package file_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
)

// TestRemoveLeftovers: the temporary files a killed process left (named as
// writeFile names them, last modified before the start) go; a temporary
// file still being written (modified since), the replica's own files and
// foreign files stay.
func TestRemoveLeftovers(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c := file.NewReplicaClient(root)
	if n, err := c.RemoveLeftovers(ctx, time.Now()); n != 0 || err != nil {
		t.Fatalf("empty replica: removed %d, err %v", n, err)
	}
	if _, err := c.WriteSnapshot(ctx, gen, 0, strings.NewReader("s")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteSegment(ctx, litestream.Pos{Generation: gen}, strings.NewReader("w")); err != nil {
		t.Fatal(err)
	}
	snaps := filepath.Join(root, "generations", gen, "snapshots")
	wal := filepath.Join(root, "generations", gen, "wal")
	start := time.Now()
	put := func(dir, name string, mtime time.Time) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("partial"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(p, mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	old := start.Add(-time.Minute)
	put(snaps, ".00000001.snapshot.lz4.0123456789abcdef.tmp", old)                      // killed mid-snapshot
	put(wal, ".00000000_00001000.wal.lz4.fedcba9876543210.tmp", old)                    // killed mid-segment
	put(wal, ".00000000_00002000.wal.lz4.00112233aabbccdd.tmp", start.Add(time.Second)) // being written
	put(wal, ".notes.tmp", old)                                                         // not ours
	put(wal, "00000000_00003000.wal.lz4.0123456789abcdef.tmp", old)                     // no leading dot: not ours
	put(snaps, ".00000002.snapshot.lz4.0123456789abcdeg.tmp", old)                      // not hex: not ours

	n, err := c.RemoveLeftovers(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("removed %d files, want 2", n)
	}
	want := []string{
		"generations/0123456789abcdef/snapshots/.00000002.snapshot.lz4.0123456789abcdeg.tmp",
		"generations/0123456789abcdef/snapshots/00000000.snapshot.lz4",
		"generations/0123456789abcdef/wal/.00000000_00002000.wal.lz4.00112233aabbccdd.tmp",
		"generations/0123456789abcdef/wal/.notes.tmp",
		"generations/0123456789abcdef/wal/00000000_00000000.wal.lz4",
		"generations/0123456789abcdef/wal/00000000_00003000.wal.lz4.0123456789abcdef.tmp",
	}
	got := walk(t, root)
	slices.Sort(got)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("files left:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
