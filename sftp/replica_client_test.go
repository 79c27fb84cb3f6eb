package sftp_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/replicatest"
	"github.com/litestream-go/litestream/internal/sftptest"
	"github.com/litestream-go/litestream/sftp"
)

// newClient returns a client that logs in with the server's client key
// and pins its host key, for a fresh directory.
func newClient(t testing.TB, srv *sftptest.Server) *sftp.ReplicaClient {
	return &sftp.ReplicaClient{
		Host: srv.Addr, User: srv.User, KeyPath: srv.ClientKeyPath, Path: srv.NewDir(t), HostKey: srv.HostKeyLine(),
	}
}

// closeAtEnd closes the client's connection when the test ends.
func closeAtEnd(t testing.TB, c *sftp.ReplicaClient) *sftp.ReplicaClient {
	t.Cleanup(func() { c.Close() })
	return c
}

// TestConformance runs the shared replica suite against a real OpenSSH
// sshd process.
func TestConformance(t *testing.T) {
	srv := sftptest.StartServer(t)
	replicatest.RunConformance(t, func(t *testing.T) litestream.ReplicaClient {
		return closeAtEnd(t, newClient(t, srv))
	})
}

// TestPasswordLogin: a system user logs in with its password, and the
// replica path may be relative to its login directory.
func TestPasswordLogin(t *testing.T) {
	srv := sftptest.StartServer(t)
	dir := sftptest.EnsurePasswordUser(t)
	ctx := context.Background()
	c := closeAtEnd(t, &sftp.ReplicaClient{Host: srv.Addr, User: sftptest.PasswordUser, Password: sftptest.Password,
		Path: filepath.Base(dir) + "/db", HostKey: srv.HostKeyLine()})
	if err := c.CheckStore(ctx); err != nil {
		t.Fatal(err)
	}
	pos := litestream.Pos{Generation: "0123456789abcdef", Index: 1}
	if _, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("hello"))); err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(dir, "db", "generations", pos.Generation, "wal", "00000001_00000000.wal.lz4")
	if b, err := os.ReadFile(want); err != nil || string(b) != "hello" {
		t.Fatalf("%s: %q, %v", want, b, err)
	}
}

// TestOpsCounted: each request is counted once, with the bytes moved.
func TestOpsCounted(t *testing.T) {
	srv := sftptest.StartServer(t)
	c := closeAtEnd(t, newClient(t, srv))
	var ops replicatest.Ops
	c.OnOp = ops.Count
	replicatest.RequireOneOfEach(t, c, &ops)
}

// TestResumedDownload: a download whose connection breaks, more than
// once, goes on from where it stopped on a new connection.
func TestResumedDownload(t *testing.T) {
	srv := sftptest.StartServer(t)
	proxy := sftptest.StartCutProxy(t, srv.Addr)
	c := closeAtEnd(t, newClient(t, srv))
	c.Host = proxy.Addr
	ctx := context.Background()
	data := make([]byte, 6<<20)
	for i := range data {
		data[i] = byte(i * 7 / 5)
	}
	if _, err := c.WriteSnapshot(ctx, "0123456789abcdef", 1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	proxy.CutAfter.Store(2 << 20) // every connection breaks after 2 MiB
	rc, err := c.OpenSnapshot(ctx, "0123456789abcdef", 1)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes, equal %v: %v", len(got), len(data), bytes.Equal(got, data), err)
	}
	if proxy.Cuts.Load() < 2 {
		t.Fatalf("only %d connections were cut", proxy.Cuts.Load())
	}
	t.Logf("%d connections cut, download complete", proxy.Cuts.Load())

	// Past its resumes, a download fails and says where.
	proxy.CutAfter.Store(200 << 10)
	c.Close()
	rc, err = c.OpenSnapshot(ctx, "0123456789abcdef", 1)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if err == nil || !strings.Contains(err.Error(), "at byte") {
		t.Fatalf("err = %v", err)
	}
}

// TestOutage: a request while the server is down fails with a clear
// error after its retries; one that begins during a short outage
// succeeds once the server is back, on a new connection.
func TestOutage(t *testing.T) {
	srv := sftptest.StartServer(t)
	c := closeAtEnd(t, newClient(t, srv))
	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef"}
	if _, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("a"))); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	c.MaxAttempts = 2
	_, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("b")))
	if err == nil || !strings.Contains(err.Error(), "cannot reach the SFTP server "+srv.Addr) || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("write during outage: %v", err)
	}
	c.MaxAttempts = 0
	go func() { time.Sleep(1500 * time.Millisecond); srv.Start() }()
	if _, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("c"))); err != nil {
		t.Fatalf("write across the outage's end: %v", err)
	}
	rc, err := c.OpenSegment(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(rc)
	rc.Close()
	if string(b) != "c" {
		t.Fatalf("read %q", b)
	}
}

// TestBrokenConnection: writes and listings on a connection that broke
// while idle go through on a new one.
func TestBrokenConnection(t *testing.T) {
	srv := sftptest.StartServer(t)
	proxy := sftptest.StartCutProxy(t, srv.Addr)
	c := closeAtEnd(t, newClient(t, srv))
	c.Host = proxy.Addr
	ctx := context.Background()
	for i := range 5 {
		pos := litestream.Pos{Generation: "0123456789abcdef", Offset: int64(i)}
		if _, err := c.WriteSegment(ctx, pos, bytes.NewReader(bytes.Repeat([]byte{byte(i)}, 100000))); err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		proxy.CutAll()
		segs, err := c.Segments(ctx, pos.Generation)
		if err != nil || len(segs) != i+1 {
			t.Fatalf("list %d: %d segments, %v", i, len(segs), err)
		}
		proxy.CutAll()
	}
}

// TestMissingIsNotExist: reads of missing files wrap os.ErrNotExist and
// name the path.
func TestMissingIsNotExist(t *testing.T) {
	srv := sftptest.StartServer(t)
	c := closeAtEnd(t, newClient(t, srv))
	_, err := c.OpenSnapshot(context.Background(), "0123456789abcdef", 7)
	if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), "00000007.snapshot.lz4") {
		t.Fatalf("err = %v", err)
	}
}
