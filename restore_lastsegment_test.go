package litestream_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
)

// lastSegmentOfIndex names the last segment of an index before the last,
// one with no successor in its index and not at offset 0.
func lastSegmentOfIndex(t *testing.T, dir string) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	last, _, _ := litestream.ParseSegmentName(ents[len(ents)-1].Name())
	name := ""
	for _, e := range ents {
		if idx, off, _ := litestream.ParseSegmentName(e.Name()); idx == last-1 && off > 0 {
			name = e.Name()
		}
	}
	if name == "" {
		t.Fatal("no segment to damage")
	}
	return name
}

// TestRestore_LastSegmentBombStopped: the last segment of an index has no
// successor to bound it, and an LZ4 bomb there (8 MB of zeros, no declared
// size) is stopped at its first frame, whose salts are not its index's:
// opened once, named in the error, nothing left next to the output.
func TestRestore_LastSegmentBombStopped(t *testing.T) {
	h := buildHistory(t)
	name := lastSegmentOfIndex(t, h.segmentDir)
	index, offset, err := litestream.ParseSegmentName(name)
	if err != nil {
		t.Fatal(err)
	}
	var bomb bytes.Buffer
	if _, err := (litestream.Codec{}).Encode(&bomb, bytes.NewReader(make([]byte, 8<<20))); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(h.segmentDir, name), bomb.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	gen := filepath.Base(filepath.Dir(h.segmentDir))
	c := &countingClient{ReplicaClient: file.NewReplicaClient(h.dir), watch: litestream.Pos{Generation: gen, Index: index, Offset: offset}}
	r := litestream.NewReplica("file", c)
	ctx := context.Background()
	plan, err := litestream.PlanRestore(ctx, []*litestream.Replica{r}, latest())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.db")
	err = litestream.Restore(ctx, plan, out, latest())
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "salt") || !strings.Contains(err.Error(), "stopped there") {
		t.Fatalf("restore: %v", err)
	}
	if n := c.opens.Load(); n != 1 {
		t.Fatalf("the bomb was opened %d times, want 1 (no retry)", n)
	}
	assertNothingLeft(t, out)
}

// TestRestore_LastSegmentRatioBound: a bomb whose frames carry the right
// salts still decodes to no more than LZ4 can make of the bytes it is
// stored in (maxDecodeRatio), and is stopped there.
func TestRestore_LastSegmentRatioBound(t *testing.T) {
	const stored = 1000
	if err := litestream.CheckDecodeRatio(255*stored, stored); err != nil {
		t.Fatalf("within LZ4's ratio: %v", err)
	}
	if err := litestream.CheckDecodeRatio(300*stored+(1<<20), stored); err == nil || !strings.Contains(err.Error(), "stopped there") {
		t.Fatalf("past LZ4's ratio: %v", err)
	}
}
