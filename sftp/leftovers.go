package sftp

import (
	"context"
	"errors"
	"os"
	"path"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
)

var _ litestream.LeftoverRemover = (*ReplicaClient)(nil)

// RemoveLeftovers removes the temporary files of writes (see storeclient.TempName)
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
			if !fi.Mode().IsRegular() || !storeclient.IsTempName(path.Base(w.Path())) || !fi.ModTime().Before(before) {
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
