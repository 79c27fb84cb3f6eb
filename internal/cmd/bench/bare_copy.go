package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/litestream-go/litestream/internal/walformat"
)

// bareCopy is the floor for the overhead figures: the least a WAL
// replicator that keeps a shadow copy must do, and no more. Every 25 ms,
// once the WAL has 1 MiB it has not copied (or a second has passed), it
// reads the new bytes and appends them to a shadow file and to a replica
// file, then fsyncs both. No compression, no frame validation, no checkpoints,
// no locks: the application checkpoints by itself, and bytes a checkpoint
// restarts over before they are read are simply missed. Its ratio is what
// any replicator writing every WAL byte twice on the same disk could at
// best reach on this machine.
type bareCopy struct {
	walPath         string
	shadow, replica *os.File
	hdr             walformat.Header // the header of the WAL being copied
	off             int64            // the offset in it copied up to
	last            time.Time        // the last copy
	buf             []byte
}

// bareCopyBatch is how much new WAL starts a copy before the second is up.
const bareCopyBatch = 1 << 20

// bareCopyCmd is the bench binary's own first argument that makes it the
// bare copier: the copier runs as a process of its own, as a replicator
// does, not as a goroutine of the bench (selfProc).
const bareCopyCmd = "bare-copy"

// runBareCopy copies walPath into two files in dir until ctx ends.
func runBareCopy(ctx context.Context, walPath, dir string) (err error) {
	c := &bareCopy{walPath: walPath, last: time.Now(), buf: make([]byte, bareCopyBatch)}
	if c.shadow, err = os.Create(filepath.Join(dir, "bare-shadow")); err != nil {
		return fmt.Errorf("bare copy: %w", err)
	}
	defer func() { err = errors.Join(err, c.shadow.Close()) }()
	if c.replica, err = os.Create(filepath.Join(dir, "bare-replica")); err != nil {
		return fmt.Errorf("bare copy: %w", err)
	}
	defer func() { err = errors.Join(err, c.replica.Close()) }()
	return c.run(ctx)
}

func (c *bareCopy) run(ctx context.Context) error {
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		f, err := os.Open(c.walPath)
		if errors.Is(err, os.ErrNotExist) {
			continue
		} else if err != nil {
			return fmt.Errorf("bare copy: %w", err)
		}
		n, err := c.copyNew(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("bare copy: %w", err)
		}
		if n > 0 {
			if err := errors.Join(c.shadow.Sync(), c.replica.Sync()); err != nil {
				return fmt.Errorf("bare copy: %w", err)
			}
		}
	}
}

// copyNew copies the WAL's bytes past c.off, when a batch or a second's
// worth is due, and returns how many it copied.
func (c *bareCopy) copyNew(f *os.File) (int64, error) {
	var b [walformat.HeaderSize]byte
	if _, err := f.ReadAt(b[:], 0); err != nil {
		return 0, nil // no WAL header written yet
	}
	hdr, err := walformat.ParseHeader(b[:])
	if err != nil {
		return 0, nil // a header being written
	}
	if !hdr.SameWAL(c.hdr) { // a restarted WAL: copy from its start
		c.hdr, c.off = hdr, walformat.HeaderSize
	}
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	if st.Size()-c.off < bareCopyBatch && time.Since(c.last) < time.Second {
		return 0, nil
	}
	c.last = time.Now()
	var n int64
	for c.off < st.Size() {
		k, err := f.ReadAt(c.buf, c.off)
		if k == 0 {
			if err != nil && !errors.Is(err, io.EOF) {
				return n, err
			}
			break
		}
		if _, err := c.shadow.Write(c.buf[:k]); err != nil {
			return n, err
		}
		if _, err := c.replica.Write(c.buf[:k]); err != nil {
			return n, err
		}
		c.off += int64(k)
		n += int64(k)
	}
	return n, nil
}
