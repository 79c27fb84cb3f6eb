package litestream

import (
	"bytes"
	"encoding/binary"
	"os"
	"testing"
)

// newTestShadow starts a shadow WAL for the WAL image wal in a temp dir.
func newTestShadow(t *testing.T, wal []byte) *ShadowWAL {
	t.Helper()
	hdr, err := ParseWALHeader(wal[:WALHeaderSize])
	if err != nil {
		t.Fatal(err)
	}
	s, err := createShadowWAL(t.TempDir(), 0, hdr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// shadowBytes reads the committed bytes of the shadow's current file.
func shadowBytes(t *testing.T, s *ShadowWAL) []byte {
	t.Helper()
	b, err := os.ReadFile(s.Path(s.Index()))
	if err != nil {
		t.Fatal(err)
	}
	return b[:s.Size()]
}

// TestShadowWAL_CopyThenCommit: frames that Copy wrote are not committed
// (no replica may read them) until Commit, and a copy under the write lock
// keeps those committed frames while it drops the uncommitted ones after
// them: the checkpoint copies while it waits for the lock, and relies on
// both.
func TestShadowWAL_CopyThenCommit(t *testing.T) {
	const pageSize = 512
	fs := int64(pageSize + WALFrameHeaderSize)
	wal := buildWAL(binary.LittleEndian, pageSize, 12) // commits at frames 3, 6, 9, 12
	s := newTestShadow(t, wal)
	r := bytes.NewReader(wal)

	// Frames 1 to 7: commits at 3 and 6, frame 7 in progress.
	if err := s.Copy(r, WALHeaderSize+7*fs, false); err != nil {
		t.Fatal(err)
	}
	if s.Size() != WALHeaderSize {
		t.Fatalf("size %d after Copy; want %d (nothing committed before Commit)", s.Size(), WALHeaderSize)
	}
	// Under the lock: frame 7 is dropped and re-read, 1 to 6 are kept.
	if err := s.Copy(r, int64(len(wal)), true); err != nil {
		t.Fatal(err)
	}
	if s.Size() != WALHeaderSize {
		t.Fatalf("size %d before Commit; want %d", s.Size(), WALHeaderSize)
	}
	added, err := s.Commit()
	if err != nil {
		t.Fatal(err)
	}
	if want := 12 * fs; added != want || s.Size() != int64(len(wal)) {
		t.Fatalf("Commit added %d bytes (size %d); want %d (size %d)", added, s.Size(), want, len(wal))
	}
	if !bytes.Equal(shadowBytes(t, s), wal) {
		t.Fatal("shadow WAL differs from the WAL")
	}
	if added, err := s.Commit(); err != nil || added != 0 {
		t.Fatalf("second Commit added %d bytes (%v); want 0", added, err)
	}
}

// TestShadowWAL_PendingFramesGone: if the WAL no longer holds the committed
// frames that Copy wrote and Commit has not synced (it cannot, short of a
// restart, but the shadow must not trust it), they are dropped and only
// what the WAL still holds is committed.
func TestShadowWAL_PendingFramesGone(t *testing.T) {
	const pageSize = 512
	fs := int64(pageSize + WALFrameHeaderSize)
	wal := buildWAL(binary.LittleEndian, pageSize, 12)
	s := newTestShadow(t, wal)
	if err := s.Copy(bytes.NewReader(wal), WALHeaderSize+6*fs, false); err != nil {
		t.Fatal(err)
	}
	// Frames 4 to 12 are other frames with valid checksums but no commit:
	// the WAL now ends, as far as it is committed, at frame 3.
	changed := append([]byte(nil), wal...)
	off := WALHeaderSize + 3*fs
	s1 := binary.BigEndian.Uint32(changed[off-fs+16:])
	s2 := binary.BigEndian.Uint32(changed[off-fs+20:])
	for ; off < int64(len(changed)); off += fs {
		f := changed[off : off+fs]
		binary.BigEndian.PutUint32(f[4:], 0) // not a commit
		f[WALFrameHeaderSize] ^= 0xff
		s1, s2 = WALChecksum(binary.LittleEndian, s1, s2, f[:8])
		s1, s2 = WALChecksum(binary.LittleEndian, s1, s2, f[WALFrameHeaderSize:])
		binary.BigEndian.PutUint32(f[16:], s1)
		binary.BigEndian.PutUint32(f[20:], s2)
	}
	if err := s.Copy(bytes.NewReader(changed), int64(len(changed)), true); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Commit(); err != nil {
		t.Fatal(err)
	}
	if want := WALHeaderSize + 3*fs; s.Size() != want {
		t.Fatalf("size %d; want %d (the frames the WAL still holds)", s.Size(), want)
	}
	if !bytes.Equal(shadowBytes(t, s), changed[:s.Size()]) {
		t.Fatal("shadow WAL differs from the WAL")
	}
}
