package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// bareCopy is the floor for the overhead figures: the least a WAL
// replicator that keeps a shadow copy must do, and no more. Every 25 ms,
// once the WAL has 1 MiB it has not copied (or a second has passed), it
// reads the new bytes and appends them to a shadow file and to a replica
// file, then fsyncs both. No compression, no validation, no checkpoints,
// no locks: the application checkpoints by itself, and bytes a checkpoint
// restarts over before they are read are simply missed. Its ratio is what
// any replicator writing every WAL byte twice on the same disk could at
// best reach on this machine.
type bareCopy struct {
	walPath         string
	shadow, replica *os.File
	off             int64     // the WAL offset copied up to
	salts           []byte    // the salts of the WAL being copied
	last            time.Time // the last copy
	buf             []byte
	cancel          context.CancelFunc
	done            chan error
}

// bareCopyBatch is how much new WAL starts a copy before the second is up.
const bareCopyBatch = 1 << 20

// startBareCopy starts the copier on walPath, writing into dir.
func startBareCopy(walPath, dir string) (*bareCopy, error) {
	shadow, err := os.Create(filepath.Join(dir, "bare-shadow"))
	if err != nil {
		return nil, fmt.Errorf("bare copy: %w", err)
	}
	replica, err := os.Create(filepath.Join(dir, "bare-replica"))
	if err != nil {
		shadow.Close()
		return nil, fmt.Errorf("bare copy: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &bareCopy{walPath: walPath, shadow: shadow, replica: replica, last: time.Now(),
		buf: make([]byte, bareCopyBatch), cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := c.run(ctx)
		c.done <- errors.Join(err, shadow.Close(), replica.Close())
	}()
	return c, nil
}

// bareCopyCmd is the bench binary's own first argument that makes it the
// bare copier: the copier runs as a process of its own, as a replicator
// does, not as a goroutine of the bench (bareCopyProc).
const bareCopyCmd = "bare-copy"

// runBareCopy is the copier process: it copies until SIGINT.
func runBareCopy(walPath, dir string) error {
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt)
	c, err := startBareCopy(walPath, dir)
	if err != nil {
		return err
	}
	select {
	case <-sig:
		return c.stop()
	case err := <-c.done:
		return err
	}
}

// bareCopyProc is a running copier process.
type bareCopyProc struct{ cmd *exec.Cmd }

// startBareCopyProc starts this binary as the copier of walPath into dir.
func startBareCopyProc(walPath, dir string) (*bareCopyProc, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("bare copy: %w", err)
	}
	cmd := exec.Command(self, bareCopyCmd, walPath, dir)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bare copy: %w", err)
	}
	return &bareCopyProc{cmd: cmd}, nil
}

// stop ends the copier process.
func (p *bareCopyProc) stop() error {
	p.cmd.Process.Signal(syscall.SIGINT)
	if err := p.cmd.Wait(); err != nil {
		return fmt.Errorf("bare copy: %w", err)
	}
	return nil
}

// stop ends the copier and returns its error, if any.
func (c *bareCopy) stop() error {
	c.cancel()
	return <-c.done
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
	var hdr [32]byte
	if _, err := f.ReadAt(hdr[:], 0); err != nil {
		return 0, nil // no WAL header written yet
	}
	if !bytes.Equal(hdr[16:24], c.salts) { // a restarted WAL: copy from its start
		c.salts = append(c.salts[:0], hdr[16:24]...)
		c.off = int64(len(hdr))
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
