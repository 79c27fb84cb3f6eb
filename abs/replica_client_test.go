package abs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/abs"
	"github.com/litestream-go/litestream/internal/abstest"
	"github.com/litestream-go/litestream/internal/replicatest"
)

var seq atomic.Int64

// newClient returns a client for a fresh prefix of a container on endpoint.
func newClient(endpoint, container string) *abs.ReplicaClient {
	return &abs.ReplicaClient{
		AccountName: abstest.AccountName, AccountKey: abstest.AccountKey,
		Bucket: container, Path: fmt.Sprintf("t%d/db", seq.Add(1)), Endpoint: endpoint,
	}
}

// TestConformance runs the shared replica suite against a real Azurite
// process, a fresh container per client.
func TestConformance(t *testing.T) {
	srv := abstest.StartServer(t)
	replicatest.RunConformance(t, func(t *testing.T) litestream.ReplicaClient {
		return newClient(srv.Endpoint(), srv.CreateContainer(t))
	})
}

func TestOpsCounted(t *testing.T) {
	srv := abstest.StartServer(t)
	c := newClient(srv.Endpoint(), srv.CreateContainer(t))
	var ops replicatest.Ops
	c.OnOp = ops.Count
	replicatest.RequireOneOfEach(t, c, &ops)

	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef"}
	// A large upload: its blocks' bytes are counted once.
	ops.Puts.Store(0)
	ops.PutBytes.Store(0)
	size := int64(2*abs.BlockSize + 100)
	if _, err := c.WriteSnapshot(ctx, pos.Generation, 0, io.LimitReader(zeros{}, size)); err != nil {
		t.Fatal(err)
	}
	if ops.Puts.Load() != 4 || ops.PutBytes.Load() != size {
		t.Fatalf("a 3-block upload: %d PUTs, %d bytes; want 4 (3 blocks and the list), %d", ops.Puts.Load(), ops.PutBytes.Load(), size)
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// sdkText is what the SDK's own error text holds and ours never does.
var sdkText = []string{"RESPONSE", "ERROR CODE", "x-ms-request-id", "-----", "SharedKey", "Signature"}

// checks are the startup check's assertions, with the SDK's text.
var checks = replicatest.StoreCheck{Foreign: sdkText}

// TestCheckStore: the startup check tells every permanent failure at once,
// in one line naming what is wrong, never the key; retries what may pass
// within its bound.
func TestCheckStore(t *testing.T) {
	srv := abstest.StartServer(t)
	cont := srv.CreateContainer(t)
	check, permanent := replicatest.Check, checks.Permanent

	t.Run("ok", func(t *testing.T) {
		var ops []string
		c := newClient(srv.Endpoint(), cont)
		c.OnOp = func(op string, _ int64) { ops = append(ops, op) }
		if _, err := check(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(ops) != "[LIST]" {
			t.Fatalf("the check made requests %v, want one LIST", ops)
		}
	})
	t.Run("wrong key", func(t *testing.T) {
		c := newClient(srv.Endpoint(), cont)
		wrong := "d3Jvbmcta2V5LXZhbHVlLXRoYXQtaXMtYmFzZTY0LWVuY29kZWQ="
		c.AccountKey = wrong
		err := permanent(t, c, "access denied", `storage account "devstoreaccount1"`, "account key is wrong", "HTTP 403")
		if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), abstest.AccountKey) {
			t.Fatalf("the key is in the error: %v", err)
		}
		t.Logf("wrong key: %v", err)
	})
	t.Run("key not base64", func(t *testing.T) {
		c := newClient(srv.Endpoint(), cont)
		c.AccountKey = "not base64 secret!"
		err := permanent(t, c, `storage account "devstoreaccount1"`, "not valid base64")
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("the key is in the error: %v", err)
		}
	})
	t.Run("no key", func(t *testing.T) {
		t.Setenv(abs.AccountKeyEnv, "")
		c := newClient(srv.Endpoint(), cont)
		c.AccountKey = ""
		err := permanent(t, c, `no Azure account key for storage account "devstoreaccount1": set LITESTREAM_AZURE_ACCOUNT_KEY, or account-key in the config`)
		if !errors.Is(err, abs.ErrNoAccountKey) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("key from the environment", func(t *testing.T) {
		t.Setenv(abs.AccountKeyEnv, abstest.AccountKey)
		c := newClient(srv.Endpoint(), cont)
		c.AccountKey = ""
		if _, err := check(c, 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing container", func(t *testing.T) {
		err := permanent(t, newClient(srv.Endpoint(), "no-such-container"),
			`container "no-such-container" does not exist in storage account "devstoreaccount1" at `+srv.Endpoint(), "(ContainerNotFound, HTTP 404)", "create it")
		if strings.Contains(err.Error(), abstest.AccountKey) {
			t.Fatalf("the key is in the error: %v", err)
		}
		t.Logf("missing container: %v", err)
	})
	t.Run("unreachable", func(t *testing.T) {
		addr := replicatest.ClosedPort(t)
		err := checks.Unreachable(t, newClient("http://"+addr+"/"+abstest.AccountName, cont), "cannot reach the Azure Blob Storage endpoint http://"+addr)
		if strings.Contains(err.Error(), abstest.AccountKey) {
			t.Fatalf("the key is in the error: %v", err)
		}
		t.Logf("unreachable: %v", err)
	})
	t.Run("no answer", func(t *testing.T) {
		addr := replicatest.SilentServer(t)
		checks.NoAnswer(t, newClient("http://"+addr, cont), "cannot reach the Azure Blob Storage endpoint http://"+addr+" (no answer in 1.5s)")
	})
	t.Run("server errors", func(t *testing.T) {
		p := startProxy(t, srv, &proxyFaults{status500: true})
		_, err := check(newClient(p.URL+"/"+abstest.AccountName, cont), 1500*time.Millisecond)
		if !errors.Is(err, litestream.ErrStoreBusy) || !strings.Contains(err.Error(), "HTTP 500") {
			t.Fatalf("err = %v", err)
		}
		checks.OurWords(t, err)
	})
}

// proxyFaults are what startProxy does to the requests it forwards.
type proxyFaults struct {
	status500 bool         // answer every request with a 500
	every500  int64        // answer every every500th request with a 500
	requests  atomic.Int64 // requests seen
	cutBodies atomic.Int64 // cut this many blob bodies after half their bytes
	cut       atomic.Int64 // bodies cut so far
	ranged    atomic.Int64 // ranged GETs seen
}

// startProxy forwards requests to srv, with faults. The shared key does
// not sign the host, so a client can talk through it.
func startProxy(t *testing.T, srv *abstest.Server, f *proxyFaults) *httptest.Server {
	p := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if n := f.requests.Add(1); f.status500 || f.every500 > 0 && n%f.every500 == 0 {
			w.Header().Set("x-ms-error-code", "InternalError")
			w.WriteHeader(500)
			return
		}
		out := r.Clone(r.Context())
		out.RequestURI = ""
		out.URL.Scheme, out.URL.Host = "http", srv.Addr
		resp, err := http.DefaultTransport.RoundTrip(out)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		defer resp.Body.Close()
		for k, v := range resp.Header {
			w.Header()[k] = v
		}
		if r.Header.Get("x-ms-range") != "" || r.Header.Get("Range") != "" {
			f.ranged.Add(1)
		}
		blobGet := r.Method == http.MethodGet && r.URL.Query().Get("comp") == "" && resp.StatusCode/100 == 2
		if blobGet && resp.ContentLength > 1 && f.cut.Load() < f.cutBodies.Load() {
			f.cut.Add(1)
			w.WriteHeader(resp.StatusCode)
			io.CopyN(w, resp.Body, resp.ContentLength/2)
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler) // drops the connection mid-body
		}
		w.WriteHeader(resp.StatusCode)
		io.Copy(w, resp.Body)
	}))
	t.Cleanup(p.Close)
	return p
}

// TestResumedDownload: a download whose body is cut short resumes at the
// byte reached, a bounded number of times, and reads the object exactly.
func TestResumedDownload(t *testing.T) {
	srv := abstest.StartServer(t)
	cont := srv.CreateContainer(t)
	f := &proxyFaults{}
	p := startProxy(t, srv, f)
	c := newClient(p.URL+"/"+abstest.AccountName, cont)
	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef"}
	data := bytes.Repeat([]byte("0123456789"), 300000)
	if _, err := c.WriteSegment(ctx, pos, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}

	f.cutBodies.Store(3)
	rc, err := c.OpenSegment(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(rc)
	rc.Close()
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read %d of %d bytes: %v", len(got), len(data), err)
	}
	if f.cut.Load() != 3 || f.ranged.Load() != 3 {
		t.Fatalf("%d bodies cut, %d ranged GETs; want 3 and 3", f.cut.Load(), f.ranged.Load())
	}

	// Past the bound, the read fails, naming the object and the byte.
	f.cut.Store(0)
	f.cutBodies.Store(100)
	rc, err = c.OpenSegment(ctx, pos)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(rc)
	rc.Close()
	if err == nil || !strings.Contains(err.Error(), "at byte") || f.cut.Load() != 6 {
		t.Fatalf("after %d cuts: %v", f.cut.Load(), err)
	}
}

// TestRetries: server errors on a third of the requests and bodies cut
// short are retried or resumed; every write, read and listing succeeds.
func TestRetries(t *testing.T) {
	srv := abstest.StartServer(t)
	cont := srv.CreateContainer(t)
	f := &proxyFaults{every500: 3}
	p := startProxy(t, srv, f)
	c := newClient(p.URL+"/"+abstest.AccountName, cont)
	for i := range 15 {
		f.cut.Store(0)
		f.cutBodies.Store(1)
		replicatest.RoundTripSegment(t, c, i)
	}
	t.Logf("%d requests, a third of them answered 500, all retried", f.requests.Load())
}

// TestNoLeftovers: an upload cut short after staging blocks leaves them
// uncommitted, which no listing or read shows; a later upload of the name
// stores only its own bytes. The client is no LeftoverRemover: there is
// nothing it could remove that the service does not.
func TestNoLeftovers(t *testing.T) {
	srv := abstest.StartServer(t)
	cont := srv.CreateContainer(t)
	c := newClient(srv.Endpoint(), cont)
	if _, ok := any(c).(litestream.LeftoverRemover); ok {
		t.Fatal("the client is a LeftoverRemover")
	}
	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef", Index: 1}
	src := io.MultiReader(io.LimitReader(zeros{}, 3*abs.BlockSize), failing{})
	if _, err := c.WriteSegment(ctx, pos, src); err == nil || !strings.Contains(err.Error(), "read") {
		t.Fatalf("write from a failing reader: %v", err)
	}
	name := c.Path + "/" + litestream.SegmentPath(pos)
	svc, err := abstest.Client(srv.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	bb := svc.NewContainerClient(cont).NewBlockBlobClient(name)
	bl, err := bb.GetBlockList(ctx, blockblob.BlockListTypeUncommitted, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(bl.UncommittedBlocks) == 0 {
		t.Fatal("the failed upload staged no blocks: the case proves nothing")
	}
	t.Logf("%d uncommitted blocks left by the failed upload", len(bl.UncommittedBlocks))
	if segs, err := c.Segments(ctx, pos.Generation); err != nil || len(segs) != 0 {
		t.Fatalf("listed %+v, %v; want nothing", segs, err)
	}
	if rc, err := c.OpenSegment(ctx, pos); !errors.Is(err, os.ErrNotExist) {
		if rc != nil {
			rc.Close()
		}
		t.Fatalf("open: %v, want os.ErrNotExist", err)
	}
	if _, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("ok"))); err != nil {
		t.Fatal(err)
	}
	if segs, err := c.Segments(ctx, pos.Generation); err != nil || len(segs) != 1 || segs[0].Size != 2 {
		t.Fatalf("listed %+v, %v; want one of 2 bytes", segs, err)
	}
}

type failing struct{}

func (failing) Read([]byte) (int, error) { return 0, errors.New("injected read failure") }

// TestOutage: while the server is down a write fails with a clear error;
// once it is back on the same port the same write succeeds, and what was
// written before is still there.
func TestOutage(t *testing.T) {
	srv := abstest.StartServer(t)
	c := newClient(srv.Endpoint(), srv.CreateContainer(t))
	c.MaxRetries = 1
	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef"}
	if _, err := c.WriteSnapshot(ctx, pos.Generation, 0, bytes.NewReader([]byte("before"))); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	_, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("x")))
	if err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("write during outage: %v", err)
	}
	checks.OurWords(t, err)
	srv.Start()
	if _, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("x"))); err != nil {
		t.Fatalf("write after outage: %v", err)
	}
	if snaps, err := c.Snapshots(ctx, pos.Generation); err != nil || len(snaps) != 1 {
		t.Fatalf("after restart: snapshots %+v, %v", snaps, err)
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url, account, container, path, endpoint string
	}{
		{"abs://acct@mycontainer/db/app", "acct", "mycontainer", "db/app", ""},
		{"abs://mycontainer/db", "", "mycontainer", "db", ""},
		{"abs://acct@mycontainer", "acct", "mycontainer", "", ""},
		{"abs://acct@mycontainer/app?endpoint=" + url.QueryEscape("http://127.0.0.1:10000/acct"), "acct", "mycontainer", "app", "http://127.0.0.1:10000/acct"},
	} {
		c, err := abs.ParseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if c.AccountName != tc.account || c.Bucket != tc.container || c.Path != tc.path || c.Endpoint != tc.endpoint {
			t.Errorf("%s: got account %q container %q path %q endpoint %q", tc.url, c.AccountName, c.Bucket, c.Path, c.Endpoint)
		}
	}
	for _, bad := range []string{"abs:///path", "abs://", "s3://b/p", "abs://a@c/p?endpont=x"} {
		if _, err := abs.ParseURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
	_, err := abs.ParseURL("abs://acct:topsecret@c/p")
	if err == nil || strings.Contains(err.Error(), "topsecret") || !strings.Contains(err.Error(), "carries no account key") {
		t.Errorf("a key in the URL: %v", err)
	}
}
