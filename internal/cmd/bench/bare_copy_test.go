package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/litestream-go/litestream/internal/walformat"
)

// The bare copier must copy every WAL byte it is given, twice, and start
// over when the WAL restarts; otherwise the floor would be a floor of less
// work than a replicator does.
func TestBareCopyCopiesNewBytesTwice(t *testing.T) {
	dir := t.TempDir()
	walPath := filepath.Join(dir, "app.db-wal")
	wal := func(salt uint32, body []byte) []byte {
		h := walformat.Header{Magic: 0x377f0682, Version: 3007000, PageSize: 4096, Salt1: salt, Salt2: salt}
		h.Checksum1, h.Checksum2 = walformat.Checksum(binary.LittleEndian, 0, 0, h.Encode()[:24])
		return append(h.Encode(), body...)
	}
	first := bytes.Repeat([]byte("frame"), (bareCopyBatch+4096)/5)
	if err := os.WriteFile(walPath, wal(1, first), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- runBareCopy(ctx, walPath, dir) }()
	waitFor := func(want []byte) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			s, _ := os.ReadFile(filepath.Join(dir, "bare-shadow"))
			r, _ := os.ReadFile(filepath.Join(dir, "bare-replica"))
			if bytes.Equal(s, want) && bytes.Equal(r, want) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("shadow %d bytes, replica %d bytes, want %d each", len(s), len(r), len(want))
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(first) // a batch's worth: copied at the next look

	// A restarted WAL (new salts), less than a batch: copied from its start
	// within the second.
	second := []byte("after the restart")
	if err := os.WriteFile(walPath, wal(2, second), 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(append(append([]byte{}, first...), second...))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
