package litestream

import (
	"fmt"
	"io"
	"os"
)

// Durable file writes, shared by the engine and restore: a write is
// durable only once its file is fsynced, and a create or rename only once
// its directory is.

// syncFile fsyncs the file at path. (Opened for writing: Windows flushes
// only a handle with write access.)
func syncFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// SyncDir fsyncs a directory so that a rename or create in it is durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open directory %s: %w", dir, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}

// offsetWriter writes sequentially at an offset of a file.
type offsetWriter struct {
	f   io.WriterAt
	off int64
}

// Write writes p at the offset and moves the offset past it.
func (w *offsetWriter) Write(p []byte) (int, error) {
	n, err := w.f.WriteAt(p, w.off)
	w.off += int64(n)
	return n, err
}
