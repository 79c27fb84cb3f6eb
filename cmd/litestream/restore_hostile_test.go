package main

import (
	"bytes"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/walformat"
	"github.com/pierrec/lz4/v4"
)

// The tests in this file give the built binary replicas that are damaged
// or not what they seem, and require one line naming what is wrong, exit
// 1, and nothing written; or, where the replica is sound (a padded name),
// the whole restore.

const hostileGen = "00000000000000aa"

// hostileReplica is a directory replica written by hand: a snapshot of a
// real database and WAL segments whose frames the test chooses.
type hostileReplica struct {
	t        *testing.T
	dir      string
	db       []byte // the snapshot's raw bytes
	pageSize int
	hdr      walformat.Header
	s1, s2   uint32 // cumulative checksum after the last frame made
}

// newHostileReplica makes a 3-table database of 4096-byte pages and
// stores it as snapshot 0 of hostileGen.
func newHostileReplica(t *testing.T) *hostileReplica {
	t.Helper()
	path := filepath.Join(t.TempDir(), "src.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"PRAGMA page_size=4096", "CREATE TABLE a (x TEXT)", "CREATE TABLE b (x TEXT)", "CREATE INDEX bx ON b (x)",
		"INSERT INTO a VALUES (hex(randomblob(3000)))", "INSERT INTO b VALUES (hex(randomblob(3000)))"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	h := &hostileReplica{t: t, dir: filepath.Join(t.TempDir(), "replica"), db: raw, pageSize: 4096}
	h.hdr = walformat.Header{Magic: walformat.MagicLE, Version: walformat.Version, PageSize: 4096, Salt1: 0x1234, Salt2: 0x5678}
	b := h.hdr.Encode()
	h.hdr.Checksum1, h.hdr.Checksum2 = walformat.Checksum(binary.LittleEndian, 0, 0, b[:24])
	h.s1, h.s2 = h.hdr.Checksum1, h.hdr.Checksum2
	h.put("snapshots/00000000.snapshot.lz4", encodeLZ4(t, raw, -1))
	return h
}

// header returns the WAL header bytes.
func (h *hostileReplica) header() []byte { return h.hdr.Encode() }

// frame returns a valid frame of page pgno holding page, continuing the
// checksum, with the given commit size (0: not a commit).
func (h *hostileReplica) frame(pgno, commit uint32, page []byte) []byte {
	fh := make([]byte, walformat.FrameHeaderSize)
	binary.BigEndian.PutUint32(fh[0:], pgno)
	binary.BigEndian.PutUint32(fh[4:], commit)
	binary.BigEndian.PutUint32(fh[8:], h.hdr.Salt1)
	binary.BigEndian.PutUint32(fh[12:], h.hdr.Salt2)
	s1, s2 := walformat.Checksum(binary.LittleEndian, h.s1, h.s2, fh[:8])
	s1, s2 = walformat.Checksum(binary.LittleEndian, s1, s2, page)
	binary.BigEndian.PutUint32(fh[16:], s1)
	binary.BigEndian.PutUint32(fh[20:], s2)
	h.s1, h.s2 = s1, s2
	return append(fh, page...)
}

// page returns page n (1-based) of the snapshot.
func (h *hostileReplica) page(n int) []byte {
	return bytes.Clone(h.db[(n-1)*h.pageSize : n*h.pageSize])
}

// pages is the snapshot's page count.
func (h *hostileReplica) pages() uint32 { return uint32(len(h.db) / h.pageSize) }

// frameSize is one frame's bytes.
func (h *hostileReplica) frameSize() int64 { return int64(walformat.FrameHeaderSize + h.pageSize) }

// put writes stored bytes at a path relative to the generation.
func (h *hostileReplica) put(rel string, stored []byte) {
	h.t.Helper()
	p := filepath.Join(h.dir, "generations", hostileGen, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		h.t.Fatal(err)
	}
	if err := os.WriteFile(p, stored, 0o644); err != nil {
		h.t.Fatal(err)
	}
}

// segment stores raw WAL bytes as the segment at offset of index 0.
func (h *hostileReplica) segment(offset int64, raw []byte) {
	h.put("wal/"+litestream.SegmentName(0, offset), encodeLZ4(h.t, raw, -1))
}

// encodeLZ4 returns raw as an LZ4 frame, declaring size as its content
// size when size >= 0.
func encodeLZ4(t *testing.T, raw []byte, size int64) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := lz4.NewWriter(&b)
	lying := size >= 0 && size != int64(len(raw))
	opts := []lz4.Option{lz4.ChecksumOption(!lying)}
	if size >= 0 {
		opts = append(opts, lz4.SizeOption(uint64(size)))
	}
	if err := zw.Apply(opts...); err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); lying {
		// The writer refuses to end a frame that lies about its size: end
		// it by hand (the end mark; no content checksum).
		return append(b.Bytes(), 0, 0, 0, 0)
	} else if err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// requireRefused runs restore of the replica and requires the refusal:
// exit 1, one line holding every want, nothing left in the output's
// directory.
func requireRefused(t *testing.T, bin, replica string, want ...string) {
	t.Helper()
	outDir := t.TempDir()
	r := runCLI(t, bin, outDir, "restore", "-o", filepath.Join(outDir, "out.db"), replica)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if r.code != 1 || r.stdout != "" || !strings.HasPrefix(last, "litestream restore: ") {
		t.Fatalf("want exit 1 and an error line; got exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	for _, l := range lines[:len(lines)-1] {
		if !strings.HasPrefix(l, "restoring ") {
			t.Errorf("stderr has more than the plan and the error: %q", l)
		}
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("error %q does not say %q", last, w)
		}
	}
	if strings.Contains(r.stderr, "lz4: lz4:") {
		t.Errorf("doubled lz4 prefix: %s", r.stderr)
	}
	if ents, _ := os.ReadDir(outDir); len(ents) != 0 {
		t.Errorf("a refused restore left %v", ents)
	}
}

// TestRestoreHostile: replicas that would make restore write far more than
// they hold, or that are not what they seem, are refused in one line.
func TestRestoreHostile(t *testing.T) {
	bin, _ := buildLitestream(t)

	t.Run("sound", func(t *testing.T) {
		h := newHostileReplica(t)
		h.segment(0, append(h.header(), h.frame(2, h.pages(), h.page(2))...))
		outDir := t.TempDir()
		out := filepath.Join(outDir, "out.db")
		if r := runCLI(t, bin, outDir, "restore", "-o", out, h.dir); r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		fi, err := os.Stat(out)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Fatalf("restored file mode %v, want 0600", fi.Mode().Perm())
		}
	})

	t.Run("page number above SQLite's limit", func(t *testing.T) {
		h := newHostileReplica(t)
		h.segment(0, append(h.header(), h.frame(0xFFFFFFFF, 0xFFFFFFFF, h.page(2))...))
		requireRefused(t, bin, h.dir, "page number 4294967295 is above SQLite's limit", "00000000_00000000.wal.lz4")
	})

	t.Run("page 0x7FFFFFFF", func(t *testing.T) {
		h := newHostileReplica(t)
		h.segment(0, append(h.header(), h.frame(0x7FFFFFFF, 0x7FFFFFFF, h.page(2))...))
		requireRefused(t, bin, h.dir, "the last commit sets the database size to 2147483647 pages, more than the snapshot's")
	})

	t.Run("commit size 2^31", func(t *testing.T) {
		h := newHostileReplica(t)
		h.segment(0, append(h.header(), h.frame(2, 1<<31, h.page(2))...))
		requireRefused(t, bin, h.dir, "2147483648 pages, more than the snapshot's", "the replica is damaged")
	})

	t.Run("segment decodes past the next one's offset", func(t *testing.T) {
		h := newHostileReplica(t)
		first := append(h.header(), h.frame(2, h.pages(), h.page(2))...)
		h.segment(0, first)
		bomb := make([]byte, 4<<20) // a 4 MB LZ4 bomb: about 16 KB stored
		h.segment(int64(len(first)), bomb)
		h.segment(int64(len(first))+h.frameSize(), h.frame(3, h.pages(), h.page(3)))
		requireRefused(t, bin, h.dir, "00000000_00001038.wal.lz4", "decodes to more than the 4120 bytes before the next segment", "stopped there")
	})

	t.Run("declared content size", func(t *testing.T) {
		h := newHostileReplica(t)
		first := append(h.header(), h.frame(2, h.pages(), h.page(2))...)
		h.put("wal/"+litestream.SegmentName(0, 0), encodeLZ4(t, first, int64(len(first))))
		second := h.frame(3, 0, h.page(3))
		h.put("wal/"+litestream.SegmentName(0, int64(len(first))), encodeLZ4(t, second, 1<<30))
		h.segment(int64(len(first))+h.frameSize(), h.frame(4, h.pages(), h.page(4)))
		requireRefused(t, bin, h.dir, "00000000_00001038.wal.lz4: ", "content size mismatch")
	})

	t.Run("empty snapshot", func(t *testing.T) {
		h := newHostileReplica(t)
		h.put("snapshots/00000000.snapshot.lz4", nil)
		requireRefused(t, bin, h.dir, "snapshot 00000000.snapshot.lz4 is an empty object (0 bytes)")
	})

	t.Run("invalid page size", func(t *testing.T) {
		h := newHostileReplica(t)
		db := bytes.Clone(h.db)
		binary.BigEndian.PutUint16(db[16:], 3000)
		h.put("snapshots/00000000.snapshot.lz4", encodeLZ4(t, db, -1))
		h.segment(0, append(h.header(), h.frame(2, h.pages(), h.page(2))...))
		requireRefused(t, bin, h.dir, "invalid page size 3000")
	})

	t.Run("damaged segment", func(t *testing.T) {
		h := newHostileReplica(t)
		stored := encodeLZ4(t, append(h.header(), h.frame(2, h.pages(), h.page(2))...), -1)
		stored[len(stored)/2] ^= 0xff
		h.put("wal/"+litestream.SegmentName(0, 0), stored)
		requireRefused(t, bin, h.dir, "00000000_00000000.wal.lz4: damaged or unreadable: lz4: ")
	})

	t.Run("padded names", func(t *testing.T) {
		h := newHostileReplica(t)
		first := append(h.header(), h.frame(2, 0, h.page(2))...)
		h.segment(0, first)
		second := h.frame(3, h.pages(), h.page(3))
		h.put(fmt.Sprintf("wal/%09x_%016x.wal.lz4", 0, len(first)), encodeLZ4(t, second, -1))
		outDir := t.TempDir()
		r := runCLI(t, bin, outDir, "restore", "-o", filepath.Join(outDir, "out.db"), h.dir)
		if r.code != 0 || !strings.Contains(r.stderr, "2 WAL segments") {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		// Two names of one position.
		h.segment(int64(len(first)), second)
		requireRefused(t, bin, h.dir, "name the same position")
	})
}

// TestRestoreNotRegularFiles: a FIFO or a symlink where a segment or the
// snapshot belongs, and a symlinked directory of the layout, are named
// and fail the restore (the listing skips them: the restore would have
// ended earlier, with exit 0).
func TestRestoreNotRegularFiles(t *testing.T) {
	bin, _ := buildLitestream(t)
	dir := t.TempDir()
	dbPath := filepath.Join(dir, "app.db")
	replica := filepath.Join(dir, "replica")
	cfg := writeConfig(t, dbPath, "      - path: "+replica+"\n")
	src := openSource(t, cfg, dbPath)
	for i := 0; i < 4; i++ {
		src.commit(5)
		src.sync("file")
	}
	gen := src.replica("file").Pos().Generation
	walDir := filepath.Join(replica, "generations", gen, "wal")
	ents, err := os.ReadDir(walDir)
	if err != nil || len(ents) < 3 {
		t.Fatalf("%d segments (%v)", len(ents), err)
	}
	last := filepath.Join(walDir, ents[len(ents)-1].Name())
	fresh := func() (string, string) { // a copy of the replica, and its last segment
		t.Helper()
		c := filepath.Join(t.TempDir(), "replica")
		if err := os.CopyFS(c, os.DirFS(replica)); err != nil {
			t.Fatal(err)
		}
		return c, filepath.Join(c, "generations", gen, "wal", filepath.Base(last))
	}

	c, seg := fresh()
	os.Remove(seg)
	if err := syscall.Mkfifo(seg, 0o644); err != nil {
		t.Fatal(err)
	}
	requireRefused(t, bin, c, seg+" is a named pipe (FIFO), not a regular file")

	c, seg = fresh()
	os.Rename(seg, seg+".elsewhere")
	if err := os.Symlink(seg+".elsewhere", seg); err != nil {
		t.Fatal(err)
	}
	requireRefused(t, bin, c, seg+" is a symbolic link, not followed, not a regular file")

	c, _ = fresh()
	wal := filepath.Join(c, "generations", gen, "wal")
	os.Rename(wal, wal+".real")
	if err := os.Symlink(wal+".real", wal); err != nil {
		t.Fatal(err)
	}
	requireRefused(t, bin, c, wal+" is a symbolic link, not followed, not a directory")

	c, _ = fresh()
	snap := filepath.Join(c, "generations", gen, "snapshots", "00000000.snapshot.lz4")
	os.Remove(snap)
	if err := os.Symlink(last, snap); err != nil {
		t.Fatal(err)
	}
	requireRefused(t, bin, c, snap+" is a symbolic link, not followed, not a regular file")

	// The sound replica restores all of it, mode 0600.
	outDir := t.TempDir()
	out := filepath.Join(outDir, "out.db")
	if r := runCLI(t, bin, outDir, "restore", "-o", out, replica); r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	requireRestored(t, out, 20)
	if fi, err := os.Stat(out); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("restored file: %v %v, want mode 0600", fi.Mode(), err)
	}
}
