package e2e

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/walformat"

	_ "modernc.org/sqlite"
)

// TestRestoreScale restores a generation of 100,000 one-frame segments
// (a day of one sync a second holds 86,400) from a directory replica with
// the binary under `ulimit -n 256`, and requires the result to hold the
// last commit and the process to take under 64 MB of memory beyond what
// the binary takes at rest (`litestream version`); it reports time, peak
// memory and the most descriptors seen open.
// It takes a few minutes, so it is not part of the short run:
//
//	go test -run TestRestoreScale -v ./internal/e2e/
//
// (LITESTREAM_SCALE_SEGMENTS=N sets another count.)
func TestRestoreScale(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000 segments: run without -short")
	}
	n := 100_000
	if s := os.Getenv("LITESTREAM_SCALE_SEGMENTS"); s != "" {
		n, _ = strconv.Atoi(s)
	}
	replica := filepath.Join(t.TempDir(), "replica")
	start := time.Now()
	lastPage := writeOneFrameSegments(t, replica, n)
	t.Logf("wrote %d one-frame segments in %s", n, time.Since(start).Round(time.Millisecond))

	out := filepath.Join(t.TempDir(), "restored.db")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Minute)
	defer cancel()
	// ulimit in a shell that then becomes litestream: the limit binds
	// only the restore.
	cmd := exec.CommandContext(ctx, "sh", "-c", `ulimit -n 256 && exec "$0" "$@"`, bin.Litestream, "restore", "-v", "-o", out, replica)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start = time.Now()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Descriptors, sampled for the report only (never asserted on: the
	// ulimit is the bound).
	peakFDs := 0
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	var err error
wait:
	for {
		select {
		case err = <-done:
			break wait
		case <-tick.C:
			if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", cmd.Process.Pid)); err == nil {
				peakFDs = max(peakFDs, len(ents))
			}
		}
	}
	elapsed := time.Since(start)
	if err != nil {
		t.Fatalf("restore: %v\n%s", err, tail(stderr.String(), 2000))
	}
	rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024 // KiB on Linux
	// The binary holds every backend's SDK: what it takes before any work
	// (litestream version) is not the restore's.
	base := exec.Command(bin.Litestream, "version")
	if err := base.Run(); err != nil {
		t.Fatal(err)
	}
	baseRSS := base.ProcessState.SysUsage().(*syscall.Rusage).Maxrss * 1024
	rss -= baseRSS
	t.Logf("restored %d segments in %s: peak memory %.1f MB above the binary's %.1f MB at rest, at most %d descriptors seen open (limit 256)",
		n, elapsed.Round(time.Millisecond), float64(rss)/1e6, float64(baseRSS)/1e6, peakFDs)
	for _, l := range strings.Split(stderr.String(), "\n") {
		if strings.Contains(l, "restore complete") {
			t.Log(l)
		}
	}
	if rss > 64<<20 {
		t.Errorf("peak memory %.1f MB, over 64 MB", float64(rss)/1e6)
	}
	db, err := sql.Open("sqlite", "file:"+out+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v string
	if err := db.QueryRow("SELECT v FROM t").Scan(&v); err != nil {
		t.Fatal(err)
	}
	if v != lastPage {
		t.Fatalf("restored row %q, want the last commit's %q", v, lastPage)
	}
}

// writeOneFrameSegments writes a generation of a 512-byte-page database:
// a snapshot, then n segments of one commit frame each, every one a new
// version of the row of table t (page 2). It returns the last value.
func writeOneFrameSegments(t *testing.T, replica string, n int) string {
	t.Helper()
	gen := "0000000000000abc"
	path := filepath.Join(t.TempDir(), "src.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1)
	for _, q := range []string{"PRAGMA page_size=512", "PRAGMA journal_mode=DELETE", "CREATE TABLE t (v TEXT)", "INSERT INTO t VALUES ('v000000000')"} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	snap, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	const pageSize = 512
	page2 := bytes.Clone(snap[pageSize : 2*pageSize])
	at := bytes.Index(page2, []byte("v000000000"))
	if at < 0 {
		t.Fatal("row not on page 2")
	}
	pages := uint32(len(snap) / pageSize)

	var codec litestream.Codec
	put := func(rel string, raw []byte) {
		p := filepath.Join(replica, "generations", gen, filepath.FromSlash(rel))
		var b bytes.Buffer
		if _, err := codec.Encode(&b, bytes.NewReader(raw)); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"snapshots", "wal"} {
		if err := os.MkdirAll(filepath.Join(replica, "generations", gen, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	put("snapshots/00000000.snapshot.lz4", snap)

	hdr := walformat.Header{Magic: walformat.MagicLE, Version: walformat.Version, PageSize: pageSize, Salt1: 7, Salt2: 9}
	hb := hdr.Encode()
	hdr.Checksum1, hdr.Checksum2 = walformat.Checksum(binary.LittleEndian, 0, 0, hb[:24])
	s1, s2 := hdr.Checksum1, hdr.Checksum2
	off := int64(0)
	var last string
	for i := 1; i <= n; i++ {
		last = fmt.Sprintf("v%09d", i)
		copy(page2[at:], last)
		fh := make([]byte, walformat.FrameHeaderSize, walformat.FrameHeaderSize+pageSize)
		binary.BigEndian.PutUint32(fh[0:], 2)
		binary.BigEndian.PutUint32(fh[4:], pages)
		binary.BigEndian.PutUint32(fh[8:], hdr.Salt1)
		binary.BigEndian.PutUint32(fh[12:], hdr.Salt2)
		s1, s2 = walformat.Checksum(binary.LittleEndian, s1, s2, fh[:8])
		s1, s2 = walformat.Checksum(binary.LittleEndian, s1, s2, page2)
		binary.BigEndian.PutUint32(fh[16:], s1)
		binary.BigEndian.PutUint32(fh[20:], s2)
		raw := append(fh, page2...)
		if i == 1 {
			raw = append(hdr.Encode(), raw...)
		}
		put("wal/"+litestream.SegmentName(0, off), raw)
		off += int64(len(raw))
	}
	return last
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
