package litestream_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// errStoreGone is what a storeGoesAway client answers once its store is
// gone.
var errStoreGone = errors.New("store unreachable")

// storeGoesAway is a replica client whose store goes away between two
// requests: after `after` writes and deletions have succeeded (a negative
// value: never), every further write and deletion fails. Reads keep
// working, except that OpenSegment fails with openErr when it is set, as a
// 503 or a timeout would.
type storeGoesAway struct {
	litestream.ReplicaClient
	mu      sync.Mutex
	after   int
	deletes int // deletions that succeeded
	openErr error
}

func (c *storeGoesAway) spend(deletion bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.after == 0 {
		return errStoreGone
	}
	if c.after > 0 {
		c.after--
	}
	if deletion {
		c.deletes++
	}
	return nil
}

func (c *storeGoesAway) deleted() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.deletes
}

func (c *storeGoesAway) WriteSnapshot(ctx context.Context, gen string, index int, r io.Reader) (litestream.SnapshotInfo, error) {
	if err := c.spend(false); err != nil {
		return litestream.SnapshotInfo{}, err
	}
	return c.ReplicaClient.WriteSnapshot(ctx, gen, index, r)
}

func (c *storeGoesAway) WriteSegment(ctx context.Context, pos litestream.Pos, r io.Reader) (litestream.SegmentInfo, error) {
	if err := c.spend(false); err != nil {
		return litestream.SegmentInfo{}, err
	}
	return c.ReplicaClient.WriteSegment(ctx, pos, r)
}

func (c *storeGoesAway) DeleteSnapshot(ctx context.Context, gen string, index int) error {
	if err := c.spend(true); err != nil {
		return err
	}
	return c.ReplicaClient.DeleteSnapshot(ctx, gen, index)
}

func (c *storeGoesAway) DeleteSegments(ctx context.Context, positions []litestream.Pos) error {
	if err := c.spend(true); err != nil {
		return err
	}
	return c.ReplicaClient.DeleteSegments(ctx, positions)
}

func (c *storeGoesAway) DeleteGeneration(ctx context.Context, gen string) error {
	if err := c.spend(true); err != nil {
		return err
	}
	return c.ReplicaClient.DeleteGeneration(ctx, gen)
}

func (c *storeGoesAway) OpenSegment(ctx context.Context, pos litestream.Pos) (io.ReadCloser, error) {
	c.mu.Lock()
	err := c.openErr
	c.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("GET %s: %w", litestream.SegmentPath(pos), err)
	}
	return c.ReplicaClient.OpenSegment(ctx, pos)
}

// replicaFiles lists the files of a replica directory with their sizes and
// modification times, to tell whether anything changed.
func replicaFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, fmt.Sprintf("%s %d %d", rel, fi.Size(), fi.ModTime().UnixNano()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

// restoredTx restores the replica in dir and returns how many of the
// writer's transactions it holds, or the error if it does not restore. A
// database that restores must pass the writer's check (integrity_check,
// every row).
func restoredTx(t *testing.T, dir string) (int, error) {
	t.Helper()
	out, err := tryRestore(t, dir, latest())
	if err != nil {
		return 0, err
	}
	m, err := sqlwriter.Verify(context.Background(), out)
	if err != nil {
		t.Fatalf("restored database: %v", err)
	}
	return m, nil
}

// replicaWithTwoIndexes writes a replica whose generation has its first
// snapshot at index 0 and whose current index, 1, is in several segments,
// with every snapshot expired, so that retention must start index 1 over.
func replicaWithTwoIndexes(t *testing.T) (*litestream.DB, *litestream.Replica, *sqlwriter.Writer, string) {
	t.Helper()
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	db, r := newTestDB(t, path, replicaDir)
	db.CheckpointInterval, db.MinCheckpointPageN = 0, 0
	t.Cleanup(func() { db.Close(ctx) })
	sync := func() {
		t.Helper()
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	commitRows(t, w, 20)
	sync()
	if err := db.Checkpoint(ctx, false); err != nil {
		t.Fatal(err)
	}
	sync()
	for i := 0; i < 3; i++ {
		commitRows(t, w, 10)
		sync()
	}
	pos := r.Pos()
	if pos.Index != 1 {
		t.Fatalf("replica at %s, want index 1", pos)
	}
	segs, _ := r.Client.Segments(ctx, pos.Generation)
	n := 0
	for _, s := range segs {
		if s.Index == 1 {
			n++
		}
	}
	if n < 3 {
		t.Fatalf("%d segments in index 1, want 3", n)
	}
	for _, s := range mustSnapshots(t, r, pos.Generation) {
		age(t, filepath.Join(replicaDir, "generations", pos.Generation, "snapshots", litestream.SnapshotName(s.Index)), 48*time.Hour)
	}
	return db, r, w, replicaDir
}

// TestRetention_StoreGoneDuringRestart: retention finds no kept snapshot in
// the current generation and starts its current index over. Whichever
// request the store goes away at, a restore from the replica still holds
// every commit the replica held before.
func TestRetention_StoreGoneDuringRestart(t *testing.T) {
	ctx := context.Background()
	_, r, w, replicaDir := replicaWithTwoIndexes(t)
	gen := r.Pos().Generation
	for after := 0; ; after++ {
		dir := copyDir(t, replicaDir)
		r.Client = &storeGoesAway{ReplicaClient: file.NewReplicaClient(dir), after: after}
		err := r.EnforceRetention(ctx)
		if err != nil && !errors.Is(err, errStoreGone) {
			t.Fatalf("store gone after %d requests: %v", after, err)
		}
		m, rerr := restoredTx(t, dir)
		if rerr != nil || m != w.LastTx() {
			t.Fatalf("store gone after %d requests (retention: %v): restored %d of %d transactions (%v)", after, err, m, w.LastTx(), rerr)
		}
		if err == nil {
			snaps := mustSnapshots(t, r, gen)
			if len(snaps) != 1 || snaps[0].Index != 1 || time.Since(snaps[0].CreatedAt) > time.Hour {
				t.Fatalf("want one fresh snapshot at index 1, got %+v", snaps)
			}
			return
		}
		if after > 20 {
			t.Fatal("retention never completed")
		}
	}
}

// TestRetention_RestartHeals: retention starts the current index over in a
// replica that lost a segment of it (deleted by hand) and holds objects
// past the shadow WAL (a history the database does not have): the lost
// segment is written again, those objects go, and the replica restores
// everything.
func TestRetention_RestartHeals(t *testing.T) {
	ctx := context.Background()
	db, r, w, replicaDir := replicaWithTwoIndexes(t)
	pos := r.Pos()
	genDir := filepath.Join(replicaDir, "generations", pos.Generation)
	segs, _ := r.Client.Segments(ctx, pos.Generation)
	var mid litestream.SegmentInfo
	for _, s := range segs {
		if s.Index == 1 && s.Offset > 0 {
			mid = s
			break
		}
	}
	if err := os.Remove(filepath.Join(genDir, "wal", litestream.SegmentName(mid.Index, mid.Offset))); err != nil {
		t.Fatal(err)
	}
	var beyond []string
	for _, name := range []string{
		"wal/" + litestream.SegmentName(1, pos.Offset+1<<20),
		"wal/" + litestream.SegmentName(2, 0),
		"snapshots/" + litestream.SnapshotName(2),
	} {
		p := filepath.Join(genDir, name)
		if err := os.WriteFile(p, []byte("not ours"), 0o644); err != nil {
			t.Fatal(err)
		}
		age(t, p, 48*time.Hour)
		beyond = append(beyond, p)
	}
	commitRows(t, w, 5) // the restart writes these too
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range beyond {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: still there (%v)", p, err)
		}
	}
	requireRestoresAll(t, replicaDir, w)
	commitRows(t, w, 5)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	requireRestoresAll(t, replicaDir, w)
}

// TestReplica_TransientLocateError: on start, the store answers the read
// of the replica's last segment with an error that proves nothing about
// the segment (a 503), then goes away. The sync fails and deletes nothing;
// once the store answers again, the replica continues where it was.
func TestReplica_TransientLocateError(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	db, r := newTestDB(t, path, replicaDir)
	for i := 0; i < 3; i++ {
		commitRows(t, w, 10)
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	gen := r.Pos().Generation
	nsnaps := len(mustSnapshots(t, r, gen))
	before := replicaFiles(t, replicaDir)

	db, r = newTestDB(t, path, replicaDir)
	defer db.Close(ctx)
	c := &storeGoesAway{ReplicaClient: r.Client, after: 1, openErr: errors.New("503 Slow Down")}
	r.Client = c
	if err := r.Sync(ctx); err == nil {
		t.Fatal("sync succeeded without reading the last segment")
	}
	if n := c.deleted(); n != 0 {
		t.Fatalf("%d deletions after a transient error", n)
	}
	if after := replicaFiles(t, replicaDir); !slices.Equal(after, before) {
		t.Fatalf("replica changed after a transient error:\nbefore %q\nafter  %q", before, after)
	}
	requireRestoresAll(t, replicaDir, w)

	c.mu.Lock()
	c.openErr, c.after = nil, -1
	c.mu.Unlock()
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if r.Pos().Generation != gen {
		t.Fatalf("generation %s, want %s", r.Pos().Generation, gen)
	}
	if n := len(mustSnapshots(t, r, gen)); n != nsnaps || c.deleted() != 0 {
		t.Fatalf("%d snapshots (want %d), %d deletions: the replica was started over", n, nsnaps, c.deleted())
	}
	commitRows(t, w, 5)
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	requireRestoresAll(t, replicaDir, w)
}

// TestReplica_DamagedLastSegmentStoreGone: on start the replica's last
// segment does not decode, a definite answer, so the index starts over.
// Whichever request the store goes away at, a restore holds at least the
// commits before that segment.
func TestReplica_DamagedLastSegmentStoreGone(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	db, r := newTestDB(t, path, replicaDir)
	held := 0
	for i := 0; i < 3; i++ {
		held = w.LastTx()
		commitRows(t, w, 10)
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	segs, _ := r.Client.Segments(ctx, r.Pos().Generation)
	last := segs[len(segs)-1]
	p := filepath.Join(replicaDir, "generations", last.Generation, "wal", litestream.SegmentName(last.Index, last.Offset))
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}

	for after := 0; ; after++ {
		dir := copyDir(t, replicaDir)
		db, r := newTestDB(t, path, dir)
		r.Client = &storeGoesAway{ReplicaClient: r.Client, after: after}
		err := r.Sync(ctx)
		if err := db.Close(ctx); err != nil && !errors.Is(err, errStoreGone) {
			t.Fatal(err)
		}
		if err != nil && !errors.Is(err, errStoreGone) {
			t.Fatalf("store gone after %d requests: %v", after, err)
		}
		// The damaged segment fails the restore until it is written again.
		if m, rerr := restoredTx(t, dir); rerr == nil && m < held {
			t.Fatalf("store gone after %d requests (sync: %v): restored %d transactions, the replica held %d", after, err, m, held)
		}
		if err == nil {
			requireRestoresAll(t, dir, w)
			return
		}
		if after > 20 {
			t.Fatal("sync never completed")
		}
	}
}
