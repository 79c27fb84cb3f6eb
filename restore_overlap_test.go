package litestream_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// cutSnapshotClient serves the snapshot cut short the first time it is
// opened: all its stored bytes but the last 4 (the LZ4 content checksum),
// then, a moment later, an error.
type cutSnapshotClient struct {
	*file.ReplicaClient
	opens atomic.Int64
}

func (c *cutSnapshotClient) OpenSnapshot(ctx context.Context, gen string, index int) (io.ReadCloser, error) {
	rc, err := c.ReplicaClient.OpenSnapshot(ctx, gen, index)
	if err != nil || c.opens.Add(1) > 1 {
		return rc, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(io.MultiReader(bytes.NewReader(b[:len(b)-4]), &lateError{})), nil
}

// lateError fails its first read after a pause, long enough for the
// segments to be indexed and their pages written behind the decode.
type lateError struct{}

func (*lateError) Read([]byte) (int, error) {
	time.Sleep(300 * time.Millisecond)
	return 0, errors.New("connection cut")
}

// TestRestore_SnapshotRetriedUnderApply: the segments' pages are written
// onto the snapshot while it decodes; when its decode fails and starts
// over, they are written again onto the new attempt's file, and the result
// is byte for byte the one of a restore without the failure.
func TestRestore_SnapshotRetriedUnderApply(t *testing.T) {
	h := buildHistory(t)
	want, _ := restoreLatest(t, h.dir, latest())
	c := &cutSnapshotClient{ReplicaClient: file.NewReplicaClient(h.dir)}
	r := litestream.NewReplica("file", c)
	ctx := context.Background()
	plan, err := litestream.PlanRestore(ctx, []*litestream.Replica{r}, latest())
	if err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(t.TempDir(), "out.db")
	if err := litestream.Restore(ctx, plan, out, latest()); err != nil {
		t.Fatal(err)
	}
	if n := c.opens.Load(); n != 2 {
		t.Fatalf("snapshot opened %d times, want 2", n)
	}
	if m, err := sqlwriter.Verify(ctx, out); err != nil || m != h.lastTx {
		t.Fatalf("restored %d transactions (%v), want %d", m, err, h.lastTx)
	}
	a, _ := os.ReadFile(want)
	b, _ := os.ReadFile(out)
	if !bytes.Equal(a, b) {
		t.Fatalf("restored file (%d bytes) differs from a restore without the failure (%d bytes)", len(b), len(a))
	}
}
