package replicatest

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/litestream-go/litestream"
)

// RoundTripSegment writes segment i (offset i, 100000+i bytes of i) of
// generation 0123456789abcdef through c, reads it back whole and lists
// the generation, and fails t unless the bytes match and the listing
// holds i+1 segments: the step of the backends' fault tests, run with
// i from 0 on one client.
func RoundTripSegment(t testing.TB, c litestream.ReplicaClient, i int) {
	t.Helper()
	ctx := context.Background()
	data := bytes.Repeat([]byte{byte(i)}, 100000+i)
	pos := litestream.Pos{Generation: "0123456789abcdef", Offset: int64(i)}
	if _, err := c.WriteSegment(ctx, pos, bytes.NewReader(data)); err != nil {
		t.Fatalf("write %d: %v", i, err)
	}
	rc, err := c.OpenSegment(ctx, pos)
	if err != nil {
		t.Fatalf("open %d: %v", i, err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d: %d bytes, %v", i, len(got), err)
	}
	segs, err := c.Segments(ctx, pos.Generation)
	if err != nil || len(segs) != i+1 {
		t.Fatalf("list %d: %d segments, %v", i, len(segs), err)
	}
}
