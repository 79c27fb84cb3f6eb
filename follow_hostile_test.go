package litestream

import (
	"bytes"
	"encoding/binary"
	"path/filepath"
	"strings"
	"testing"

	"github.com/litestream-go/litestream/internal/walformat"
)

// followTestWAL builds a first segment of an index: a WAL header and frames
// with valid salts and cumulative checksums, for (pgno, commit) pairs.
func followTestWAL(pageSize int, frames [][2]uint32) []byte {
	hdr := walformat.Header{Magic: walformat.MagicLE, Version: walformat.Version, PageSize: uint32(pageSize), Salt1: 11, Salt2: 22}
	b := hdr.Encode()
	bo := binary.LittleEndian
	hdr.Checksum1, hdr.Checksum2 = walformat.Checksum(bo, 0, 0, b[:24])
	b = hdr.Encode()
	s1, s2 := hdr.Checksum1, hdr.Checksum2
	for i, f := range frames {
		fh := make([]byte, walformat.FrameHeaderSize)
		binary.BigEndian.PutUint32(fh[0:], f[0])
		binary.BigEndian.PutUint32(fh[4:], f[1])
		binary.BigEndian.PutUint32(fh[8:], hdr.Salt1)
		binary.BigEndian.PutUint32(fh[12:], hdr.Salt2)
		page := bytes.Repeat([]byte{byte(i + 1)}, pageSize)
		s1, s2 = walformat.Checksum(bo, s1, s2, fh[:8])
		s1, s2 = walformat.Checksum(bo, s1, s2, page)
		binary.BigEndian.PutUint32(fh[16:], s1)
		binary.BigEndian.PutUint32(fh[20:], s2)
		b = append(append(b, fh...), page...)
	}
	return b
}

// TestFollowStep_Hostile: the apply path refuses what SQLite never writes
// or what would make the follower larger than the replica justifies, and
// a refused segment leaves the step as it was.
func TestFollowStep_Hostile(t *testing.T) {
	const ps = 4096
	start := followState{Pos: Pos{Generation: "0123456789abcdef", Index: 1}, PageSize: ps}
	for _, tc := range []struct {
		name   string
		frames [][2]uint32
		want   string // "" accepts
	}{
		{"good", [][2]uint32{{1, 0}, {2, 0}, {3, 3}}, ""},
		{"page number above SQLite's limit", [][2]uint32{{0xFFFFFFFF, 11}}, "above SQLite's limit"},
		{"lock-byte page", [][2]uint32{{lockBytePage(ps), 10}}, "lock-byte page"},
		{"commit size of 2^31 pages", [][2]uint32{{1, 0x80000000}}, "more than the follower's 10 pages"},
		{"commit size one page too large", [][2]uint32{{11, 0}, {12, 14}}, "sets the database size to 14 pages"},
		{"ends without a commit", [][2]uint32{{1, 5}, {2, 0}}, "does not end on a commit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			step, err := newFollowStep(filepath.Join(t.TempDir(), "step"), start, ps, 10)
			if err != nil {
				t.Fatal(err)
			}
			defer step.close()
			err = step.addSegment(bytes.NewReader(followTestWAL(ps, tc.frames)), start, "seg")
			if tc.want == "" {
				if err != nil || step.dbSize != 3 || len(step.slots) != 3 {
					t.Fatalf("err %v, size %d, %d pages", err, step.dbSize, len(step.slots))
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error with %q", err, tc.want)
			}
			if len(step.slots) != 0 || step.dbSize != 0 || step.frames != 0 || len(step.segments) != 0 {
				t.Fatalf("a refused segment changed the step: %d pages, size %d", len(step.slots), step.dbSize)
			}
		})
	}
}

// TestFollowStep_DamagedKeepsEarlier: a damaged segment after a good one
// in the same step is refused, and the good one's pages stay whole.
func TestFollowStep_DamagedKeepsEarlier(t *testing.T) {
	const ps = 4096
	start := followState{Pos: Pos{Generation: "0123456789abcdef", Index: 1}, PageSize: ps}
	step, err := newFollowStep(filepath.Join(t.TempDir(), "step"), start, ps, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer step.close()
	good := followTestWAL(ps, [][2]uint32{{1, 0}, {2, 2}})
	if err := step.addSegment(bytes.NewReader(good), start, "a"); err != nil {
		t.Fatal(err)
	}
	// The next segment rewrites page 1, then a frame's checksum is wrong.
	next := followTestWAL(ps, [][2]uint32{{1, 0}, {2, 0}, {1, 2}})[walformat.HeaderSize:]
	next[len(next)-1] ^= 1
	if err := step.addSegment(bytes.NewReader(next), step.end, "b"); err == nil || !strings.Contains(err.Error(), "checksum") {
		t.Fatalf("got %v", err)
	}
	buf := make([]byte, ps)
	step.file.ReadAt(buf, step.slots[1])
	if buf[0] != 1 || len(step.segments) != 1 || step.end.Pos.Offset != int64(len(good)) {
		t.Fatalf("the good segment's page 1 was overwritten (%d) or the step moved: %v", buf[0], step.end.Pos)
	}
}
