package file_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/replicatest"
)

func TestConformance(t *testing.T) {
	replicatest.RunConformance(t, func(t *testing.T) litestream.ReplicaClient {
		return file.NewReplicaClient(filepath.Join(t.TempDir(), "replica"))
	})
}

// TestLayout checks the exact paths v0.3 reads, and that foreign files are
// ignored.
func TestLayout(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c := file.NewReplicaClient(root)
	gen := "0123456789abcdef"
	if _, err := c.WriteSnapshot(ctx, gen, 0x1a, bytes.NewReader([]byte("s"))); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteSegment(ctx, litestream.Pos{Generation: gen, Index: 0x1a, Offset: 0x4080}, bytes.NewReader([]byte("w"))); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"generations/0123456789abcdef/snapshots/0000001a.snapshot.lz4", "generations/0123456789abcdef/wal/0000001a_00004080.wal.lz4"} {
		if _, err := os.Stat(filepath.Join(root, p)); err != nil {
			t.Errorf("missing %s: %v", p, err)
		}
	}
	// Foreign entries everywhere.
	os.MkdirAll(filepath.Join(root, "generations", "not-a-generation"), 0o755)
	os.WriteFile(filepath.Join(root, "generations", "README"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "generations", gen, "wal", "notes.txt"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "generations", gen, "wal", ".0000001a_00008000.wal.lz4.123.tmp"), []byte("x"), 0o644)
	os.WriteFile(filepath.Join(root, "generations", gen, "snapshots", "0000001a.snapshot.lz4.bak"), []byte("x"), 0o644)
	gens, _ := c.Generations(ctx)
	segs, _ := c.Segments(ctx, gen)
	snaps, _ := c.Snapshots(ctx, gen)
	if len(gens) != 1 || len(segs) != 1 || len(snaps) != 1 {
		t.Fatalf("foreign files listed: %v %+v %+v", gens, segs, snaps)
	}
}

func TestNoTempFilesLeft(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c := file.NewReplicaClient(root)
	pos := litestream.Pos{Generation: "0123456789abcdef"}
	c.WriteSegment(ctx, pos, bytes.NewReader([]byte("ok")))
	c.WriteSegment(ctx, litestream.Pos{Generation: pos.Generation, Offset: 32}, failingReader{})
	filepath.Walk(root, func(p string, fi os.FileInfo, err error) error {
		if err == nil && strings.HasSuffix(p, ".tmp") {
			t.Errorf("temporary file left: %s", p)
		}
		return nil
	})
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, os.ErrClosed }

func TestNotWritable(t *testing.T) {
	root := filepath.Join(t.TempDir(), "replica")
	os.WriteFile(root, []byte("a file where the replica directory should be"), 0o644)
	c := file.NewReplicaClient(root)
	_, err := c.WriteSegment(context.Background(), litestream.Pos{Generation: "0123456789abcdef"}, bytes.NewReader([]byte("x")))
	if err == nil || !strings.Contains(err.Error(), root) || !strings.Contains(err.Error(), "not a directory") {
		t.Fatalf("err = %v", err)
	}
}
