package litestream

import "testing"

func TestSegmentName(t *testing.T) {
	for _, tc := range []struct {
		name   string
		index  int
		offset int64
		ok     bool
	}{
		{"00000000_00000000.wal.lz4", 0, 0, true},
		{"0000001a_00004080.wal.lz4", 0x1a, 0x4080, true},
		{"00000001_100000020.wal.lz4", 1, 0x100000020, true}, // past 4 GiB: v0.3 skipped these
		{"00000001_0000000000004080.wal.lz4", 1, 0x4080, true},
		{"7fffffff_00000000.wal.lz4", MaxIndex, 0, true},
		{"80000000_00000000.wal.lz4", 0, 0, false},
		{"0000001A_00004080.wal.lz4", 0, 0, false}, // uppercase is not ours
		{"1a_4080.wal.lz4", 0, 0, false},
		{"00000001_00000000.wal", 0, 0, false},
		{"00000001-00000000.wal.lz4", 0, 0, false},
		{"00000001_00000000.wal.lz4.tmp", 0, 0, false},
		{"00000001_00000000000000000.wal.lz4", 0, 0, false}, // 17 digits
	} {
		idx, off, err := ParseSegmentName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ParseSegmentName(%q) error = %v, want ok=%v", tc.name, err, tc.ok)
			continue
		}
		if tc.ok && (idx != tc.index || off != tc.offset) {
			t.Errorf("ParseSegmentName(%q) = %x, %x", tc.name, idx, off)
		}
		if tc.ok && len(tc.name) == len("00000000_00000000.wal.lz4") {
			if got := SegmentName(idx, off); got != tc.name {
				t.Errorf("SegmentName(%x, %x) = %q", idx, off, got)
			}
		}
	}
	if got := SegmentName(1, 0x100000020); got != "00000001_100000020.wal.lz4" {
		t.Errorf("SegmentName past 4 GiB = %q", got)
	}
}

func TestSnapshotName(t *testing.T) {
	if got := SnapshotName(0x2b); got != "0000002b.snapshot.lz4" {
		t.Fatalf("SnapshotName = %q", got)
	}
	for name, want := range map[string]int{"0000002b.snapshot.lz4": 0x2b, "00000000.snapshot.lz4": 0} {
		if got, err := ParseSnapshotName(name); err != nil || got != want {
			t.Errorf("ParseSnapshotName(%q) = %d, %v", name, got, err)
		}
	}
	for _, name := range []string{"2b.snapshot.lz4", "0000002b.snapshot", "0000002g.snapshot.lz4", ""} {
		if _, err := ParseSnapshotName(name); err == nil {
			t.Errorf("ParseSnapshotName(%q) accepted", name)
		}
	}
}

func TestGenerationAndIndex(t *testing.T) {
	g := newGenerationName()
	if !IsGeneration(g) || g == newGenerationName() {
		t.Fatalf("newGenerationName = %q", g)
	}
	for _, s := range []string{"", "0123456789abcdeF", "0123456789abcde", "0123456789abcdef0", "xyz0123456789abc"} {
		if IsGeneration(s) {
			t.Errorf("IsGeneration(%q) = true", s)
		}
	}
	for in, want := range map[string]int{"1a": 0x1a, "0000001a": 0x1a, "0x1A": 0x1a, "7fffffff": MaxIndex} {
		if got, err := ParseIndex(in); err != nil || got != want {
			t.Errorf("ParseIndex(%q) = %d, %v", in, got, err)
		}
	}
	for _, in := range []string{"", "12z", "80000000", "100000000", "-1"} {
		if _, err := ParseIndex(in); err == nil {
			t.Errorf("ParseIndex(%q) accepted", in)
		}
	}
}
