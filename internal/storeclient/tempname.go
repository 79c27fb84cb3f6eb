package storeclient

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
)

// tempRandomBytes is the length of the random part of a temporary name.
const tempRandomBytes = 8

// TempName returns a new temporary name for a file named base, for the
// backends that write a file then rename it (file, sftp):
// ".<base>.<16 hex digits>.tmp". The leading dot and the ".tmp" end keep
// it out of every listing, ours and v0.3's.
func TempName(base string) string {
	var b [tempRandomBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return "." + base + "." + hex.EncodeToString(b[:]) + ".tmp"
}

// IsTempName reports whether name is one TempName makes.
func IsTempName(name string) bool {
	rest, ok := strings.CutSuffix(name, ".tmp")
	if !ok || !strings.HasPrefix(rest, ".") {
		return false
	}
	i := strings.LastIndexByte(rest, '.')
	if i <= 1 || len(rest)-i-1 != 2*tempRandomBytes {
		return false
	}
	_, err := hex.DecodeString(rest[i+1:])
	return err == nil
}
