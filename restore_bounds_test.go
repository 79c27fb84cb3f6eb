package litestream_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
)

// countingClient counts the opens of one segment.
type countingClient struct {
	*file.ReplicaClient
	watch litestream.Pos
	opens atomic.Int64
}

func (c *countingClient) OpenSegment(ctx context.Context, pos litestream.Pos) (io.ReadCloser, error) {
	if pos == c.watch {
		c.opens.Add(1)
	}
	return c.ReplicaClient.OpenSegment(ctx, pos)
}

// TestRestore_OversizeSegmentNotRetried: a segment that decodes to more
// than the bytes before the next one (an LZ4 bomb in its place) is
// opened once, stopped at that length, and fails the restore naming it;
// nothing is left next to the output.
func TestRestore_OversizeSegmentNotRetried(t *testing.T) {
	h := buildHistory(t)
	name := middleSegment(t, h.segmentDir, true)
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
	if err == nil || !strings.Contains(err.Error(), name) || !strings.Contains(err.Error(), "before the next segment") || !strings.Contains(err.Error(), "stopped there") {
		t.Fatalf("restore: %v", err)
	}
	if n := c.opens.Load(); n != 1 {
		t.Fatalf("the oversize segment was opened %d times, want 1 (no retry)", n)
	}
	assertNothingLeft(t, out)
}
