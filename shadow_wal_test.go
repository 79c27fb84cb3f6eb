package litestream

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/litestream-go/litestream/internal/walformat"
	"github.com/litestream-go/litestream/internal/walformat/walformattest"
)

// The WAL these tests copy: 9 frames of 512-byte pages, every third a
// commit, so that commits end frames 3, 6 and 9.
const (
	testPageSize = 512
	testFrames   = 9
)

// testWAL returns the WAL image, its header, and the end offset and
// cumulative checksum of each frame (index 0: the header alone), which is
// what SQLite's wal-index gives for a committed frame.
func testWAL(t *testing.T) (wal []byte, hdr walformat.Header, ends []int64, sums [][2]uint32) {
	t.Helper()
	wal = walformattest.Build(binary.LittleEndian, testPageSize, testFrames)
	hdr, err := walformat.ParseHeader(wal)
	if err != nil {
		t.Fatal(err)
	}
	ends, sums = []int64{walformat.HeaderSize}, [][2]uint32{{hdr.Checksum1, hdr.Checksum2}}
	rd := walformat.NewReader(bytes.NewReader(wal[walformat.HeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
	for i := 1; i <= testFrames; i++ {
		if _, _, err := rd.Next(); err != nil {
			t.Fatal(err)
		}
		s1, s2 := rd.Checksum()
		ends, sums = append(ends, walformat.HeaderSize+int64(i)*hdr.FrameSize()), append(sums, [2]uint32{s1, s2})
	}
	return wal, hdr, ends, sums
}

// newTestShadow creates a shadow WAL at index 0 for hdr, closed when the
// test ends.
func newTestShadow(t *testing.T, hdr walformat.Header) *shadowWAL {
	t.Helper()
	s, err := createShadowWAL(filepath.Join(t.TempDir(), "wal"), 0, hdr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fileSize returns the size of the file at path.
func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

// TestShadowWAL_AppendCopiesToCommittedEnd: Append copies exactly up to
// the end SQLite's wal-index counts as committed, even when later frames
// in the WAL have valid checksums and one of them commits; the next Append
// continues from there.
func TestShadowWAL_AppendCopiesToCommittedEnd(t *testing.T) {
	wal, hdr, ends, sums := testWAL(t)
	s := newTestShadow(t, hdr)
	r := bytes.NewReader(wal)

	added, err := s.Append(r, ends[6], sums[6], false)
	if err != nil {
		t.Fatal(err)
	}
	if added != ends[6]-walformat.HeaderSize || s.Size() != ends[6] || s.Commits() != 2 {
		t.Fatalf("added %d, size %d, %d commits; want %d, %d, 2", added, s.Size(), s.Commits(), ends[6]-walformat.HeaderSize, ends[6])
	}
	if got := fileSize(t, s.Path(0)); got != ends[6] {
		t.Fatalf("shadow file is %d bytes; frames past the committed end %d were copied", got, ends[6])
	}
	b, err := os.ReadFile(s.Path(0))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, wal[:ends[6]]) {
		t.Fatal("shadow bytes differ from the WAL's")
	}
	if s.needsFsync {
		t.Fatal("Append outside the write lock left its bytes unsynced")
	}
	if !s.Matches(r) {
		t.Fatal("shadow does not match the WAL it copied")
	}

	// At the same end again: nothing to copy.
	if added, err := s.Append(r, ends[6], sums[6], false); err != nil || added != 0 {
		t.Fatalf("second Append to the same end: %d, %v", added, err)
	}
	// Under the write lock the fsync waits for fsyncPending.
	if added, err := s.Append(r, ends[9], sums[9], true); err != nil || added != 3*hdr.FrameSize() {
		t.Fatalf("Append to the last commit: %d, %v", added, err)
	}
	if !s.needsFsync {
		t.Fatal("Append under the write lock fsynced itself")
	}
	if err := s.fsyncPending(); err != nil || s.needsFsync {
		t.Fatalf("fsyncPending: %v, needsFsync %v", err, s.needsFsync)
	}
	if s.Size() != ends[9] || s.Commits() != 3 || fileSize(t, s.Path(0)) != ends[9] {
		t.Fatalf("size %d, %d commits after the last Append", s.Size(), s.Commits())
	}
}

// TestShadowWAL_AppendRefusesUncommittedEnd: an end that is not a commit
// frame, whose checksum is not the wal-index's, that lies past the WAL's
// valid frames, or off a frame boundary, is errCommittedFrames, and the
// shadow's committed state stays as it was.
func TestShadowWAL_AppendRefusesUncommittedEnd(t *testing.T) {
	wal, hdr, ends, sums := testWAL(t)
	torn := append([]byte(nil), wal[:ends[7]]...)
	torn = append(torn, wal[ends[7]:ends[7]+100]...) // frame 8 cut short
	for name, c := range map[string]struct {
		wal []byte
		end int64
		sum [2]uint32
	}{
		"not a commit frame":    {wal, ends[5], sums[5]},
		"another checksum":      {wal, ends[6], sums[3]},
		"past the valid frames": {torn, ends[9], sums[9]},
		"off a frame boundary":  {wal, ends[6] + 8, sums[6]},
	} {
		s := newTestShadow(t, hdr)
		if _, err := s.Append(bytes.NewReader(wal), ends[3], sums[3], false); err != nil {
			t.Fatal(err)
		}
		added, err := s.Append(bytes.NewReader(c.wal), c.end, c.sum, false)
		if !errors.Is(err, errCommittedFrames) || added != 0 {
			t.Errorf("%s: added %d, %v; want errCommittedFrames", name, added, err)
		}
		if s.Size() != ends[3] || s.Commits() != 1 || s.s1 != sums[3][0] || s.s2 != sums[3][1] {
			t.Errorf("%s: the failed Append moved the shadow to size %d, %d commits", name, s.Size(), s.Commits())
		}
	}
}

// TestShadowWAL_Matches: the shadow matches a WAL that still holds, at the
// shadow's end, the frame it ended on; not one whose frame there changed
// (a rolled-back transaction's frames overwritten), nor one that is shorter.
func TestShadowWAL_Matches(t *testing.T) {
	wal, hdr, ends, sums := testWAL(t)
	s := newTestShadow(t, hdr)
	if !s.Matches(bytes.NewReader(wal[:walformat.HeaderSize])) {
		t.Fatal("an empty shadow does not match")
	}
	if _, err := s.Append(bytes.NewReader(wal), ends[6], sums[6], false); err != nil {
		t.Fatal(err)
	}
	if !s.Matches(bytes.NewReader(wal)) {
		t.Fatal("no match with the WAL it copied")
	}
	changed := append([]byte(nil), wal...)
	other := walformattest.Build(binary.LittleEndian, testPageSize, testFrames)
	binary.BigEndian.PutUint32(other[ends[5]+16:], 0xdeadbeef) // frame 6's checksum
	copy(changed[ends[5]:ends[6]], other[ends[5]:ends[6]])
	if s.Matches(bytes.NewReader(changed)) {
		t.Fatal("match with a WAL whose last copied frame changed")
	}
	if s.Matches(bytes.NewReader(wal[:ends[4]])) {
		t.Fatal("match with a WAL shorter than the shadow")
	}
}

// TestShadowWAL_TornTailTruncated: bytes past the committed size (a copy
// that failed after writing, or a crash mid-copy) never reach a replica:
// the next index truncates the old file to its committed size before it
// starts, and opening a shadow WAL drops a torn or uncommitted tail.
func TestShadowWAL_TornTailTruncated(t *testing.T) {
	wal, hdr, ends, sums := testWAL(t)

	t.Run("startIndex", func(t *testing.T) {
		s := newTestShadow(t, hdr)
		if _, err := s.Append(bytes.NewReader(wal), ends[3], sums[3], false); err != nil {
			t.Fatal(err)
		}
		// A failed copy's leftovers: two frames and part of a third.
		if _, err := s.f.WriteAt(wal[ends[3]:ends[5]+10], ends[3]); err != nil {
			t.Fatal(err)
		}
		next := hdr
		next.Salt1++
		if err := s.startIndex(1, next); err != nil {
			t.Fatal(err)
		}
		if got := fileSize(t, s.Path(0)); got != ends[3] {
			t.Fatalf("closed index is %d bytes, want its committed %d", got, ends[3])
		}
		if s.Index() != 1 || s.Size() != walformat.HeaderSize || s.Commits() != 0 || s.Header() != next {
			t.Fatalf("new index %d: size %d, %d commits", s.Index(), s.Size(), s.Commits())
		}
		if size, err := s.FileSize(0); err != nil || size != ends[3] {
			t.Fatalf("FileSize(0) = %d, %v", size, err)
		}
	})

	t.Run("open", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "wal")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		for name, tail := range map[string][]byte{
			"uncommitted frames": wal[:ends[8]],
			"torn frame":         wal[:ends[7]+100],
			"bad checksum": func() []byte {
				b := append([]byte(nil), wal...)
				b[ends[7]+200] ^= 1 // in frame 8's page
				return b
			}(),
		} {
			path := filepath.Join(dir, shadowWALFileName(2))
			if err := os.WriteFile(path, tail, 0o644); err != nil {
				t.Fatal(err)
			}
			s, err := openShadowWAL(dir)
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			s.Close()
			if s.Index() != 2 || s.Size() != ends[6] || s.Commits() != 2 || s.s1 != sums[6][0] || s.s2 != sums[6][1] {
				t.Errorf("%s: opened at index %d, size %d, %d commits; want 2, %d, 2", name, s.Index(), s.Size(), s.Commits(), ends[6])
			}
			if got := fileSize(t, path); got != ends[6] {
				t.Errorf("%s: file left at %d bytes, want %d", name, got, ends[6])
			}
		}
	})
}

// TestShadowWAL_FailedStartIndex: when the next index cannot be created
// (here a directory stands at its path; in production, a full disk), the
// shadow stays on the index it was on, whole and usable, and a retry once
// the cause is gone succeeds.
func TestShadowWAL_FailedStartIndex(t *testing.T) {
	wal, hdr, ends, sums := testWAL(t)
	s := newTestShadow(t, hdr)
	if _, err := s.Append(bytes.NewReader(wal), ends[3], sums[3], false); err != nil {
		t.Fatal(err)
	}
	blocker := s.Path(1)
	if err := os.Mkdir(blocker, 0o755); err != nil {
		t.Fatal(err)
	}
	next := hdr
	next.Salt1++
	if err := s.startIndex(1, next); err == nil {
		t.Fatal("startIndex succeeded with a directory at the file's path")
	}
	if s.Index() != 0 || s.Size() != ends[3] || s.Commits() != 1 || s.Header() != hdr {
		t.Fatalf("after the failure: index %d, size %d, %d commits", s.Index(), s.Size(), s.Commits())
	}
	// Still the current file: the next commit copies into it.
	if _, err := s.Append(bytes.NewReader(wal), ends[6], sums[6], false); err != nil {
		t.Fatalf("Append after the failed startIndex: %v", err)
	}
	if got := fileSize(t, s.Path(0)); got != ends[6] {
		t.Fatalf("index 0 is %d bytes, want %d", got, ends[6])
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	if err := s.startIndex(1, next); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if s.Index() != 1 || s.Size() != walformat.HeaderSize || fileSize(t, s.Path(1)) != walformat.HeaderSize {
		t.Fatalf("after the retry: index %d, size %d", s.Index(), s.Size())
	}
}

// TestShadowWAL_AppendInChunks: a copy larger than Append's buffer is
// validated and written chunk by chunk: the shadow then holds the WAL's
// bytes exactly; a frame that does not validate in a later chunk, or a
// WAL shorter than the committed end, fails the copy and leaves the
// committed size where it was.
func TestShadowWAL_AppendInChunks(t *testing.T) {
	const frames = 300 // 3 frames a commit; about 1.2 MB, 10 chunks
	wal := walformattest.Build(binary.LittleEndian, 4096, frames)
	hdr, err := walformat.ParseHeader(wal)
	if err != nil {
		t.Fatal(err)
	}
	rd := walformat.NewReader(bytes.NewReader(wal[walformat.HeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
	for range frames {
		if _, _, err := rd.Next(); err != nil {
			t.Fatal(err)
		}
	}
	s1, s2 := rd.Checksum()
	end := int64(len(wal))

	s := newTestShadow(t, hdr)
	if added, err := s.Append(bytes.NewReader(wal), end, [2]uint32{s1, s2}, false); err != nil || added != end-walformat.HeaderSize || s.Commits() != frames/3 {
		t.Fatalf("Append: %d bytes, %d commits, %v", added, s.Commits(), err)
	}
	if b, err := os.ReadFile(s.Path(0)); err != nil || !bytes.Equal(b, wal) {
		t.Fatalf("shadow bytes differ from the WAL's (%d of %d bytes): %v", len(b), len(wal), err)
	}

	damaged := bytes.Clone(wal)
	damaged[walformat.HeaderSize+250*hdr.FrameSize()+100] ^= 1 // frame 251's page
	for name, w := range map[string][]byte{"damaged": damaged, "short": wal[:end-hdr.FrameSize()-7]} {
		s := newTestShadow(t, hdr)
		if _, err := s.Append(bytes.NewReader(w), end, [2]uint32{s1, s2}, false); !errors.Is(err, errCommittedFrames) {
			t.Fatalf("%s: Append: %v, want errCommittedFrames", name, err)
		}
		if s.Size() != walformat.HeaderSize || s.Commits() != 0 {
			t.Fatalf("%s: a failed Append moved the committed size to %d", name, s.Size())
		}
	}
}

// BenchmarkShadowAppend measures Append's copy of 4 MB of WAL from a file
// (its fsync left to fsyncPending, which the benchmark does not call).
func BenchmarkShadowAppend(b *testing.B) {
	wal := walformattest.Build(binary.LittleEndian, 4096, 999)
	hdr, _ := walformat.ParseHeader(wal)
	rd := walformat.NewReader(bytes.NewReader(wal[walformat.HeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
	for range 999 {
		rd.Next()
	}
	s1, s2 := rd.Checksum()
	path := filepath.Join(b.TempDir(), "wal")
	if err := os.WriteFile(path, wal, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s, err := createShadowWAL(filepath.Join(b.TempDir(), "shadow"), 0, hdr)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetBytes(int64(len(wal)))
	for b.Loop() {
		s.size, s.s1, s.s2, s.commits = walformat.HeaderSize, hdr.Checksum1, hdr.Checksum2, 0
		if _, err := s.Append(f, int64(len(wal)), [2]uint32{s1, s2}, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkShadowAppendCommits measures Append as the monitor calls it
// once a commit of 7 frames of 4 KiB (100 rows/tx), over a 4 MB WAL.
func BenchmarkShadowAppendCommits(b *testing.B) {
	const perCommit = 7
	wal := walformattest.Build(binary.LittleEndian, 4096, 999)
	hdr, _ := walformat.ParseHeader(wal)
	// walformattest commits every third frame; Append checks only that
	// the last frame copied commits, so 7 frames of it end on a commit
	// every 21 frames: copies of 21 frames, the nearest it allows.
	rd := walformat.NewReader(bytes.NewReader(wal[walformat.HeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
	var ends []int64
	var sums [][2]uint32
	for i := 1; i <= 999; i++ {
		rd.Next()
		if i%(3*perCommit) == 0 {
			s1, s2 := rd.Checksum()
			ends, sums = append(ends, walformat.HeaderSize+int64(i)*hdr.FrameSize()), append(sums, [2]uint32{s1, s2})
		}
	}
	path := filepath.Join(b.TempDir(), "wal")
	if err := os.WriteFile(path, wal, 0o644); err != nil {
		b.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	s, err := createShadowWAL(filepath.Join(b.TempDir(), "shadow"), 0, hdr)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	b.SetBytes(ends[len(ends)-1] - walformat.HeaderSize)
	b.ReportAllocs()
	for b.Loop() {
		s.size, s.s1, s.s2, s.commits = walformat.HeaderSize, hdr.Checksum1, hdr.Checksum2, 0
		for i := range ends {
			if _, err := s.Append(f, ends[i], sums[i], true); err != nil {
				b.Fatal(err)
			}
		}
	}
}
