package s3_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/replicatest"
	"github.com/litestream-go/litestream/internal/s3test"
	"github.com/litestream-go/litestream/s3"
)

// newClient returns a client for a fresh prefix of a bucket on endpoint.
func newClient(endpoint, bucket string) *s3.ReplicaClient {
	return &s3.ReplicaClient{
		Bucket: bucket, Path: fmt.Sprintf("t%d/db", time.Now().UnixNano()), Endpoint: endpoint,
		AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey,
	}
}

// TestConformance runs the shared replica suite against a real versitygw
// server process.
func TestConformance(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	replicatest.RunConformance(t, func(t *testing.T) litestream.ReplicaClient {
		return newClient(srv.Endpoint(), bucket)
	})
}

func TestOpsCounted(t *testing.T) {
	srv := s3test.StartServer(t)
	c := newClient(srv.Endpoint(), srv.CreateBucket(t))
	var ops replicatest.Ops
	c.OnOp = ops.Count
	replicatest.RequireOneOfEach(t, c, &ops)
}

func TestErrors(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef"}

	t.Run("wrong secret", func(t *testing.T) {
		c := newClient(srv.Endpoint(), bucket)
		c.SecretAccessKey = "wrong-secret-value"
		_, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("x")))
		if err == nil || !strings.Contains(err.Error(), "access denied") || !strings.Contains(err.Error(), s3test.AccessKey) || strings.Contains(err.Error(), "wrong-secret-value") {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("missing bucket", func(t *testing.T) {
		c := newClient(srv.Endpoint(), "no-such-bucket")
		_, err := c.Generations(ctx)
		if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unreachable endpoint", func(t *testing.T) {
		l, _ := net.Listen("tcp", "127.0.0.1:0")
		addr := l.Addr().String()
		l.Close()
		c := newClient("http://"+addr, bucket)
		c.MaxAttempts = 2
		_, err := c.Generations(ctx)
		if err == nil || !strings.Contains(err.Error(), "cannot reach") || !strings.Contains(err.Error(), addr) {
			t.Fatalf("err = %v", err)
		}
	})
}

// TestFaults: 500s, SlowDowns, dropped connections and bodies cut short are
// retried or resumed; every write and read still succeeds.
func TestFaults(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	proxy := s3test.StartFaultProxy(t, srv.Endpoint(), 1)
	proxy.SetFaults(s3test.Faults{Error500: 0.15, SlowDown: 0.15, Drop: 0.1, CutBody: 0.3}) // LIST bodies are cut too
	c := newClient(proxy.Endpoint(), bucket)
	for i := 0; i < 20; i++ {
		replicatest.RoundTripSegment(t, c, i)
	}
	if proxy.Injected.Load() < 10 {
		t.Fatalf("only %d faults injected", proxy.Injected.Load())
	}
	t.Logf("%d faults injected, all survived", proxy.Injected.Load())
}

// TestOutage: while the server is down a write fails with a clear error;
// once it is back the same write succeeds.
func TestOutage(t *testing.T) {
	srv := s3test.StartServer(t)
	c := newClient(srv.Endpoint(), srv.CreateBucket(t))
	c.MaxAttempts = 2
	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef"}
	srv.Stop()
	if _, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("x"))); err == nil || !strings.Contains(err.Error(), "cannot reach") {
		t.Fatalf("write during outage: %v", err)
	}
	srv.Start()
	if _, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("x"))); err != nil {
		t.Fatalf("write after outage: %v", err)
	}
}

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url, bucket, path, endpoint, region string
		pathStyle                           bool
	}{
		{"s3://mybucket/db/app", "mybucket", "db/app", "", "", false},
		{"s3://mybucket", "mybucket", "", "", "", false},
		{"s3://mybucket.localhost:9000/app", "mybucket", "app", "http://localhost:9000", "us-east-1", true},
		{"s3://mybucket.localhost/app", "mybucket", "app", "http://localhost", "us-east-1", true},
		{"s3://mybucket.s3.us-west-002.backblazeb2.com/app", "mybucket", "app", "https://s3.us-west-002.backblazeb2.com", "us-west-002", false},
		{"s3://mybucket.nyc3.digitaloceanspaces.com/app", "mybucket", "app", "https://nyc3.digitaloceanspaces.com", "nyc3", false},
		{"s3://mybucket.us-east-1.linodeobjects.com/app", "mybucket", "app", "https://us-east-1.linodeobjects.com", "us-east-1", false},
		{"s3://mybucket.s3.fr-par.scw.cloud/app", "mybucket", "app", "https://s3.fr-par.scw.cloud", "fr-par", false},
		{"s3://mybucket.s3.filebase.com/app", "mybucket", "app", "https://s3.filebase.com", "us-east-1", false},
		{"s3://mybucket.s3.eu-west-1.amazonaws.com/app", "mybucket", "app", "", "eu-west-1", false},
		{"s3://mybucket/app?endpoint=http://127.0.0.1:7070&region=r1&forcePathStyle=true", "mybucket", "app", "http://127.0.0.1:7070", "r1", true},
	} {
		c, err := s3.ParseURL(tc.url)
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		ps := c.ForcePathStyle != nil && *c.ForcePathStyle
		if c.Bucket != tc.bucket || c.Path != tc.path || c.Endpoint != tc.endpoint || c.Region != tc.region || ps != tc.pathStyle {
			t.Errorf("%s: got bucket %q path %q endpoint %q region %q pathStyle %v", tc.url, c.Bucket, c.Path, c.Endpoint, c.Region, ps)
		}
	}
	for _, bad := range []string{"s3:///path", "s3://", "s3://b/p?forcePathStyle=maybe"} {
		if _, err := s3.ParseURL(bad); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}
