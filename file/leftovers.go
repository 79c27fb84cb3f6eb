package file

import (
	"context"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/litestream-go/litestream"
)

var _ litestream.LeftoverRemover = (*ReplicaClient)(nil)

// RemoveLeftovers removes the temporary files of writeFile (see
// createTemp) that writes cut short left under the replica's generations,
// if they were last modified before before. Other files, ours or not, are
// never touched.
func (c *ReplicaClient) RemoveLeftovers(ctx context.Context, before time.Time) (int, error) {
	root := c.path(litestream.GenerationsDir())
	n := 0
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil // no replica yet, or removed by retention meanwhile
			}
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if !d.Type().IsRegular() || !isTempName(d.Name()) {
			return nil
		}
		fi, err := d.Info()
		if err != nil || !fi.ModTime().Before(before) {
			return nil // gone meanwhile, or a write in progress
		}
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		n++
		c.op("DELETE", 0)
		return nil
	})
	if err != nil {
		return n, c.describe("remove leftover temporary files in", root, err)
	}
	return n, nil
}

// isTempName reports whether name is one createTemp makes:
// ".<base>.<16 hex digits>.tmp".
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
