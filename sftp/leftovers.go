package sftp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"path"
	"strings"
	"time"

	"github.com/litestream-go/litestream"
)

var _ litestream.LeftoverRemover = (*ReplicaClient)(nil)

// tempRandomBytes is the length of the random part of a temporary name.
const tempRandomBytes = 8

// tempName returns a new temporary name for a file named base:
// ".<base>.<16 hex digits>.tmp". The leading dot and the ".tmp" end keep
// it out of every listing, ours and v0.3's (invariant 2).
func tempName(base string) string {
	var b [tempRandomBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand never fails on supported platforms
	return "." + base + "." + hex.EncodeToString(b[:]) + ".tmp"
}

// isTempName reports whether name is one tempName makes.
func isTempName(name string) bool {
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

// RemoveLeftovers removes the temporary files of writes (see tempName)
// under the replica's generations that were last modified before before:
// what a write cut short by a kill or a broken connection leaves. Other
// files, ours or not, are never touched.
func (c *ReplicaClient) RemoveLeftovers(ctx context.Context, before time.Time) (int, error) {
	root := c.path(litestream.GenerationsDir())
	n := 0
	err := c.do(ctx, "remove leftover temporary files in "+root, func(cn *conn) error {
		w := cn.sftp.Walk(root)
		for w.Step() {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := w.Err(); err != nil {
				if errors.Is(err, os.ErrNotExist) {
					continue // no replica yet, or removed by retention meanwhile
				}
				return err
			}
			fi := w.Stat()
			if !fi.Mode().IsRegular() || !isTempName(path.Base(w.Path())) || !fi.ModTime().Before(before) {
				continue
			}
			if err := cn.sftp.Remove(w.Path()); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
			n++
			c.op("DELETE", 0)
		}
		c.op("LIST", 0)
		return nil
	})
	return n, err
}
