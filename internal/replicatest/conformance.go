// Package replicatest is the conformance suite every replica backend runs:
// the same cases against the file replica, S3 on a real server, and any
// later backend.
package replicatest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
)

// RunConformance runs every case; newClient returns a fresh, empty replica
// each call.
func RunConformance(t *testing.T, newClient func(t *testing.T) litestream.ReplicaClient) {
	const gen, gen2 = "0123456789abcdef", "fedcba9876543210"
	ctx := context.Background()

	t.Run("RoundTrip", func(t *testing.T) {
		c := newClient(t)
		before := time.Now().Add(-time.Minute)
		snap := randomBytes(1, 5000)
		info, err := c.WriteSnapshot(ctx, gen, 3, bytes.NewReader(snap))
		if err != nil {
			t.Fatal(err)
		}
		if info.Index != 3 || info.Size != int64(len(snap)) {
			t.Fatalf("snapshot info %+v", info)
		}
		seg := randomBytes(2, 3000)
		pos := litestream.Pos{Generation: gen, Index: 3, Offset: 0x4080}
		if _, err := c.WriteSegment(ctx, pos, bytes.NewReader(seg)); err != nil {
			t.Fatal(err)
		}
		assertContent(t, "snapshot", openSnap(ctx, c, gen, 3), snap)
		assertContent(t, "segment", openSeg(ctx, c, pos), seg)
		snaps, err := c.Snapshots(ctx, gen)
		if err != nil || len(snaps) != 1 || snaps[0].Size != int64(len(snap)) || snaps[0].CreatedAt.Before(before) || snaps[0].CreatedAt.After(time.Now().Add(time.Minute)) {
			t.Fatalf("snapshots %+v, %v", snaps, err)
		}
		segs, err := c.Segments(ctx, gen)
		if err != nil || len(segs) != 1 || segs[0].Pos() != pos || segs[0].Size != int64(len(seg)) || segs[0].CreatedAt.Before(before) {
			t.Fatalf("segments %+v, %v", segs, err)
		}
	})

	t.Run("ListingOrderAndGenerations", func(t *testing.T) {
		c := newClient(t)
		if gens, err := c.Generations(ctx); err != nil || len(gens) != 0 {
			t.Fatalf("empty replica generations %v, %v", gens, err)
		}
		for _, g := range []string{gen2, gen} {
			for _, idx := range []int{10, 2} {
				mustWrite(t)(c.WriteSnapshot(ctx, g, idx, bytes.NewReader([]byte("s"))))
			}
		}
		// Offsets with more than 8 hex digits sort numerically.
		positions := []litestream.Pos{p(gen, 2, 0x100000020), p(gen, 2, 0), p(gen, 1, 0x4080), p(gen, 2, 0xfffffff0), p(gen, 10, 0)}
		for _, p := range positions {
			mustWrite(t)(c.WriteSegment(ctx, p, bytes.NewReader([]byte("w"))))
		}
		gens, err := c.Generations(ctx)
		if err != nil || len(gens) != 2 || gens[0] != gen || gens[1] != gen2 {
			t.Fatalf("generations %v, %v", gens, err)
		}
		snaps, _ := c.Snapshots(ctx, gen)
		if len(snaps) != 2 || snaps[0].Index != 2 || snaps[1].Index != 10 {
			t.Fatalf("snapshots %+v", snaps)
		}
		segs, _ := c.Segments(ctx, gen)
		want := []litestream.Pos{p(gen, 1, 0x4080), p(gen, 2, 0), p(gen, 2, 0xfffffff0), p(gen, 2, 0x100000020), p(gen, 10, 0)}
		if len(segs) != len(want) {
			t.Fatalf("segments %+v", segs)
		}
		for i := range want {
			if segs[i].Pos() != want[i] {
				t.Fatalf("segment %d = %v, want %v", i, segs[i].Pos(), want[i])
			}
		}
		if s, err := c.Segments(ctx, "00000000deadbeef"); err != nil || len(s) != 0 {
			t.Fatalf("unknown generation: %v, %v", s, err)
		}
	})

	t.Run("Missing", func(t *testing.T) {
		c := newClient(t)
		if _, err := c.OpenSnapshot(ctx, gen, 1); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open missing snapshot: %v", err)
		}
		if _, err := c.OpenSegment(ctx, litestream.Pos{Generation: gen, Index: 1}); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("open missing segment: %v", err)
		}
		if err := c.DeleteSnapshot(ctx, gen, 1); err != nil {
			t.Fatalf("delete missing snapshot: %v", err)
		}
		if err := c.DeleteSegments(ctx, []litestream.Pos{{Generation: gen, Index: 1}}); err != nil {
			t.Fatalf("delete missing segment: %v", err)
		}
	})

	t.Run("Delete", func(t *testing.T) {
		c := newClient(t)
		mustWrite(t)(c.WriteSnapshot(ctx, gen, 1, bytes.NewReader([]byte("a"))))
		mustWrite(t)(c.WriteSnapshot(ctx, gen, 2, bytes.NewReader([]byte("b"))))
		for off := int64(0); off < 3; off++ {
			mustWrite(t)(c.WriteSegment(ctx, litestream.Pos{Generation: gen, Index: 1, Offset: off * 100}, bytes.NewReader([]byte("c"))))
		}
		mustWrite(t)(c.WriteSnapshot(ctx, gen2, 1, bytes.NewReader([]byte("d"))))
		if err := c.DeleteSnapshot(ctx, gen, 1); err != nil {
			t.Fatal(err)
		}
		if err := c.DeleteSegments(ctx, []litestream.Pos{{Generation: gen, Index: 1, Offset: 0}, {Generation: gen, Index: 1, Offset: 200}}); err != nil {
			t.Fatal(err)
		}
		snaps, _ := c.Snapshots(ctx, gen)
		segs, _ := c.Segments(ctx, gen)
		if len(snaps) != 1 || snaps[0].Index != 2 || len(segs) != 1 || segs[0].Offset != 100 {
			t.Fatalf("after deletes: %+v %+v", snaps, segs)
		}
		if err := c.DeleteGeneration(ctx, gen); err != nil {
			t.Fatal(err)
		}
		gens, _ := c.Generations(ctx)
		if len(gens) != 1 || gens[0] != gen2 {
			t.Fatalf("generations after delete: %v", gens)
		}
	})

	t.Run("LargeObject", func(t *testing.T) {
		c := newClient(t)
		const size = 20<<20 + 12345 // over any multipart part size
		pos := litestream.Pos{Generation: gen, Index: 0}
		info, err := c.WriteSegment(ctx, pos, io.LimitReader(newPRNG(9), size))
		if err != nil {
			t.Fatal(err)
		}
		if info.Size != size {
			t.Fatalf("size %d", info.Size)
		}
		rc, err := c.OpenSegment(ctx, pos)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		if !sameStream(rc, io.LimitReader(newPRNG(9), size)) {
			t.Fatal("large object differs")
		}
	})

	t.Run("ManySegments", func(t *testing.T) {
		c := newClient(t)
		const n = 1100 // past one listing page of 1000
		var wg sync.WaitGroup
		errc := make(chan error, n)
		sem := make(chan struct{}, 16)
		for i := 0; i < n; i++ {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer wg.Done()
				defer func() { <-sem }()
				_, err := c.WriteSegment(ctx, litestream.Pos{Generation: gen, Index: i / 100, Offset: int64(i%100) * 4120}, bytes.NewReader([]byte{byte(i)}))
				errc <- err
			}()
		}
		wg.Wait()
		close(errc)
		for err := range errc {
			if err != nil {
				t.Fatal(err)
			}
		}
		segs, err := c.Segments(ctx, gen)
		if err != nil || len(segs) != n {
			t.Fatalf("listed %d segments, %v", len(segs), err)
		}
		for i := 1; i < n; i++ {
			if !segs[i-1].Pos().Less(segs[i].Pos()) {
				t.Fatalf("out of order at %d", i)
			}
		}
		pos := make([]litestream.Pos, n)
		for i, s := range segs {
			pos[i] = s.Pos()
		}
		if err := c.DeleteSegments(ctx, pos); err != nil {
			t.Fatal(err)
		}
		if segs, _ := c.Segments(ctx, gen); len(segs) != 0 {
			t.Fatalf("%d segments left after delete", len(segs))
		}
	})

	t.Run("ConcurrentGenerations", func(t *testing.T) {
		c := newClient(t)
		var wg sync.WaitGroup
		gens := make([]string, 6)
		for i := range gens {
			gens[i] = fmt.Sprintf("%016x", 0xa0+i)
			wg.Add(1)
			go func() {
				defer wg.Done()
				for j := 0; j < 5; j++ {
					if _, err := c.WriteSegment(ctx, litestream.Pos{Generation: gens[i], Offset: int64(j)}, bytes.NewReader(randomBytes(uint64(i*10+j), 2000))); err != nil {
						t.Error(err)
					}
				}
			}()
		}
		wg.Wait()
		got, _ := c.Generations(ctx)
		if len(got) != len(gens) {
			t.Fatalf("generations %v", got)
		}
		for i, g := range gens {
			assertContent(t, "segment", openSeg(ctx, c, litestream.Pos{Generation: g, Offset: 3}), randomBytes(uint64(i*10+3), 2000))
		}
	})

	t.Run("FailedWriteLeavesNothing", func(t *testing.T) {
		c := newClient(t)
		r := io.MultiReader(bytes.NewReader(randomBytes(5, 1000)), errReader{})
		if _, err := c.WriteSegment(ctx, litestream.Pos{Generation: gen}, r); err == nil {
			t.Fatal("write from a failing reader succeeded")
		}
		big := io.MultiReader(io.LimitReader(newPRNG(3), 17<<20), errReader{})
		if _, err := c.WriteSnapshot(ctx, gen, 0, big); err == nil {
			t.Fatal("large write from a failing reader succeeded")
		}
		segs, _ := c.Segments(ctx, gen)
		snaps, _ := c.Snapshots(ctx, gen)
		if len(segs) != 0 || len(snaps) != 0 {
			t.Fatalf("failed writes left %+v %+v", segs, snaps)
		}
	})
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("injected read failure") }

func mustWrite(t *testing.T) func(any, error) {
	return func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
}

func openSnap(ctx context.Context, c litestream.ReplicaClient, gen string, idx int) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return c.OpenSnapshot(ctx, gen, idx) }
}

func openSeg(ctx context.Context, c litestream.ReplicaClient, p litestream.Pos) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return c.OpenSegment(ctx, p) }
}

func assertContent(t *testing.T, what string, open func() (io.ReadCloser, error), want []byte) {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatalf("open %s: %v", what, err)
	}
	defer rc.Close()
	got, err := io.ReadAll(rc)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("%s: read %d bytes (%v), want %d identical bytes", what, len(got), err, len(want))
	}
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	io.ReadFull(newPRNG(seed), b)
	return b
}

// prng is a deterministic stream of pseudo-random bytes.
type prng struct{ r *rand.Rand }

func newPRNG(seed uint64) *prng { return &prng{rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))} }

func (p *prng) Read(b []byte) (int, error) {
	for i := range b {
		b[i] = byte(p.r.Uint32())
	}
	return len(b), nil
}

func sameStream(a, b io.Reader) bool {
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(a, ba)
		nb, eb := io.ReadFull(b, bb)
		if na != nb || !bytes.Equal(ba[:na], bb[:nb]) {
			return false
		}
		if ea != nil || eb != nil {
			return (ea == io.EOF || ea == io.ErrUnexpectedEOF) && (eb == io.EOF || eb == io.ErrUnexpectedEOF)
		}
	}
}

func p(gen string, index int, offset int64) litestream.Pos {
	return litestream.Pos{Generation: gen, Index: index, Offset: offset}
}
