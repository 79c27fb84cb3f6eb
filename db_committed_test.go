package litestream_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/walformat"
)

// appendFakeCommit writes n frames past the WAL's last valid frame: valid
// salts and cumulative checksums, a copy of the last frame's page, the last
// one a commit. SQLite's wal-index does not count them, as after a writer
// killed between writing its commit frame and updating the wal-index, so
// SQLite's next writer overwrites them from its mxFrame+1.
func appendFakeCommit(t *testing.T, walPath string, n int) {
	t.Helper()
	b, err := os.ReadFile(walPath)
	if err != nil {
		t.Fatal(err)
	}
	hdr, err := walformat.ParseHeader(b)
	if err != nil {
		t.Fatal(err)
	}
	rd := walformat.NewReader(bytes.NewReader(b[walformat.HeaderSize:]), hdr, hdr.Checksum1, hdr.Checksum2)
	end := int64(walformat.HeaderSize)
	var last []byte
	var lastCommit uint32
	for {
		fh, frame, err := rd.Next()
		if err != nil {
			break
		}
		end += hdr.FrameSize()
		last = append(last[:0], frame...)
		if fh.IsCommit() {
			lastCommit = fh.Commit
		}
	}
	if last == nil {
		t.Fatal("the WAL has no frame to copy")
	}
	s1, s2 := rd.Checksum()
	be := binary.BigEndian
	var out []byte
	for i := 0; i < n; i++ {
		f := append([]byte(nil), last...)
		commit := uint32(0)
		if i == n-1 {
			commit = lastCommit
		}
		be.PutUint32(f[4:], commit)
		be.PutUint32(f[8:], hdr.Salt1)
		be.PutUint32(f[12:], hdr.Salt2)
		s1, s2 = walformat.Checksum(hdr.ByteOrder(), s1, s2, f[:8])
		s1, s2 = walformat.Checksum(hdr.ByteOrder(), s1, s2, f[walformat.FrameHeaderSize:])
		be.PutUint32(f[16:], s1)
		be.PutUint32(f[20:], s2)
		out = append(out, f...)
	}
	wf, err := os.OpenFile(walPath, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer wf.Close()
	if _, err := wf.WriteAt(out, end); err != nil {
		t.Fatal(err)
	}
}

// TestDB_FramesPastWALIndexAreNotCommitted: valid-looking frames past what
// SQLite's wal-index counts are not a commit. The engine once took them as
// one; the next transaction, which SQLite writes over them, was then never
// copied (the frame at the shadow's end still matched), the checkpoint
// restarted the WAL over it, and the replica lacked it for good.
func TestDB_FramesPastWALIndexAreNotCommitted(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	commitRows(t, w, 5)
	db, r := newManualDB(t, path, replicaDir)
	syncAll(t, db, r)
	size := db.Stats().ShadowSize
	appendFakeCommit(t, path+"-wal", 3)
	syncAll(t, db, r)
	if got := db.Stats().ShadowSize; got != size {
		t.Errorf("the shadow WAL took frames the wal-index does not count: %d -> %d bytes", size, got)
	}
	commitRows(t, w, 1) // written over the fake frames
	syncAll(t, db, r)
	if err := db.Checkpoint(ctx, false); err != nil {
		t.Fatal(err)
	}
	commitRows(t, w, 3)
	syncAll(t, db, r)
	requireRestoresAll(t, replicaDir, w)
}

// segments returns every segment of the replica in dir, decoded, by path.
func segments(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || !strings.HasSuffix(p, litestream.SegmentExt) {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		b, err := io.ReadAll(lz4.NewReader(bufio.NewReader(f)))
		out[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDB_RolledBackFramesNeverShipped: a transaction whose pages spilled
// into the WAL and which then rolled back must not reach the replica, and
// every segment ends on a commit frame, across the rollover that follows.
func TestDB_RolledBackFramesNeverShipped(t *testing.T) {
	ctx := context.Background()
	w, path, replicaDir := openWriter(t, 0)
	commitRows(t, w, 5)
	db, r := newManualDB(t, path, replicaDir)
	syncAll(t, db, r)
	conn := appConn(t, "file:"+path+"?_pragma=cache_size(5)&_pragma=busy_timeout(5000)")
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	marker := strings.Repeat("ROLLED-BACK ", 85) // about 1 KB
	for i := 0; i < 200; i++ {
		if _, err := conn.ExecContext(ctx, "INSERT INTO t (tx, nrows, payload, sum) VALUES (-1, 1, ?, '')", marker); err != nil {
			t.Fatal(err)
		}
	}
	syncAll(t, db, r) // the spilled frames are in the WAL now
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	if err := db.Checkpoint(ctx, false); err != nil {
		t.Fatal(err)
	}
	commitRows(t, w, 3)
	syncAll(t, db, r)
	if db.Stats().ShadowIndex == 0 {
		t.Fatal("no rollover happened")
	}
	for p, b := range segments(t, replicaDir) {
		if bytes.Contains(b, []byte("ROLLED-BACK")) {
			t.Errorf("segment %s holds rolled-back data", p)
		}
		const fs = 4096 + walformat.FrameHeaderSize
		body := b
		if strings.HasSuffix(p, "0000000000000000"+litestream.SegmentExt) || len(b)%fs == walformat.HeaderSize {
			body = b[min(len(b), walformat.HeaderSize):]
		}
		if len(body) == 0 {
			continue
		}
		if len(body)%fs != 0 || binary.BigEndian.Uint32(body[len(body)-fs+4:]) == 0 {
			t.Errorf("segment %s (%d bytes) does not end on a commit frame", p, len(b))
		}
	}
	requireRestoresAll(t, replicaDir, w)
}
