package litestream

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// File name suffixes of the replica layout.
const (
	SnapshotExt = ".snapshot.lz4"
	SegmentExt  = ".wal.lz4"
)

// newGenerationName returns a random generation name: 16 lowercase hex characters.
func newGenerationName() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err)) // never fails on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// IsGeneration reports whether s is a valid generation name. Anything else
// found under generations/ is not ours and is ignored.
func IsGeneration(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, c := range s {
		if !isLowerHex(c) {
			return false
		}
	}
	return true
}

// FormatIndex formats a shadow WAL index as at least 8 lowercase hex digits.
func FormatIndex(index int) string { return fmt.Sprintf("%08x", index) }

// FormatOffset formats a byte offset as at least 8 lowercase hex digits.
func FormatOffset(offset int64) string { return fmt.Sprintf("%08x", offset) }

// ParseIndex parses a hex index as typed by a user (any number of digits up
// to 8, optional 0x prefix) or found in a name.
func ParseIndex(s string) (int, error) {
	t := strings.TrimPrefix(strings.ToLower(s), "0x")
	if t == "" || len(t) > 8 {
		return 0, fmt.Errorf("index %q is not a hex number of 1 to 8 digits (for example 0000001a)", s)
	}
	v, err := strconv.ParseUint(t, 16, 32)
	if err != nil || v > MaxIndex {
		return 0, fmt.Errorf("index %q is not a hex number between 0 and %x", s, MaxIndex)
	}
	return int(v), nil
}

// parseHexField parses a name field of 8 to 16 lowercase hex digits. v0.3
// skipped names with more than 8 digits, which lost segments past 4 GiB.
func parseHexField(s string) (uint64, bool) {
	if len(s) < 8 || len(s) > 16 {
		return 0, false
	}
	for _, c := range s {
		if !isLowerHex(c) {
			return 0, false
		}
	}
	v, err := strconv.ParseUint(s, 16, 64)
	return v, err == nil
}

func isLowerHex(c rune) bool { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') }

// SnapshotName returns the file name of the snapshot at index.
func SnapshotName(index int) string { return FormatIndex(index) + SnapshotExt }

// ParseSnapshotName parses "<index>.snapshot.lz4".
func ParseSnapshotName(name string) (index int, err error) {
	base, ok := strings.CutSuffix(name, SnapshotExt)
	v, okHex := parseHexField(base)
	if !ok || !okHex || v > MaxIndex {
		return 0, fmt.Errorf("invalid snapshot name %q", name)
	}
	return int(v), nil
}

// SegmentName returns the file name of the WAL segment at index and offset.
func SegmentName(index int, offset int64) string {
	return FormatIndex(index) + "_" + FormatOffset(offset) + SegmentExt
}

// ParseSegmentName parses "<index>_<offset>.wal.lz4".
func ParseSegmentName(name string) (index int, offset int64, err error) {
	base, ok := strings.CutSuffix(name, SegmentExt)
	idx, off, okSep := strings.Cut(base, "_")
	i, okI := parseHexField(idx)
	o, okO := parseHexField(off)
	if !ok || !okSep || !okI || !okO || i > MaxIndex || o > MaxOffset {
		return 0, 0, fmt.Errorf("invalid WAL segment name %q", name)
	}
	return int(i), int64(o), nil
}

// GenerationsDir returns "generations", the replica-relative directory of
// every generation. It and the other paths of the layout are joined with
// "/", the same for every backend.
func GenerationsDir() string { return "generations" }

// GenerationDir returns "generations/<gen>".
func GenerationDir(generation string) string { return "generations/" + generation }

// SnapshotsDir returns "generations/<gen>/snapshots".
func SnapshotsDir(generation string) string { return GenerationDir(generation) + "/snapshots" }

// SegmentsDir returns "generations/<gen>/wal".
func SegmentsDir(generation string) string { return GenerationDir(generation) + "/wal" }

// SnapshotPath returns the replica-relative path of a snapshot.
func SnapshotPath(generation string, index int) string {
	return SnapshotsDir(generation) + "/" + SnapshotName(index)
}

// SegmentPath returns the replica-relative path of a segment.
func SegmentPath(pos Pos) string {
	return SegmentsDir(pos.Generation) + "/" + SegmentName(pos.Index, pos.Offset)
}
