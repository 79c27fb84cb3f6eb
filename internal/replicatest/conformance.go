// Package replicatest is the conformance suite every replica backend runs:
// the same cases against the file replica, S3 on a real server, and any
// later backend, so that everything above the ReplicaClient interface can
// rely on one behaviour.
package replicatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
)

// Generation names used by the cases, in sorted order.
const (
	genA = "0123456789abcdef"
	genB = "89abcdef01234567"
	genC = "fedcba9876543210"
)

// LargeSize is the size of the large-object cases: more than two S3
// multipart parts of up to 8 MiB, and not a multiple of any part size.
const LargeSize = 20<<20 + 12345

// ManyCount is the number of segments of the listing case: past the 1000
// keys of one S3 listing page and of one batch delete.
const ManyCount = 1100

// RunConformance runs every case as a subtest. newClient returns a client
// for a fresh, empty replica each call.
func RunConformance(t *testing.T, newClient func(t *testing.T) litestream.ReplicaClient) {
	cases := []struct {
		name string
		run  func(t *testing.T, c litestream.ReplicaClient)
	}{
		{"RoundTrip", testRoundTrip},
		{"Generations", testGenerations},
		{"ListingOrder", testListingOrder},
		{"WideOffsets", testWideOffsets},
		{"Missing", testMissing},
		{"Delete", testDelete},
		{"LargeObject", testLargeObject},
		{"ManySegments", testManySegments},
		{"ConcurrentGenerations", testConcurrentGenerations},
		{"FailedWrite", testFailedWrite},
		{"InvalidPositions", testInvalidPositions},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) { tc.run(t, newClient(t)) })
	}
}

// testRoundTrip writes snapshots and segments and reads them back
// byte-exact, with the infos that writes and listings return.
func testRoundTrip(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	start := time.Now()
	snap := content(1, 5000)
	info, err := c.WriteSnapshot(ctx, genA, 3, bytes.NewReader(snap))
	if err != nil {
		t.Fatalf("write snapshot: %v", err)
	}
	if info.Generation != genA || info.Index != 3 || info.Size != int64(len(snap)) {
		t.Errorf("WriteSnapshot returned %+v, want generation %s index 3 size %d", info, genA, len(snap))
	}
	checkTime(t, "WriteSnapshot CreatedAt", info.CreatedAt, start)

	segs := map[litestream.Pos][]byte{
		pos(genA, 3, 0):      content(2, 3000),
		pos(genA, 3, 0x4080): content(3, 4120*3),
		pos(genA, 4, 0):      {}, // empty objects are stored too
	}
	for p, b := range segs {
		info, err := c.WriteSegment(ctx, p, bytes.NewReader(b))
		if err != nil {
			t.Fatalf("write segment %v: %v", p, err)
		}
		if info.Pos() != p || info.Size != int64(len(b)) {
			t.Errorf("WriteSegment(%v) returned %+v, want size %d", p, info, len(b))
		}
		checkTime(t, "WriteSegment CreatedAt", info.CreatedAt, start)
	}

	checkSnapshot(t, c, genA, 3, snap)
	for p, b := range segs {
		checkSegment(t, c, p, b)
	}

	snaps, err := c.Snapshots(ctx, genA)
	if err != nil {
		t.Fatalf("list snapshots: %v", err)
	}
	if len(snaps) != 1 || snaps[0].Generation != genA || snaps[0].Index != 3 || snaps[0].Size != int64(len(snap)) {
		t.Fatalf("Snapshots = %+v, want one of index 3 and size %d", snaps, len(snap))
	}
	checkTime(t, "listed snapshot CreatedAt", snaps[0].CreatedAt, start)
	listed, err := c.Segments(ctx, genA)
	if err != nil {
		t.Fatalf("list segments: %v", err)
	}
	if len(listed) != len(segs) {
		t.Fatalf("Segments = %+v, want %d", listed, len(segs))
	}
	for _, s := range listed {
		b, ok := segs[s.Pos()]
		if !ok || s.Size != int64(len(b)) {
			t.Errorf("listed segment %+v: not written, or size is not %d", s, len(b))
		}
		checkTime(t, "listed segment CreatedAt", s.CreatedAt, start)
	}

	// A second write of the same name replaces the first (a retried upload).
	snap2 := content(4, 777)
	if _, err := c.WriteSnapshot(ctx, genA, 3, bytes.NewReader(snap2)); err != nil {
		t.Fatalf("overwrite snapshot: %v", err)
	}
	checkSnapshot(t, c, genA, 3, snap2)
	if snaps, err := c.Snapshots(ctx, genA); err != nil || len(snaps) != 1 || snaps[0].Size != int64(len(snap2)) {
		t.Fatalf("Snapshots after overwrite = %+v, %v; want one of size %d", snaps, err, len(snap2))
	}
}

// testGenerations checks that generations are listed sorted, and that an
// empty replica or an unknown generation lists as empty, not as an error.
func testGenerations(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	if gens, err := c.Generations(ctx); err != nil || len(gens) != 0 {
		t.Fatalf("Generations of an empty replica = %v, %v; want none and no error", gens, err)
	}
	if s, err := c.Snapshots(ctx, genA); err != nil || len(s) != 0 {
		t.Fatalf("Snapshots of an empty replica = %+v, %v; want none and no error", s, err)
	}
	if s, err := c.Segments(ctx, genA); err != nil || len(s) != 0 {
		t.Fatalf("Segments of an empty replica = %+v, %v; want none and no error", s, err)
	}
	mustSnapshot(t, c, genC, 1, []byte("c"))
	mustSegment(t, c, pos(genA, 0, 0), []byte("a"))
	mustSnapshot(t, c, genB, 0, []byte("b"))
	gens, err := c.Generations(ctx)
	if err != nil {
		t.Fatalf("list generations: %v", err)
	}
	if fmt.Sprint(gens) != fmt.Sprint([]string{genA, genB, genC}) {
		t.Fatalf("Generations = %v, want [%s %s %s]", gens, genA, genB, genC)
	}
	const unknown = "00000000deadbeef"
	if s, err := c.Snapshots(ctx, unknown); err != nil || len(s) != 0 {
		t.Fatalf("Snapshots of an unknown generation = %+v, %v; want none and no error", s, err)
	}
	if s, err := c.Segments(ctx, unknown); err != nil || len(s) != 0 {
		t.Fatalf("Segments of an unknown generation = %+v, %v; want none and no error", s, err)
	}
	// Listings of one generation do not see another's objects.
	if s, err := c.Snapshots(ctx, genA); err != nil || len(s) != 0 {
		t.Fatalf("Snapshots(%s) = %+v, %v; want none (only a segment is there)", genA, s, err)
	}
	if s, err := c.Segments(ctx, genB); err != nil || len(s) != 0 {
		t.Fatalf("Segments(%s) = %+v, %v; want none", genB, s, err)
	}
}

// testListingOrder writes out of order and expects listings sorted by
// index, then offset.
func testListingOrder(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	for _, idx := range []int{0x10, 2, litestream.MaxIndex, 0, 0xa} {
		mustSnapshot(t, c, genA, idx, []byte{byte(idx)})
	}
	written := []litestream.Pos{
		pos(genA, 0x10, 0), pos(genA, 2, 0x4080), pos(genA, 2, 0), pos(genA, 0xa, 0x20),
		pos(genA, 2, 0x1020), pos(genA, 0xa, 0), pos(genA, 1, 0),
	}
	for _, p := range written {
		mustSegment(t, c, p, []byte("w"))
	}
	snaps, err := c.Snapshots(ctx, genA)
	if err != nil {
		t.Fatalf("list snapshots: %v", err)
	}
	var idx []int
	for _, s := range snaps {
		idx = append(idx, s.Index)
	}
	if want := []int{0, 2, 0xa, 0x10, litestream.MaxIndex}; fmt.Sprint(idx) != fmt.Sprint(want) {
		t.Fatalf("snapshot indexes %x, want %x", idx, want)
	}
	want := []litestream.Pos{
		pos(genA, 1, 0), pos(genA, 2, 0), pos(genA, 2, 0x1020), pos(genA, 2, 0x4080),
		pos(genA, 0xa, 0), pos(genA, 0xa, 0x20), pos(genA, 0x10, 0),
	}
	checkListed(t, c, genA, want)
}

// testWideOffsets covers offsets of 4 GiB and more, whose names have more
// than 8 hex digits: they must round-trip and sort numerically, not
// lexically ("100000020" sorts before "fffffff0" as text).
func testWideOffsets(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	data := map[litestream.Pos][]byte{
		pos(genA, 2, 0xfffffff0):         content(10, 100),
		pos(genA, 2, 0x100000020):        content(11, 200),
		pos(genA, 2, 0x1_0000_0000_0020): content(12, 300),
		pos(genA, 2, 0x20):               content(13, 400),
		pos(genA, 3, 0):                  content(14, 500),
	}
	for p, b := range data {
		info, err := c.WriteSegment(ctx, p, bytes.NewReader(b))
		if err != nil {
			t.Fatalf("write segment %v: %v", p, err)
		}
		if info.Offset != p.Offset {
			t.Errorf("WriteSegment(%v) returned offset %x", p, info.Offset)
		}
	}
	for p, b := range data {
		checkSegment(t, c, p, b)
	}
	checkListed(t, c, genA, []litestream.Pos{
		pos(genA, 2, 0x20), pos(genA, 2, 0xfffffff0), pos(genA, 2, 0x100000020),
		pos(genA, 2, 0x1_0000_0000_0020), pos(genA, 3, 0),
	})
}

// testMissing opens and deletes objects that are not there, in an empty
// replica and next to objects that are.
func testMissing(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		if rc, err := c.OpenSnapshot(ctx, genA, 1); !errors.Is(err, os.ErrNotExist) {
			closeIf(rc)
			t.Errorf("%s: open of a missing snapshot: err = %v, want one wrapping os.ErrNotExist", when, err)
		}
		if rc, err := c.OpenSegment(ctx, pos(genA, 1, 0x20)); !errors.Is(err, os.ErrNotExist) {
			closeIf(rc)
			t.Errorf("%s: open of a missing segment: err = %v, want one wrapping os.ErrNotExist", when, err)
		}
		if err := c.DeleteSnapshot(ctx, genA, 1); err != nil {
			t.Errorf("%s: delete of a missing snapshot: %v", when, err)
		}
		if err := c.DeleteSegments(ctx, []litestream.Pos{pos(genA, 1, 0x20)}); err != nil {
			t.Errorf("%s: delete of a missing segment: %v", when, err)
		}
		if err := c.DeleteGeneration(ctx, genC); err != nil {
			t.Errorf("%s: delete of a missing generation: %v", when, err)
		}
	}
	check("empty replica")
	mustSnapshot(t, c, genA, 0, []byte("s0"))
	mustSnapshot(t, c, genA, 2, []byte("s2"))
	mustSegment(t, c, pos(genA, 1, 0), []byte("w0"))
	mustSegment(t, c, pos(genA, 1, 0x40), []byte("w1"))
	check("populated replica")
	checkSnapshot(t, c, genA, 0, []byte("s0"))
	checkSegment(t, c, pos(genA, 1, 0x40), []byte("w1"))
}

// testDelete checks that deletes remove exactly what they name.
func testDelete(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	mustSnapshot(t, c, genA, 1, []byte("a1"))
	mustSnapshot(t, c, genA, 2, []byte("a2"))
	for i := range 4 {
		mustSegment(t, c, pos(genA, 1, int64(i)*0x100), []byte{byte(i)})
	}
	mustSnapshot(t, c, genB, 1, []byte("b1"))
	mustSegment(t, c, pos(genB, 1, 0), []byte("b"))

	if err := c.DeleteSnapshot(ctx, genA, 1); err != nil {
		t.Fatalf("delete snapshot: %v", err)
	}
	snaps, err := c.Snapshots(ctx, genA)
	if err != nil || len(snaps) != 1 || snaps[0].Index != 2 {
		t.Fatalf("Snapshots after deleting index 1 = %+v, %v; want only index 2", snaps, err)
	}
	checkSnapshot(t, c, genA, 2, []byte("a2"))
	checkSnapshot(t, c, genB, 1, []byte("b1"))

	// Missing positions among present ones are skipped.
	del := []litestream.Pos{pos(genA, 1, 0), pos(genA, 1, 0x200), pos(genA, 1, 0x999), pos(genA, 7, 0)}
	if err := c.DeleteSegments(ctx, del); err != nil {
		t.Fatalf("delete segments: %v", err)
	}
	checkListed(t, c, genA, []litestream.Pos{pos(genA, 1, 0x100), pos(genA, 1, 0x300)})
	checkSegment(t, c, pos(genA, 1, 0x300), []byte{3})
	checkListed(t, c, genB, []litestream.Pos{pos(genB, 1, 0)})
	if err := c.DeleteSegments(ctx, nil); err != nil {
		t.Fatalf("delete of no segments: %v", err)
	}

	if err := c.DeleteGeneration(ctx, genA); err != nil {
		t.Fatalf("delete generation: %v", err)
	}
	if gens, err := c.Generations(ctx); err != nil || fmt.Sprint(gens) != fmt.Sprint([]string{genB}) {
		t.Fatalf("Generations after deleting %s = %v, %v; want [%s]", genA, gens, err, genB)
	}
	if s, err := c.Snapshots(ctx, genA); err != nil || len(s) != 0 {
		t.Fatalf("Snapshots of a deleted generation = %+v, %v", s, err)
	}
	if s, err := c.Segments(ctx, genA); err != nil || len(s) != 0 {
		t.Fatalf("Segments of a deleted generation = %+v, %v", s, err)
	}
	if rc, err := c.OpenSnapshot(ctx, genA, 2); !errors.Is(err, os.ErrNotExist) {
		closeIf(rc)
		t.Fatalf("open of a snapshot of a deleted generation: err = %v, want os.ErrNotExist", err)
	}
	checkSnapshot(t, c, genB, 1, []byte("b1"))
	checkSegment(t, c, pos(genB, 1, 0), []byte("b"))
	if err := c.DeleteGeneration(ctx, genA); err != nil {
		t.Fatalf("second delete of a generation: %v", err)
	}
}

// testLargeObject streams a snapshot larger than any multipart part size
// in and out, without holding it in memory.
func testLargeObject(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	info, err := c.WriteSnapshot(ctx, genA, 5, stream(20, LargeSize))
	if err != nil {
		t.Fatalf("write %d-byte snapshot: %v", LargeSize, err)
	}
	if info.Size != LargeSize {
		t.Errorf("WriteSnapshot returned size %d, want %d", info.Size, LargeSize)
	}
	snaps, err := c.Snapshots(ctx, genA)
	if err != nil || len(snaps) != 1 || snaps[0].Size != LargeSize {
		t.Fatalf("Snapshots = %+v, %v; want one of size %d", snaps, err, LargeSize)
	}
	rc, err := c.OpenSnapshot(ctx, genA, 5)
	if err != nil {
		t.Fatalf("open large snapshot: %v", err)
	}
	defer rc.Close()
	if same, n, err := sameStream(rc, stream(20, LargeSize)); !same {
		t.Fatalf("large snapshot read back differs after %d bytes (err %v)", n, err)
	}
}

// testManySegments lists more segments than one listing page holds, then
// deletes them all in one call.
func testManySegments(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	want := make([]litestream.Pos, ManyCount)
	for i := range want {
		want[i] = pos(genA, i/100, int64(i%100)*4120)
	}
	// Written by a few workers, in reverse order, to keep the case fast
	// and the listing's sort honest.
	var wg sync.WaitGroup
	errs := make([]error, len(want))
	const workers = 16
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := len(want) - 1 - w; i >= 0; i -= workers {
				_, errs[i] = c.WriteSegment(ctx, want[i], bytes.NewReader([]byte{byte(i), byte(i >> 8)}))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("write segments: %v", err)
	}
	segs := checkListed(t, c, genA, want)
	for _, s := range segs {
		if s.Size != 2 {
			t.Fatalf("segment %v listed with size %d, want 2", s.Pos(), s.Size)
		}
	}
	last := len(want) - 1
	checkSegment(t, c, want[last], []byte{byte(last), byte(last >> 8)})
	if err := c.DeleteSegments(ctx, want); err != nil {
		t.Fatalf("delete %d segments: %v", len(want), err)
	}
	if segs, err := c.Segments(ctx, genA); err != nil || len(segs) != 0 {
		t.Fatalf("%d segments left after deleting all, %v", len(segs), err)
	}
}

// testConcurrentGenerations has writers of different generations run at
// once; every object must land.
func testConcurrentGenerations(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	const nGen, nSeg = 6, 5
	gens := make([]string, nGen)
	errs := make([]error, nGen)
	var wg sync.WaitGroup
	for i := range gens {
		gens[i] = fmt.Sprintf("%016x", 0xa0+i)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range nSeg {
				p := pos(gens[i], 0, int64(j)*0x20)
				if _, err := c.WriteSegment(ctx, p, bytes.NewReader(content(uint64(100+i*nSeg+j), 2000))); err != nil {
					errs[i] = err
					return
				}
			}
			_, errs[i] = c.WriteSnapshot(ctx, gens[i], 0, bytes.NewReader(content(uint64(200+i), 3000)))
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent writes: %v", err)
	}
	got, err := c.Generations(ctx)
	if err != nil || fmt.Sprint(got) != fmt.Sprint(gens) {
		t.Fatalf("Generations = %v, %v; want %v", got, err, gens)
	}
	for i, g := range gens {
		var want []litestream.Pos
		for j := range nSeg {
			want = append(want, pos(g, 0, int64(j)*0x20))
			checkSegment(t, c, want[j], content(uint64(100+i*nSeg+j), 2000))
		}
		checkListed(t, c, g, want)
		checkSnapshot(t, c, g, 0, content(uint64(200+i), 3000))
	}
}

// testFailedWrite checks that a write whose reader fails, or whose context
// is canceled, returns an error and leaves no object, and that a failed
// overwrite keeps the previous object.
func testFailedWrite(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	if _, err := c.WriteSegment(ctx, pos(genA, 0, 0), failAfter(stream(30, 1000))); err == nil {
		t.Error("small write from a failing reader succeeded")
	}
	// Past the first multipart part, so that parts were already uploaded.
	if _, err := c.WriteSegment(ctx, pos(genA, 0, 0x20), failAfter(stream(31, 17<<20))); err == nil {
		t.Error("large write from a failing reader succeeded")
	}
	if _, err := c.WriteSnapshot(ctx, genA, 0, failAfter(stream(32, 10))); err == nil {
		t.Error("snapshot write from a failing reader succeeded")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.WriteSegment(canceled, pos(genA, 0, 0x40), bytes.NewReader([]byte("x"))); err == nil {
		t.Error("write with a canceled context succeeded")
	}
	// Canceled while the reader still has data.
	midway, cancel := context.WithCancel(ctx)
	r := &cancelingReader{r: stream(35, 1<<20), cancel: cancel}
	if _, err := c.WriteSegment(midway, pos(genA, 0, 0x60), r); err == nil {
		t.Error("write whose context was canceled midway succeeded")
	}
	if segs, err := c.Segments(ctx, genA); err != nil || len(segs) != 0 {
		t.Errorf("failed writes left segments %+v (%v)", segs, err)
	}
	if snaps, err := c.Snapshots(ctx, genA); err != nil || len(snaps) != 0 {
		t.Errorf("failed writes left snapshots %+v (%v)", snaps, err)
	}
	for _, p := range []litestream.Pos{pos(genA, 0, 0), pos(genA, 0, 0x20), pos(genA, 0, 0x40), pos(genA, 0, 0x60)} {
		if rc, err := c.OpenSegment(ctx, p); !errors.Is(err, os.ErrNotExist) {
			closeIf(rc)
			t.Errorf("open of segment %v after a failed write: err = %v, want os.ErrNotExist", p, err)
		}
	}

	old := content(33, 1500)
	mustSnapshot(t, c, genA, 1, old)
	if _, err := c.WriteSnapshot(ctx, genA, 1, failAfter(stream(34, 3000))); err == nil {
		t.Error("overwrite from a failing reader succeeded")
	}
	checkSnapshot(t, c, genA, 1, old)
}

// testInvalidPositions: every method refuses a generation, index or
// offset that has no name in the layout (Pos.Validate) and writes nothing.
func testInvalidPositions(t *testing.T, c litestream.ReplicaClient) {
	ctx := context.Background()
	bad := []litestream.Pos{
		pos("../0123456789ab", 0, 0), pos("0123456789ABCDEF", 0, 0), pos("", 0, 0),
		pos(genA, -1, 0), pos(genA, litestream.MaxIndex+1, 0),
		pos(genA, 0, -1), pos(genA, 0, litestream.MaxOffset+1),
	}
	for _, p := range bad {
		if _, err := c.WriteSegment(ctx, p, bytes.NewReader([]byte("x"))); err == nil {
			t.Errorf("WriteSegment(%+v) accepted", p)
		}
		if rc, err := c.OpenSegment(ctx, p); err == nil {
			rc.Close()
			t.Errorf("OpenSegment(%+v) accepted", p)
		}
		if err := c.DeleteSegments(ctx, []litestream.Pos{p}); err == nil {
			t.Errorf("DeleteSegments(%+v) accepted", p)
		}
		if p.Offset != 0 {
			continue // the snapshot methods take no offset
		}
		if _, err := c.WriteSnapshot(ctx, p.Generation, p.Index, bytes.NewReader([]byte("x"))); err == nil {
			t.Errorf("WriteSnapshot(%q, %d) accepted", p.Generation, p.Index)
		}
		if rc, err := c.OpenSnapshot(ctx, p.Generation, p.Index); err == nil {
			rc.Close()
			t.Errorf("OpenSnapshot(%q, %d) accepted", p.Generation, p.Index)
		}
		if err := c.DeleteSnapshot(ctx, p.Generation, p.Index); err == nil {
			t.Errorf("DeleteSnapshot(%q, %d) accepted", p.Generation, p.Index)
		}
		if p.Index != 0 {
			continue
		}
		if _, err := c.Snapshots(ctx, p.Generation); err == nil {
			t.Errorf("Snapshots(%q) accepted", p.Generation)
		}
		if _, err := c.Segments(ctx, p.Generation); err == nil {
			t.Errorf("Segments(%q) accepted", p.Generation)
		}
		if err := c.DeleteGeneration(ctx, p.Generation); err == nil {
			t.Errorf("DeleteGeneration(%q) accepted", p.Generation)
		}
	}
	if gens, err := c.Generations(ctx); err != nil || len(gens) != 0 {
		t.Fatalf("generations after invalid writes: %v, %v; want none", gens, err)
	}
}

func pos(gen string, index int, offset int64) litestream.Pos {
	return litestream.Pos{Generation: gen, Index: index, Offset: offset}
}

func mustSnapshot(t *testing.T, c litestream.ReplicaClient, gen string, index int, b []byte) {
	t.Helper()
	if _, err := c.WriteSnapshot(context.Background(), gen, index, bytes.NewReader(b)); err != nil {
		t.Fatalf("write snapshot %s/%08x: %v", gen, index, err)
	}
}

func mustSegment(t *testing.T, c litestream.ReplicaClient, p litestream.Pos, b []byte) {
	t.Helper()
	if _, err := c.WriteSegment(context.Background(), p, bytes.NewReader(b)); err != nil {
		t.Fatalf("write segment %v: %v", p, err)
	}
}

func checkSnapshot(t *testing.T, c litestream.ReplicaClient, gen string, index int, want []byte) {
	t.Helper()
	rc, err := c.OpenSnapshot(context.Background(), gen, index)
	checkRead(t, fmt.Sprintf("snapshot %s/%08x", gen, index), rc, err, want)
}

func checkSegment(t *testing.T, c litestream.ReplicaClient, p litestream.Pos, want []byte) {
	t.Helper()
	rc, err := c.OpenSegment(context.Background(), p)
	checkRead(t, "segment "+p.String(), rc, err, want)
}

func checkRead(t *testing.T, what string, rc io.ReadCloser, err error, want []byte) {
	t.Helper()
	if err != nil {
		t.Fatalf("open %s: %v", what, err)
	}
	got, err := io.ReadAll(rc)
	if cerr := rc.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("read %s: %v", what, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: read %d bytes that differ from the %d written", what, len(got), len(want))
	}
}

// checkListed lists gen's segments and expects exactly want, in order.
func checkListed(t *testing.T, c litestream.ReplicaClient, gen string, want []litestream.Pos) []litestream.SegmentInfo {
	t.Helper()
	segs, err := c.Segments(context.Background(), gen)
	if err != nil {
		t.Fatalf("list segments of %s: %v", gen, err)
	}
	if len(segs) != len(want) {
		t.Fatalf("listed %d segments of %s, want %d", len(segs), gen, len(want))
	}
	for i, s := range segs {
		if s.Pos() != want[i] {
			t.Fatalf("segment %d of %s listed as %v, want %v", i, gen, s.Pos(), want[i])
		}
	}
	return segs
}

// checkTime expects a store timestamp near the time of the write. Stores
// may keep whole seconds only, so allow a little on each side.
func checkTime(t *testing.T, what string, got, start time.Time) {
	t.Helper()
	const slack = 5 * time.Second
	if got.Before(start.Add(-slack)) || got.After(time.Now().Add(slack)) {
		t.Errorf("%s = %v, want between %v and now", what, got, start)
	}
}

func closeIf(rc io.ReadCloser) {
	if rc != nil {
		rc.Close()
	}
}
