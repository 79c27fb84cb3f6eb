package sftp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
)

var _ litestream.StoreChecker = (*ReplicaClient)(nil)

// CheckStore tells, with one cheap request (a stat of the replica's
// directory, after the login), whether the server accepts the login and
// the directory can be used. A directory that does not exist yet is
// created, as the first write would create it; one that cannot be is an
// error naming it. Failures that retries may cure (no connection yet, a
// connection closed during the handshake) are retried until ctx ends: of
// those, a server that closed every handshake gives an error wrapping
// litestream.ErrStoreBusy, and one no connection reached gives the
// network error. Every other error (login refused, host key mismatch,
// no such directory) comes at once.
func (c *ReplicaClient) CheckStore(ctx context.Context) error {
	start := time.Now()
	dir := c.Path
	if dir == "" {
		dir = "."
	}
	check := func(cn *conn) error {
		fi, err := cn.sftp.Stat(dir)
		c.op("LIST", 0)
		switch {
		case err == nil && !fi.IsDir():
			return &permanent{fmt.Errorf("path %q on the SFTP server %s is a file, not a directory: fix path", dir, c.Addr())}
		case err == nil:
			return nil
		case errors.Is(err, os.ErrPermission):
			return &permanent{fmt.Errorf("user %q may not access directory %q on the SFTP server %s (permission denied): check its owner and mode, or fix path", c.User, dir, c.Addr())}
		case !errors.Is(err, os.ErrNotExist):
			return err
		}
		if err := cn.sftp.MkdirAll(dir); err != nil {
			if cn.broken(err) {
				return err
			}
			return &permanent{fmt.Errorf("directory %q does not exist on the SFTP server %s and user %q cannot create it (%v): create it, or fix path",
				dir, c.Addr(), c.User, reason(err))}
		}
		return nil
	}
	return litestream.RetryStoreCheck(ctx, start, func() error { return c.doN(ctx, "", 1, check) },
		func(err error) litestream.CheckFailure {
			var p *permanent
			if errors.As(err, &p) {
				return litestream.CheckFinal
			}
			return classify(err).check()
		},
		func(err error, attempts int, noAnswer string) error {
			var p *permanent
			if errors.As(err, &p) {
				return p.err
			}
			f := classify(err)
			f.attempts = attempts
			if noAnswer != "" {
				f.kind, f.netErr = failUnreachable, errors.New(noAnswer)
			}
			var de *storeclient.Described
			if errors.As(err, &de) {
				err = de.Err
			}
			return c.describeAs("", f, err)
		})
}

// reason returns an SFTP error's cause in a few words.
func reason(err error) string {
	switch {
	case errors.Is(err, os.ErrPermission):
		return "permission denied"
	case errors.Is(err, os.ErrNotExist):
		return "no such file or directory"
	}
	return storeclient.Innermost(err).Error()
}
