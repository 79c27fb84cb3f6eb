package file_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/replicatest"
)

const gen = "0123456789abcdef"

func TestConformance(t *testing.T) {
	replicatest.RunConformance(t, func(t *testing.T) litestream.ReplicaClient {
		// A root that does not exist yet: the first write creates it.
		return file.NewReplicaClient(filepath.Join(t.TempDir(), "replica"))
	})
}

// TestLayout checks the exact paths Litestream v0.3 reads and writes.
func TestLayout(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c := file.NewReplicaClient(root)
	if c.Root() != root || c.Type() != "file" {
		t.Fatalf("Root() = %q, Type() = %q", c.Root(), c.Type())
	}
	if _, err := c.WriteSnapshot(ctx, gen, 0x1a, strings.NewReader("s")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []litestream.Pos{{Generation: gen, Index: 0x1a, Offset: 0x4080}, {Generation: gen, Index: 1, Offset: 0x100000020}} {
		if _, err := c.WriteSegment(ctx, p, strings.NewReader("w")); err != nil {
			t.Fatal(err)
		}
	}
	got := walk(t, root)
	want := []string{
		"generations/0123456789abcdef/snapshots/0000001a.snapshot.lz4",
		"generations/0123456789abcdef/wal/00000001_100000020.wal.lz4",
		"generations/0123456789abcdef/wal/0000001a_00004080.wal.lz4",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("files:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestForeignEntriesIgnored puts files and directories that are not part of
// the layout everywhere in a replica: none may be listed.
func TestForeignEntriesIgnored(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c := file.NewReplicaClient(root)
	if _, err := c.WriteSnapshot(ctx, gen, 1, strings.NewReader("s")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteSegment(ctx, litestream.Pos{Generation: gen, Index: 1}, strings.NewReader("w")); err != nil {
		t.Fatal(err)
	}
	g := filepath.Join(root, "generations")
	mkdir(t, g, "not-a-generation")
	mkdir(t, g, "0123456789ABCDEF")     // upper case
	mkdir(t, g, "0123456789abcde")      // 15 characters
	writeFile(t, g, "fedcba9876543210") // a file with a generation name
	writeFile(t, g, "README")
	writeFile(t, filepath.Join(g, gen), "notes.txt")
	snaps := filepath.Join(g, gen, "snapshots")
	writeFile(t, snaps, "00000002.snapshot.lz4.bak")
	writeFile(t, snaps, ".00000003.snapshot.lz4.0011223344556677.tmp")
	writeFile(t, snaps, "0000004.snapshot.lz4") // 7 digits
	writeFile(t, snaps, "0000000A.snapshot.lz4")
	mkdir(t, snaps, "00000005.snapshot.lz4") // a directory with a valid name
	wal := filepath.Join(g, gen, "wal")
	writeFile(t, wal, "notes.txt")
	writeFile(t, wal, ".00000001_00000020.wal.lz4.0011223344556677.tmp")
	writeFile(t, wal, "00000001_00000040.wal")
	writeFile(t, wal, "00000001-00000060.wal.lz4")
	writeFile(t, wal, "00000001_10000000000000000.wal.lz4") // 17 digits
	mkdir(t, wal, "00000002_00000000.wal.lz4")

	gens, err := c.Generations(ctx)
	if err != nil || len(gens) != 1 || gens[0] != gen {
		t.Errorf("Generations = %v, %v; want [%s]", gens, err, gen)
	}
	if s, err := c.Snapshots(ctx, gen); err != nil || len(s) != 1 || s[0].Index != 1 {
		t.Errorf("Snapshots = %+v, %v; want only index 1", s, err)
	}
	if s, err := c.Segments(ctx, gen); err != nil || len(s) != 1 || s[0].Pos() != (litestream.Pos{Generation: gen, Index: 1}) {
		t.Errorf("Segments = %+v, %v; want only 1:0", s, err)
	}
}

// TestNoTempFilesLeft checks that neither a successful nor a failed write
// leaves its temporary file behind.
func TestNoTempFilesLeft(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c := file.NewReplicaClient(root)
	if _, err := c.WriteSegment(ctx, litestream.Pos{Generation: gen}, strings.NewReader("ok")); err != nil {
		t.Fatal(err)
	}
	// The reader fails after some bytes, so the temporary file had data.
	r := io.MultiReader(bytes.NewReader(make([]byte, 100<<10)), failingReader{})
	if _, err := c.WriteSegment(ctx, litestream.Pos{Generation: gen, Offset: 32}, r); !errors.Is(err, errRead) {
		t.Fatalf("failed write: err = %v, want the reader's error", err)
	}
	if _, err := c.WriteSnapshot(ctx, gen, 0, failingReader{}); err == nil {
		t.Fatal("write from a failing reader succeeded")
	}
	want := []string{"generations/0123456789abcdef/wal/00000000_00000000.wal.lz4"}
	if got := walk(t, root); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("files after writes: %v, want %v", got, want)
	}
}

var errRead = errors.New("read failed")

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errRead }

// TestFileInTheWay makes the replica path, then a generation directory, a
// regular file: writes and listings must fail and name the culprit. (Tests
// run as root here, so a mode change would not deny anything.)
func TestFileInTheWay(t *testing.T) {
	ctx := context.Background()
	root := filepath.Join(t.TempDir(), "replica")
	writeFile(t, filepath.Dir(root), "replica")
	c := file.NewReplicaClient(root)
	_, err := c.WriteSegment(ctx, litestream.Pos{Generation: gen}, strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), "replica path "+root+" is not a directory") {
		t.Fatalf("write: err = %v", err)
	}
	if _, err := c.Generations(ctx); err == nil || !strings.Contains(err.Error(), "replica path "+root+" is not a directory") {
		t.Fatalf("list: err = %v", err)
	}

	root = t.TempDir()
	c = file.NewReplicaClient(root)
	if err := os.MkdirAll(filepath.Join(root, "generations"), 0o755); err != nil {
		t.Fatal(err)
	}
	genDir := filepath.Join(root, "generations", gen)
	writeFile(t, filepath.Dir(genDir), gen)
	_, err = c.WriteSnapshot(ctx, gen, 0, strings.NewReader("x"))
	if err == nil || !strings.Contains(err.Error(), genDir+" is a file where replica directory "+root+" needs a directory") {
		t.Fatalf("write under a file: err = %v", err)
	}
	if _, err := c.Snapshots(ctx, gen); err == nil || !strings.Contains(err.Error(), genDir) {
		t.Fatalf("list under a file: err = %v", err)
	}
}

// TestNotWritable denies write permission on the replica directory. Root
// ignores modes, so it is skipped there (TestFileInTheWay covers the path).
func TestNotWritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("running as root: directory modes do not deny writes")
	}
	root := t.TempDir()
	if err := os.Chmod(root, 0o555); err != nil {
		t.Fatal(err)
	}
	defer os.Chmod(root, 0o755)
	c := file.NewReplicaClient(root)
	_, err := c.WriteSegment(context.Background(), litestream.Pos{Generation: gen}, strings.NewReader("x"))
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "replica directory "+root+" is not writable") {
		t.Fatalf("err = %v", err)
	}
}

// TestMissingNamesPath checks that opening a missing object names its path.
func TestMissingNamesPath(t *testing.T) {
	root := t.TempDir()
	c := file.NewReplicaClient(root)
	_, err := c.OpenSegment(context.Background(), litestream.Pos{Generation: gen, Index: 2, Offset: 0x20})
	want := filepath.Join(root, "generations", gen, "wal", "00000002_00000020.wal.lz4")
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), want) || strings.Count(err.Error(), want) != 1 {
		t.Fatalf("err = %v, want one naming %s once", err, want)
	}
}

// TestInvalidNames checks that names outside the layout are refused before
// they touch the disk: "../x" as a generation would escape the replica.
func TestInvalidNames(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	root := filepath.Join(dir, "replica")
	c := file.NewReplicaClient(root)
	for _, g := range []string{"../../x", "", "0123456789ABCDEF"} {
		if _, err := c.WriteSnapshot(ctx, g, 0, strings.NewReader("x")); err == nil {
			t.Errorf("WriteSnapshot(%q) succeeded", g)
		}
		if err := c.DeleteGeneration(ctx, g); err == nil {
			t.Errorf("DeleteGeneration(%q) succeeded", g)
		}
		if _, err := c.Segments(ctx, g); err == nil {
			t.Errorf("Segments(%q) succeeded", g)
		}
	}
	for _, p := range []litestream.Pos{{Generation: gen, Index: -1}, {Generation: gen, Offset: -32}, {Generation: gen, Index: litestream.MaxIndex + 1}} {
		if _, err := c.WriteSegment(ctx, p, strings.NewReader("x")); err == nil {
			t.Errorf("WriteSegment(%+v) succeeded", p)
		}
	}
	if got := walk(t, dir); len(got) != 0 {
		t.Fatalf("invalid names created %v", got)
	}
}

// TestCreatedAtIsMtime checks that listings take timestamps from the file
// system, which point-in-time restore depends on.
func TestCreatedAtIsMtime(t *testing.T) {
	ctx := context.Background()
	root := t.TempDir()
	c := file.NewReplicaClient(root)
	info, err := c.WriteSnapshot(ctx, gen, 0, strings.NewReader("s"))
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(root, filepath.FromSlash(litestream.SnapshotPath(gen, 0)))
	if fi, err := os.Stat(name); err != nil || !fi.ModTime().Equal(info.CreatedAt) {
		t.Fatalf("WriteSnapshot CreatedAt %v, file mtime %v (%v)", info.CreatedAt, fi.ModTime(), err)
	}
	old := time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)
	if err := os.Chtimes(name, old, old); err != nil {
		t.Fatal(err)
	}
	if s, err := c.Snapshots(ctx, gen); err != nil || len(s) != 1 || !s[0].CreatedAt.Equal(old) {
		t.Fatalf("Snapshots = %+v, %v; want CreatedAt %v", s, err, old)
	}
}

// TestOnOp checks the operation counts and bytes reported to OnOp.
func TestOnOp(t *testing.T) {
	ctx := context.Background()
	c := file.NewReplicaClient(t.TempDir())
	var mu sync.Mutex
	got := map[string][2]int64{}
	c.OnOp = func(op string, n int64) {
		mu.Lock()
		defer mu.Unlock()
		v := got[op]
		got[op] = [2]int64{v[0] + 1, v[1] + n}
	}
	pos := litestream.Pos{Generation: gen}
	if _, err := c.WriteSegment(ctx, pos, strings.NewReader("12345")); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteSegment(ctx, pos, failingReader{}); err == nil { // not counted
		t.Fatal("failing write succeeded")
	}
	rc, err := c.OpenSegment(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	rc.Close()
	if _, err := c.OpenSnapshot(ctx, gen, 9); err == nil { // not counted
		t.Fatal("open of a missing snapshot succeeded")
	}
	c.Generations(ctx)
	c.Segments(ctx, gen)
	c.Snapshots(ctx, gen) // a missing directory is still one LIST
	c.DeleteSegments(ctx, []litestream.Pos{pos, {Generation: gen, Offset: 32}})
	c.DeleteGeneration(ctx, gen)
	want := map[string][2]int64{"PUT": {1, 5}, "GET": {1, 5}, "LIST": {3, 0}, "DELETE": {3, 0}}
	for op, w := range want {
		if got[op] != w {
			t.Errorf("%s: %d ops, %d bytes; want %d, %d", op, got[op][0], got[op][1], w[0], w[1])
		}
	}
	if len(got) != len(want) {
		t.Errorf("ops %v", got)
	}
}

// walk returns the regular files under root, relative and "/"-joined.
func walk(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(root, p)
			out = append(out, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func mkdir(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(dir, name), 0o755); err != nil {
		t.Fatal(err)
	}
}

func writeFile(t *testing.T, dir, name string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("foreign"), 0o644); err != nil {
		t.Fatal(err)
	}
}
