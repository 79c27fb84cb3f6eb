package gcs_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/gcs"
	"github.com/litestream-go/litestream/internal/gcstest"
	"github.com/litestream-go/litestream/internal/replicatest"
)

// libraryText is what the storage library's error text holds and ours
// never does.
var libraryText = []string{"googleapi:", "retry failed", "storage:", "with body", "Get \"http"}

// checks are the startup check's assertions, with the library's text.
var checks = replicatest.StoreCheck{Foreign: libraryText}

// TestCheckStore: the startup check tells every permanent failure at once,
// retries what may pass within its bound, and says which it was.
func TestCheckStore(t *testing.T) {
	srv := gcstest.StartServer(t)
	bucket := srv.CreateBucket(t)
	check, permanent := replicatest.Check, checks.Permanent

	t.Run("ok", func(t *testing.T) {
		srv.UseEmulator(t)
		noCredentials(t)
		if _, err := check(newClient(bucket), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("missing bucket", func(t *testing.T) {
		srv.UseEmulator(t)
		permanent(t, newClient("no-such-bucket"), `bucket "no-such-bucket" does not exist at the GCS emulator at `+srv.Addr, "(HTTP 404", "create it or fix the bucket name")
	})
	t.Run("unreachable", func(t *testing.T) {
		addr := replicatest.ClosedPort(t)
		t.Setenv("STORAGE_EMULATOR_HOST", addr)
		checks.Unreachable(t, newClient(bucket), "cannot reach the GCS emulator at "+addr, "is it running and reachable?")
	})
	t.Run("no answer", func(t *testing.T) {
		addr := replicatest.SilentServer(t)
		t.Setenv("STORAGE_EMULATOR_HOST", addr)
		checks.NoAnswer(t, newClient(bucket), "cannot reach the GCS emulator at "+addr+" (no answer in 1.5s)")
	})
	t.Run("server errors", func(t *testing.T) {
		proxy := gcstest.StartFaultProxy(t, srv, 1)
		proxy.UseEmulator(t)
		proxy.SetFaults(gcstest.Faults{Error503: 1})
		_, err := check(newClient(bucket), 1500*time.Millisecond)
		if !errors.Is(err, litestream.ErrStoreBusy) || !strings.Contains(err.Error(), "(HTTP 503, backendError): injected") {
			t.Fatalf("err = %v", err)
		}
		checks.OurWords(t, err)
	})
	t.Run("server errors that pass", func(t *testing.T) {
		proxy := gcstest.StartFaultProxy(t, srv, 1)
		proxy.UseEmulator(t)
		proxy.SetFaults(gcstest.Faults{Error503: 0.6})
		if _, err := check(newClient(bucket), 10*time.Second); err != nil {
			t.Fatal(err)
		}
	})

	// fake-gcs-server checks no credentials, so credentials the store
	// refuses cannot be shown against it; credentials that cannot be read
	// are refused before any request.
	const secret = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7SECRETSECRET\n-----END PRIVATE KEY-----\n"
	noEmulator := func(t *testing.T) {
		t.Setenv("STORAGE_EMULATOR_HOST", "")
		t.Setenv("HOME", t.TempDir())
		t.Setenv("CLOUDSDK_CONFIG", t.TempDir())
	}
	t.Run("credentials file missing", func(t *testing.T) {
		noEmulator(t)
		p := filepath.Join(t.TempDir(), "key.json")
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", p)
		permanent(t, newClient(bucket), "GOOGLE_APPLICATION_CREDENTIALS names "+p+", which does not exist: point it at a service account key file")
	})
	t.Run("credentials file malformed", func(t *testing.T) {
		noEmulator(t)
		p := filepath.Join(t.TempDir(), "key.json")
		if err := os.WriteFile(p, []byte(`{"type": "service_account", "private_key": "`+secret), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", p)
		err := permanent(t, newClient(bucket), "GOOGLE_APPLICATION_CREDENTIALS file "+p+" is not a Google credentials file (not valid JSON")
		if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "PRIVATE") {
			t.Fatalf("the key is in the error: %v", err)
		}
	})
	t.Run("credentials file of no kind", func(t *testing.T) {
		noEmulator(t)
		p := filepath.Join(t.TempDir(), "key.json")
		if err := os.WriteFile(p, []byte(`{"private_key": `+jsonString(secret)+`}`), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", p)
		err := permanent(t, newClient(bucket), `is not a Google credentials file (it has no "type" field)`)
		if strings.Contains(err.Error(), "SECRET") {
			t.Fatalf("the key is in the error: %v", err)
		}
	})
	t.Run("credentials the library refuses", func(t *testing.T) {
		noEmulator(t)
		p := filepath.Join(t.TempDir(), "key.json")
		if err := os.WriteFile(p, []byte(`{"type": "service_account", "client_email": "x@p.iam.gserviceaccount.com", "private_key": `+jsonString(secret)+`}`), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", p)
		err := permanent(t, newClient(bucket), "the GCS credentials (service account x@p.iam.gserviceaccount.com (GOOGLE_APPLICATION_CREDENTIALS="+p+")) cannot sign requests: failed to parse private key")
		if strings.Contains(err.Error(), "SECRET") || strings.Contains(err.Error(), "storage.googleapis.com") {
			t.Fatalf("the key or the request URL is in the error: %v", err)
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		noEmulator(t)
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", "")
		_, err := check(newClient(bucket), 20*time.Second)
		if !errors.Is(err, gcs.ErrNoCredentials) || err.Error() != "no GCS credentials: set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, run 'gcloud auth application-default login', or run on Google Cloud with a service account" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("emulator needs no credentials", func(t *testing.T) {
		srv.UseEmulator(t)
		t.Setenv("GOOGLE_APPLICATION_CREDENTIALS", filepath.Join(t.TempDir(), "missing.json"))
		if _, err := check(newClient(bucket), 5*time.Second); err != nil {
			t.Fatal(err)
		}
	})
}

func jsonString(s string) string {
	var b bytes.Buffer
	b.WriteByte('"')
	for _, r := range s {
		if r == '\n' {
			b.WriteString(`\n`)
			continue
		}
		b.WriteRune(r)
	}
	b.WriteByte('"')
	return b.String()
}

// TestErrorsInOurWords: a request that fails after its retries says why in
// one line, with the store's HTTP status, not in the library's words; the
// library's error stays in the chain; a missing object wraps
// os.ErrNotExist.
func TestErrorsInOurWords(t *testing.T) {
	srv := gcstest.StartServer(t)
	bucket := srv.CreateBucket(t)
	ctx := context.Background()
	pos := litestream.Pos{Generation: "0123456789abcdef"}

	t.Run("server errors", func(t *testing.T) {
		proxy := gcstest.StartFaultProxy(t, srv, 1)
		proxy.UseEmulator(t)
		proxy.SetFaults(gcstest.Faults{Error503: 1})
		c := newClient(bucket)
		c.MaxAttempts = 2
		_, err := c.Generations(ctx)
		if err == nil || !strings.Contains(err.Error(), "list generations: the GCS emulator at "+proxy.Addr+" failed the request after 2 attempts (HTTP 503, backendError): injected") {
			t.Fatalf("err = %v", err)
		}
		checks.OurWords(t, err)
	})
	t.Run("unreachable", func(t *testing.T) {
		t.Setenv("STORAGE_EMULATOR_HOST", replicatest.ClosedPort(t))
		c := newClient(bucket)
		c.MaxAttempts = 2
		_, err := c.Segments(ctx, pos.Generation)
		if err == nil || !strings.Contains(err.Error(), "cannot reach the GCS emulator") || !strings.Contains(err.Error(), "after 2 attempts") {
			t.Fatalf("err = %v", err)
		}
		checks.OurWords(t, err)
	})
	t.Run("missing bucket", func(t *testing.T) {
		srv.UseEmulator(t)
		c := newClient("no-such-bucket")
		_, err := c.WriteSegment(ctx, pos, bytes.NewReader([]byte("x")))
		if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) || errors.Is(err, os.ErrNotExist) {
			t.Fatalf("write to a missing bucket: %v", err)
		}
		checks.OurWords(t, err)
	})
	t.Run("missing object", func(t *testing.T) {
		srv.UseEmulator(t)
		c := newClient(bucket)
		_, err := c.OpenSegment(ctx, pos)
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v", err)
		}
		checks.OurWords(t, err)
	})
}
