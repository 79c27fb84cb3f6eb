package litestream_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/sqlwriter"
	"github.com/litestream-go/litestream/internal/testutil"
)

// history is a replica written in steps, with what was committed at each.
type history struct {
	dir        string
	indexTx    map[int]int // shadow index -> transactions committed when it ended
	lastIndex  int
	lastTx     int
	midTime    time.Time // between the first and second half of the writes
	midTx      int
	segmentDir string
}

// buildHistory writes three rounds of transactions with a checkpoint (and
// so a new shadow index) after each, syncing the engine by hand.
func buildHistory(t *testing.T) history {
	t.Helper()
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	db, r := newTestDB(t, path, replicaDir)
	db.CheckpointInterval = 0
	db.MinCheckpointPageN = 0
	h := history{dir: replicaDir, indexTx: map[int]int{}}
	sync := func() {
		t.Helper()
		if err := db.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if err := r.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	for round := 0; round < 3; round++ {
		for i := 0; i < 30; i++ {
			if _, err := w.Commit(ctx, 1+i%3, 700); err != nil {
				t.Fatal(err)
			}
			if i%10 == 9 {
				sync() // several segments per index
			}
		}
		sync()
		if round == 1 {
			time.Sleep(20 * time.Millisecond)
			h.midTime, h.midTx = time.Now(), w.LastTx()
			time.Sleep(20 * time.Millisecond)
		}
		h.indexTx[r.Pos().Index] = w.LastTx()
		if err := db.Checkpoint(ctx, false); err != nil {
			t.Fatal(err)
		}
		sync()
	}
	h.lastIndex, h.lastTx = r.Pos().Index, w.LastTx()
	h.segmentDir = filepath.Join(replicaDir, "generations", r.Pos().Generation, "wal")
	if err := db.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

// tryRestore plans and runs a restore into a fresh directory and returns
// the output path and the error.
func tryRestore(t *testing.T, dir string, opt litestream.RestoreOptions) (string, error) {
	t.Helper()
	ctx := context.Background()
	r := litestream.NewReplica("file", file.NewReplicaClient(dir))
	out := filepath.Join(t.TempDir(), "out.db")
	plan, err := litestream.PlanRestore(ctx, []*litestream.Replica{r}, opt)
	if err != nil {
		return out, err
	}
	return out, litestream.Restore(ctx, plan, out, opt)
}

// assertNothingLeft checks that a failed restore left no output and no
// temporary file next to it.
func assertNothingLeft(t *testing.T, out string) {
	t.Helper()
	ents, _ := os.ReadDir(filepath.Dir(out))
	for _, e := range ents {
		t.Errorf("left behind after a failed restore: %s", e.Name())
	}
}

func TestRestore_PointInTime(t *testing.T) {
	h := buildHistory(t)
	if _, m := restoreLatest(t, h.dir, latest()); m != h.lastTx {
		t.Fatalf("latest: %d transactions, want %d", m, h.lastTx)
	}
	for index, want := range h.indexTx {
		opt := latest()
		opt.Index = index
		out, err := tryRestore(t, h.dir, opt)
		if err != nil {
			t.Fatalf("index %x: %v", index, err)
		}
		if m, err := sqlwriter.Verify(context.Background(), out); err != nil || m != want {
			t.Fatalf("index %x: %d transactions (%v), want %d", index, m, err, want)
		}
	}
	opt := latest()
	opt.Timestamp = h.midTime
	out, err := tryRestore(t, h.dir, opt)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := sqlwriter.Verify(context.Background(), out); err != nil || m != h.midTx {
		t.Fatalf("timestamp: %d transactions (%v), want %d", m, err, h.midTx)
	}
}

func TestRestore_BadInput(t *testing.T) {
	h := buildHistory(t)
	segs, _ := os.ReadDir(h.segmentDir)
	if len(segs) < 6 {
		t.Fatalf("only %d segments", len(segs))
	}

	t.Run("timestamp before oldest backup", func(t *testing.T) {
		opt := latest()
		opt.Timestamp = time.Now().Add(-time.Hour)
		out, err := tryRestore(t, h.dir, opt)
		if !errors.Is(err, litestream.ErrNoBackup) || !strings.Contains(err.Error(), "before the oldest backup") {
			t.Fatalf("err = %v", err)
		}
		assertNothingLeft(t, out)
	})
	t.Run("index past the end", func(t *testing.T) {
		opt := latest()
		opt.Index = h.lastIndex + 5
		if _, err := tryRestore(t, h.dir, opt); err == nil || !strings.Contains(err.Error(), litestream.FormatIndex(h.lastIndex)) {
			t.Fatalf("err = %v, want the highest index named", err)
		}
	})
	t.Run("output exists", func(t *testing.T) {
		ctx := context.Background()
		r := litestream.NewReplica("file", file.NewReplicaClient(h.dir))
		plan, err := litestream.PlanRestore(ctx, []*litestream.Replica{r}, latest())
		if err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(t.TempDir(), "exists.db")
		os.WriteFile(out, []byte("precious"), 0o644)
		if err := litestream.Restore(ctx, plan, out, latest()); err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Fatalf("err = %v", err)
		}
		if b, _ := os.ReadFile(out); string(b) != "precious" {
			t.Fatal("existing output was modified")
		}
	})

	// Each damage below must make restore fail naming the file, with
	// nothing left behind. dir is the segment directory.
	flipSegmentByte := func(t *testing.T, dir string) string {
		name := middleSegment(t, dir, true)
		p := filepath.Join(dir, name)
		b, _ := os.ReadFile(p)
		b[len(b)/2] ^= 0x40
		os.WriteFile(p, b, 0o644)
		return name
	}
	truncateSnapshot := func(t *testing.T, dir string) string {
		snapDir := filepath.Join(filepath.Dir(dir), "snapshots")
		ents, _ := os.ReadDir(snapDir)
		p := filepath.Join(snapDir, ents[len(ents)-1].Name())
		b, _ := os.ReadFile(p)
		os.WriteFile(p, b[:len(b)/2], 0o644)
		return ents[len(ents)-1].Name()
	}
	damage := []struct {
		name   string
		damage func(t *testing.T, dir string) string // returns the file name expected in the error
	}{
		{"missing middle segment", func(t *testing.T, dir string) string {
			name := middleSegment(t, dir, false)
			os.Remove(filepath.Join(dir, name))
			return strings.SplitN(name, "_", 2)[0]
		}},
		{"flipped byte in segment", flipSegmentByte},
		{"truncated segment", func(t *testing.T, dir string) string {
			name := middleSegment(t, dir, true)
			p := filepath.Join(dir, name)
			b, _ := os.ReadFile(p)
			os.WriteFile(p, b[:len(b)-9], 0o644)
			return name
		}},
		{"truncated snapshot", truncateSnapshot},
		// The two below pass the download (valid LZ4) and are caught while
		// indexing the frames, which runs while the snapshot downloads.
		{"missing later segment", func(t *testing.T, dir string) string {
			os.Remove(filepath.Join(dir, middleSegment(t, dir, true)))
			return "a segment is missing"
		}},
		{"re-encoded segment with a flipped byte", func(t *testing.T, dir string) string {
			name := middleSegment(t, dir, true)
			p := filepath.Join(dir, name)
			f, err := os.Open(p)
			if err != nil {
				t.Fatal(err)
			}
			dec, err := (litestream.Codec{}).NewDecoder(f)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(dec)
			f.Close()
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x40
			var enc bytes.Buffer
			if _, err := (litestream.Codec{}).Encode(&enc, bytes.NewReader(b)); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(p, enc.Bytes(), 0o644)
			return name
		}},
		// The snapshot and the segments download side by side; with both
		// damaged, the error names one of them, not the cancellation of
		// the other.
		{"truncated snapshot and flipped byte in segment", func(t *testing.T, dir string) string {
			return truncateSnapshot(t, dir) + "|" + flipSegmentByte(t, dir)
		}},
	}
	for _, tc := range damage {
		t.Run(tc.name, func(t *testing.T) {
			dir := copyDir(t, h.dir)
			segDir := filepath.Join(dir, strings.TrimPrefix(h.segmentDir, h.dir))
			want := tc.damage(t, segDir)
			out, err := tryRestore(t, dir, latest())
			if err == nil {
				t.Fatal("restore of a damaged replica succeeded")
			}
			named := false
			for _, name := range strings.Split(want, "|") {
				named = named || strings.Contains(err.Error(), name)
			}
			if !named || strings.Contains(err.Error(), "context canceled") {
				t.Fatalf("error does not name %s: %v", want, err)
			}
			// A file removed is missing, not damaged; any other damage is.
			if tc.name != "missing middle segment" && !errors.Is(err, litestream.ErrReplicaDamaged) {
				t.Fatalf("error does not wrap ErrReplicaDamaged: %v", err)
			}
			assertNothingLeft(t, out)
		})
	}
}

// middleSegment returns the name of a segment in the middle of the last
// index; with later true, one that is not the first of its index.
func middleSegment(t *testing.T, dir string, later bool) string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	last, _, _ := litestream.ParseSegmentName(ents[len(ents)-1].Name())
	var names []string
	for _, e := range ents {
		if idx, off, _ := litestream.ParseSegmentName(e.Name()); idx == last-1 && (off > 0 || !later) {
			names = append(names, e.Name())
		}
	}
	if len(names) == 0 {
		t.Fatal("no segment to damage")
	}
	if later {
		return names[len(names)/2]
	}
	return names[0]
}

func copyDir(t *testing.T, src string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), "replica")
	testutil.CopyTree(t, src, dst)
	return dst
}

// BenchmarkRestoreApply restores a replica with a long WAL history of many
// small segments; MB/s counts the restored database size.
func BenchmarkRestoreApply(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	path, replicaDir := filepath.Join(dir, "app.db"), filepath.Join(dir, "replica")
	w, err := sqlwriter.Open(ctx, path, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer w.Close()
	db := litestream.NewDB(path)
	db.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	litestream.CheckInvariantsOnClose(b, db)
	r := litestream.NewReplica("file", file.NewReplicaClient(replicaDir))
	db.AddReplica(r)
	for i := 0; i < 2000; i++ {
		if _, err := w.Commit(ctx, 2, 1500); err != nil {
			b.Fatal(err)
		}
		if i%10 == 9 {
			if err := db.Sync(ctx); err != nil {
				b.Fatal(err)
			}
			if err := r.Sync(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	db.Close(ctx)
	fi, _ := os.Stat(path)
	b.SetBytes(fi.Size())
	opt := litestream.RestoreOptions{Index: litestream.NoIndex, Logger: db.Logger}
	for i := 0; b.Loop(); i++ {
		plan, err := litestream.PlanRestore(ctx, []*litestream.Replica{r}, opt)
		if err != nil {
			b.Fatal(err)
		}
		if err := litestream.Restore(ctx, plan, filepath.Join(dir, fmt.Sprintf("out%d.db", i)), opt); err != nil {
			b.Fatal(err)
		}
	}
}
