package gcs_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/gcs"
	"github.com/litestream-go/litestream/internal/gcstest"
	"github.com/litestream-go/litestream/internal/replicatest"
)

// newClient returns a client for a fresh prefix of a bucket.
func newClient(bucket string) *gcs.ReplicaClient {
	return &gcs.ReplicaClient{Bucket: bucket, Path: fmt.Sprintf("t%d/db", time.Now().UnixNano())}
}

// noCredentials leaves the Google chain nothing to find, so that a test
// shows the emulator needs none.
func noCredentials(t *testing.T) {
	t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
	t.Setenv("HOME", t.TempDir())
	t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
}

// TestConformance runs the shared replica suite against a real
// fake-gcs-server process, a fresh bucket per client.
func TestConformance(t *testing.T) {
	srv := gcstest.StartServer(t)
	srv.UseEmulator(t)
	noCredentials(t)
	replicatest.RunConformance(t, func(t *testing.T) litestream.ReplicaClient {
		return newClient(srv.CreateBucket(t))
	})
}

func TestOpsCounted(t *testing.T) {
	srv := gcstest.StartServer(t)
	srv.UseEmulator(t)
	c := newClient(srv.CreateBucket(t))
	var ops replicatest.Ops
	c.OnOp = ops.Count
	replicatest.RequireOneOfEach(t, c, &ops)

	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef"}
	// A resumable upload of two chunks and a half: its start and three.
	ops.Puts.Store(0)
	ops.PutBytes.Store(0)
	size := int64(5 * gcs.ChunkSize / 2)
	if _, err := c.WriteSnapshot(ctx, pos.Generation, 0, io.LimitReader(zeros{}, size)); err != nil {
		t.Fatal(err)
	}
	if ops.Puts.Load() != 4 || ops.PutBytes.Load() != size {
		t.Fatalf("a %d-byte upload counted %d PUTs of %d bytes, want 4 of %d", size, ops.Puts.Load(), ops.PutBytes.Load(), size)
	}
}

// TestIdle: a client that has done its work sends nothing more: nothing
// polls, refreshes or keeps a connection busy.
func TestIdle(t *testing.T) {
	srv := gcstest.StartServer(t)
	proxy := gcstest.StartFaultProxy(t, srv, 1)
	proxy.UseEmulator(t)
	c := newClient(srv.CreateBucket(t))
	ctx := context.Background()
	if err := c.CheckStore(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteSegment(ctx, litestream.Pos{Generation: "0123456789abcdef"}, bytes.NewReader([]byte("x"))); err != nil {
		t.Fatal(err)
	}
	before := proxy.Requests.Load()
	time.Sleep(3 * time.Second)
	if n := proxy.Requests.Load() - before; n != 0 {
		t.Fatalf("%d requests while idle", n)
	}
}

// TestResumedDownload: a download whose body is cut short mid-way, again
// and again, is resumed at the offset reached and reads back whole: by the
// storage library's own reopen while that succeeds, and by ours, a bounded
// number of times, when the library's reopen gives up after its retries.
func TestResumedDownload(t *testing.T) {
	srv := gcstest.StartServer(t)
	bucket := srv.CreateBucket(t)
	proxy := gcstest.StartFaultProxy(t, srv, 1)
	proxy.UseEmulator(t)
	c := newClient(bucket)
	c.MaxAttempts = 2
	var gets atomic.Int64
	c.OnOp = func(op string, _ int64) {
		if op == "GET" {
			gets.Add(1)
		}
	}
	ctx := context.Background()
	data := bytes.Repeat([]byte("0123456789abcdef"), 200000) // 3.2 MB
	if _, err := c.WriteSnapshot(ctx, "0123456789abcdef", 1, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	read := func(t *testing.T) {
		t.Helper()
		rc, err := c.OpenSnapshot(ctx, "0123456789abcdef", 1)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(rc)
		rc.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read %d of %d bytes: %v", len(got), len(data), err)
		}
	}

	t.Run("library reopens", func(t *testing.T) {
		gets.Store(0)
		proxy.CutNext(3, 1<<20, 0)
		read(t)
		if proxy.Injected.Load() != 3 || gets.Load() != 1 {
			t.Fatalf("%d bodies cut, %d GETs of ours; want 3 and 1", proxy.Injected.Load(), gets.Load())
		}
	})
	t.Run("ours resumes", func(t *testing.T) {
		gets.Store(0)
		before := proxy.Injected.Load()
		proxy.CutNext(2, 1<<20, c.MaxAttempts) // each cut, then the library's reopen fails
		read(t)
		if proxy.Injected.Load()-before != 2*(1+int64(c.MaxAttempts)) || gets.Load() != 3 {
			t.Fatalf("%d faults, %d GETs of ours; want %d and 3 (open, two resumes)", proxy.Injected.Load()-before, gets.Load(), 2*(1+c.MaxAttempts))
		}
	})
	t.Run("bounded", func(t *testing.T) {
		proxy.CutNext(100, 1<<10, c.MaxAttempts)
		defer proxy.CutNext(0, 0, 0)
		rc, err := c.OpenSnapshot(ctx, "0123456789abcdef", 1)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		_, err = io.ReadAll(rc)
		if err == nil || !strings.Contains(err.Error(), "HTTP 503") {
			t.Fatalf("a download cut every time: %v", err)
		}
		t.Log(err)
	})
}

// TestFaults: 503s, dropped connections and bodies cut short are retried
// or resumed; every write and read still succeeds.
func TestFaults(t *testing.T) {
	srv := gcstest.StartServer(t)
	bucket := srv.CreateBucket(t)
	proxy := gcstest.StartFaultProxy(t, srv, 1)
	proxy.UseEmulator(t)
	proxy.SetFaults(gcstest.Faults{Error503: 0.2, Drop: 0.1, CutBody: 0.3})
	c := newClient(bucket)
	for i := 0; i < 20; i++ {
		replicatest.RoundTripSegment(t, c, i)
	}
	if proxy.Injected.Load() < 10 {
		t.Fatalf("only %d faults injected", proxy.Injected.Load())
	}
	t.Logf("%d faults injected, all survived", proxy.Injected.Load())
}

// TestOutage: while the server is down a write fails with a clear error;
// once it is back (same port, same data) the same write succeeds and the
// earlier objects are still there.
func TestOutage(t *testing.T) {
	srv := gcstest.StartFilesystemServer(t)
	srv.UseEmulator(t)
	c := newClient(srv.CreateBucket(t))
	c.MaxAttempts = 2
	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef"}
	if _, err := c.WriteSnapshot(ctx, pos.Generation, 0, bytes.NewReader([]byte("before"))); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if _, err := c.Generations(ctx); err == nil || !strings.Contains(err.Error(), "cannot reach the GCS emulator at "+srv.Addr) || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("list during outage: %v", err)
	}
	// Uploads too give up after their attempts, with no deadline of the
	// caller's: small ones (one request) and large ones (resumable).
	for _, size := range []int{1, 3 << 20} {
		start := time.Now()
		_, err := c.WriteSegment(ctx, pos, bytes.NewReader(make([]byte, size)))
		if err == nil || !strings.Contains(err.Error(), "cannot reach the GCS emulator at "+srv.Addr) || !strings.Contains(err.Error(), "after 2 attempts") {
			t.Fatalf("%d-byte write during outage: %v", size, err)
		}
		if took := time.Since(start); took > 5*time.Second {
			t.Fatalf("%d-byte write during outage gave up after %s", size, took)
		}
	}
	srv.Start()
	if _, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("x"))); err != nil {
		t.Fatalf("write after outage: %v", err)
	}
	// The bound counts failed attempts, not an upload's requests.
	if _, err := c.WriteSnapshot(ctx, pos.Generation, 1, bytes.NewReader(make([]byte, 5*gcs.ChunkSize/2))); err != nil {
		t.Fatalf("a write of three chunks after outage: %v", err)
	}
	if snaps, err := c.Snapshots(ctx, pos.Generation); err != nil || len(snaps) != 2 {
		t.Fatalf("snapshots after outage: %+v, %v", snaps, err)
	}
}

// TestNoLeftovers: an upload cut short after its first chunks went out
// (a killed process, a canceled context) leaves nothing in the bucket,
// not even outside the replica's listings.
func TestNoLeftovers(t *testing.T) {
	srv := gcstest.StartServer(t)
	srv.UseEmulator(t)
	bucket := srv.CreateBucket(t)
	c := newClient(bucket)
	ctx, cancel := context.WithCancel(context.Background())
	r := &cancelAfter{r: bytes.NewReader(make([]byte, 3*gcs.ChunkSize)), n: 2*gcs.ChunkSize + 1000, cancel: cancel}
	if _, err := c.WriteSnapshot(ctx, "0123456789abcdef", 1, r); err == nil {
		t.Fatal("canceled upload succeeded")
	}
	if names := srv.ObjectNames(t, bucket); len(names) != 0 {
		t.Fatalf("the canceled upload left %v", names)
	}
}

// cancelAfter cancels a context once n bytes have been read.
type cancelAfter struct {
	r      io.Reader
	n      int
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.n -= n; c.n <= 0 {
		c.cancel()
	}
	return n, err
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct{ url, bucket, path string }{
		{"gcs://mybucket/db/app", "mybucket", "db/app"},
		{"gcs://mybucket", "mybucket", ""},
		{"gcs://mybucket/", "mybucket", ""},
		{"gcs://mybucket//a//b/", "mybucket", "a/b"},
		{"gcs://my.bucket.example.com/x", "my.bucket.example.com", "x"},
		{"gcs://mybucket/./a/../b", "mybucket", "b"},
	} {
		c, err := gcs.ParseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if c.Bucket != tc.bucket || c.Path != tc.path {
			t.Errorf("%s: got bucket %q path %q", tc.url, c.Bucket, c.Path)
		}
	}
	for p, want := range map[string]string{"": "", ".": "", "/": "/", "a/": "a", "/a//b/": "/a/b", "./a": "a"} {
		if got := gcs.CleanPath(p); got != want {
			t.Errorf("CleanPath(%q) = %q, want %q", p, got, want)
		}
	}
	for _, bad := range []string{"gcs:///path", "gcs://", "s3://b/p", "gcs://u:secretpw@b/p", "gcs://b/p?x=1", "gcs:b"} {
		_, err := gcs.ParseURL(bad)
		if err == nil {
			t.Errorf("%s accepted", bad)
		} else if strings.Contains(err.Error(), "secretpw") {
			t.Errorf("%s: the password is in the error: %v", bad, err)
		}
	}
}

// TestStreamingMemory: a write and a read of an object many times the
// chunk size keep the heap far below the object's size.
func TestStreamingMemory(t *testing.T) {
	srv := gcstest.StartServer(t)
	srv.UseEmulator(t)
	c := newClient(srv.CreateBucket(t))
	ctx := context.Background()
	const size = 96 << 20
	peak := heapPeak(t)
	if _, err := c.WriteSnapshot(ctx, "0123456789abcdef", 1, io.LimitReader(zeros{}, size)); err != nil {
		t.Fatal(err)
	}
	rc, err := c.OpenSnapshot(ctx, "0123456789abcdef", 1)
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.Copy(io.Discard, rc)
	rc.Close()
	if err != nil || n != size {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	if p := peak(); p > size/3 {
		t.Fatalf("heap peaked at %d MiB moving a %d MiB object", p>>20, size>>20)
	} else {
		t.Logf("heap peaked at %d MiB moving a %d MiB object", p>>20, size>>20)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// heapPeak samples the heap in use until the returned function is called,
// which returns the largest sample above the heap at the start.
func heapPeak(t *testing.T) func() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var ms runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			runtime.ReadMemStats(&ms)
			if ms.HeapInuse > base && ms.HeapInuse-base > peak.Load() {
				peak.Store(ms.HeapInuse - base)
			}
		}
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			close(done)
		}
	})
	return func() uint64 {
		close(done)
		<-stopped
		return peak.Load()
	}
}
