//go:build linux

package litestream_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// heldLocks counts the POSIX locks this process holds on the file at path,
// from /proc/locks (fields: id, POSIX, ADVISORY, READ|WRITE, pid,
// major:minor:inode, start, end).
func heldLocks(t *testing.T, path string) int {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	inode := fmt.Sprintf(":%d", st.Ino)
	f, err := os.Open("/proc/locks")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pid := fmt.Sprint(os.Getpid())
	n := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 6 && fields[1] == "POSIX" && fields[4] == pid && strings.HasSuffix(fields[5], inode) {
			n++
		}
	}
	return n
}

// TestDB_KeepsSQLiteLocks: after snapshots, checkpoints, validation and
// retention, the process still holds SQLite's SHARED lock on the database
// file and its locks on the -shm. Closing any descriptor of a file drops
// every POSIX lock the process holds on it; without these locks the
// application's last close deletes the WAL under the engine (it did, when
// snapshots opened and closed the database file).
func TestDB_KeepsSQLiteLocks(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	commitRows(t, w, 10)
	if err := w.Close(); err != nil { // the engine's connections are the only ones
		t.Fatal(err)
	}
	db, r := newTestDB(t, path, replicaDir)
	r.Retention = time.Nanosecond // every retention run takes a new snapshot
	defer db.Close(ctx)
	if err := db.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check := func(after string) {
		t.Helper()
		if n := heldLocks(t, path); n == 0 {
			t.Fatalf("after %s: the process holds no lock on the database file", after)
		}
		if n := heldLocks(t, path+"-shm"); n == 0 {
			t.Fatalf("after %s: the process holds no lock on the -shm", after)
		}
	}
	check("the first sync")
	if _, err := r.Snapshot(ctx); err != nil {
		t.Fatal(err)
	}
	check("a snapshot")
	if err := db.Checkpoint(ctx, true); err != nil {
		t.Fatal(err)
	}
	check("a checkpoint")
	if res, err := r.Validate(ctx); err != nil || !res.OK {
		t.Fatalf("validate: %+v, %v", res, err)
	}
	check("a validation")
	if err := r.EnforceRetention(ctx); err != nil {
		t.Fatal(err)
	}
	check("retention")
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	check("a replica sync")
}
