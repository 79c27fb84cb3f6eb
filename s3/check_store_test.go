package s3_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/smithy-go"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/replicatest"
	"github.com/litestream-go/litestream/internal/s3test"
	"github.com/litestream-go/litestream/s3"
)

// sdkText is what the SDK's own error text holds and ours never does.
var sdkText = []string{"exceeded maximum number of attempts", "HostID", "RequestID", "operation error", "https response error"}

// checks are the startup check's assertions, with the SDK's text.
var checks = replicatest.StoreCheck{Foreign: sdkText}

// TestCheckStore: the startup check tells every permanent failure at once,
// retries what may pass within its bound, and says which it was.
func TestCheckStore(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	check, permanent := replicatest.Check, checks.Permanent

	t.Run("ok", func(t *testing.T) {
		if _, err := check(newClient(srv.Endpoint(), bucket), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong secret", func(t *testing.T) {
		c := newClient(srv.Endpoint(), bucket)
		c.SecretAccessKey = "wrong-secret-value"
		permanent(t, c, "access denied", `"`+s3test.AccessKey+`"`, "(SignatureDoesNotMatch, HTTP 403)")
		if _, err := check(c, time.Second); strings.Contains(err.Error(), "wrong-secret-value") {
			t.Fatalf("the secret is in the error: %v", err)
		}
	})
	t.Run("unknown key id", func(t *testing.T) {
		c := newClient(srv.Endpoint(), bucket)
		c.AccessKeyID = "nosuchkey"
		permanent(t, c, "access denied", `"nosuchkey"`)
	})
	t.Run("missing bucket", func(t *testing.T) {
		permanent(t, newClient(srv.Endpoint(), "no-such-bucket"), `bucket "no-such-bucket" does not exist at `+srv.Endpoint(), "(NoSuchBucket, HTTP 404)")
	})
	t.Run("no credentials", func(t *testing.T) {
		noCredentials(t)
		c := newClient(srv.Endpoint(), bucket)
		c.AccessKeyID, c.SecretAccessKey = "", ""
		_, err := check(c, 10*time.Second)
		if !errors.Is(err, s3.ErrNoCredentials) || err.Error() != "no S3 credentials: set LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY, or access-key-id in the config" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		addr := replicatest.ClosedPort(t)
		checks.Unreachable(t, newClient("http://"+addr, bucket), "cannot reach the S3 endpoint http://"+addr)
	})
	t.Run("no answer", func(t *testing.T) {
		addr := replicatest.SilentServer(t)
		checks.NoAnswer(t, newClient("http://"+addr, bucket), "cannot reach the S3 endpoint http://"+addr+" (no answer in 1.5s)")
	})
	t.Run("server errors", func(t *testing.T) {
		proxy := s3test.StartFaultProxy(t, srv.Endpoint(), 1)
		proxy.SetFaults(s3test.Faults{Error500: 1})
		_, err := check(newClient(proxy.Endpoint(), bucket), 1500*time.Millisecond)
		if !errors.Is(err, litestream.ErrStoreBusy) || !strings.Contains(err.Error(), "(InternalError, HTTP 500)") {
			t.Fatalf("err = %v", err)
		}
		checks.OurWords(t, err)
	})
	t.Run("answers cut short", func(t *testing.T) {
		// A 200 whose body ends early is the store failing, not refusing:
		// replicate starts anyway (ErrStoreBusy) instead of exiting.
		proxy := s3test.StartFaultProxy(t, srv.Endpoint(), 1)
		proxy.SetFaults(s3test.Faults{CutBody: 1})
		_, err := check(newClient(proxy.Endpoint(), bucket), 1500*time.Millisecond)
		if !errors.Is(err, litestream.ErrStoreBusy) || !strings.Contains(err.Error(), "HTTP 200") || !strings.Contains(err.Error(), "cut short") {
			t.Fatalf("err = %v", err)
		}
		checks.OurWords(t, err)
	})
	t.Run("server errors that pass", func(t *testing.T) {
		proxy := s3test.StartFaultProxy(t, srv.Endpoint(), 1)
		proxy.SetFaults(s3test.Faults{Error500: 0.5, SlowDown: 0.3})
		if _, err := check(newClient(proxy.Endpoint(), bucket), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

// noCredentials leaves the AWS default chain nothing to find but the
// instance metadata service.
func noCredentials(t *testing.T) {
	dir := t.TempDir()
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
		"LITESTREAM_ACCESS_KEY_ID", "LITESTREAM_SECRET_ACCESS_KEY", "AWS_WEB_IDENTITY_TOKEN_FILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("HOME", dir)
	t.Setenv("AWS_CONFIG_FILE", filepath.Join(dir, "config"))
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", filepath.Join(dir, "credentials"))
}

// TestErrorsInOurWords: a request that fails after its retries says why in
// one line, with the store's error code and HTTP status, not in the SDK's
// words; the SDK's error stays in the chain.
func TestErrorsInOurWords(t *testing.T) {
	srv := s3test.StartServer(t)
	bucket := srv.CreateBucket(t)
	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef"}

	proxy := s3test.StartFaultProxy(t, srv.Endpoint(), 1)
	proxy.SetFaults(s3test.Faults{SlowDown: 1})
	c := newClient(proxy.Endpoint(), bucket)
	c.MaxAttempts = 2
	_, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("x")))
	if err == nil || !strings.Contains(err.Error(), "failed the request after 2 attempts (SlowDown, HTTP 503): injected") {
		t.Fatalf("err = %v", err)
	}
	checks.OurWords(t, err)
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "SlowDown" {
		t.Fatalf("the SDK's error is not in the chain: %v", err)
	}

	c = newClient("http://"+replicatest.ClosedPort(t), bucket)
	c.MaxAttempts = 2
	_, err = c.Generations(ctx)
	if err == nil || !strings.Contains(err.Error(), "list generations: cannot reach the S3 endpoint") || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("err = %v", err)
	}
	checks.OurWords(t, err)

	c = newClient(srv.Endpoint(), bucket)
	c.AccessKeyID = "nosuchkey"
	if _, err := c.Generations(ctx); err == nil || !strings.Contains(err.Error(), `access denied for access key id "nosuchkey"`) {
		t.Fatalf("an unknown key id: %v", err)
	}

	c = newClient(srv.Endpoint(), bucket)
	c.SecretAccessKey = ""
	if _, err := c.Generations(ctx); err == nil || !strings.Contains(err.Error(), "has no secret") {
		t.Fatalf("a key id without a secret: %v", err)
	}
}
