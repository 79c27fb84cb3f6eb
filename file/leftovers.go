package file

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
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
		if !d.Type().IsRegular() || !storeclient.IsTempName(d.Name()) {
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
