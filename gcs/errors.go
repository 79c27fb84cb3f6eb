package gcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"regexp"
	"strconv"
	"strings"

	"cloud.google.com/go/auth"
	"cloud.google.com/go/storage"
	"google.golang.org/api/googleapi"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
)

// ErrNoCredentials is wrapped by the error of a client for which the
// standard Google chain (GOOGLE_APPLICATION_CREDENTIALS, gcloud's
// application default credentials, the metadata server) found no
// credentials.
var ErrNoCredentials = errors.New("no GCS credentials")

// noCredentialsHint says where credentials go.
const noCredentialsHint = "set GOOGLE_APPLICATION_CREDENTIALS to a service account key file, run 'gcloud auth application-default login', or run on Google Cloud with a service account"

// failure is what went wrong with a request, as far as the replica cares:
// storeclient's kinds and GCS's own.
type failure = storeclient.Kind

const (
	failOther        = storeclient.Other
	failNotFound     = storeclient.NotFound
	failAccessDenied = storeclient.AccessDenied
	failUnreachable  = storeclient.Unreachable
	failServer       = storeclient.ServerError
	failCanceled     = storeclient.Canceled
)

const (
	failNoCreds  = storeclient.FirstOwnKind + iota // no credentials to sign with
	failBadCreds                                   // the credentials cannot be read or used
	failNoBucket                                   // the bucket does not exist
)

// check classes f for litestream.RetryStoreCheck.
func (f requestFailure) check() litestream.CheckFailure { return f.kind.Check() }

// requestFailure is what describe and classify read from a client error.
type requestFailure struct {
	kind     failure
	status   int    // HTTP status; 0 without an answer
	reason   string // the store's reason, e.g. forbidden
	message  string // the store's message
	attempts int    // attempts made, when the retries gave up
	netErr   error  // the network error, for failUnreachable
}

// retriesGaveUp matches the client's "retry failed after N attempts".
var retriesGaveUp = regexp.MustCompile(`retry failed after (\d+) attempts`)

// classify reads what went wrong from an error of the storage client.
// bucketOp says a 404 means the bucket is missing (a listing or an
// upload), not the object.
func classify(err error, bucketOp bool) requestFailure {
	var f requestFailure
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		f.status, f.message = ge.Code, ge.Message
		if len(ge.Errors) > 0 {
			f.reason = ge.Errors[0].Reason
			if f.message == "" {
				f.message = ge.Errors[0].Message
			}
		}
	}
	if m := retriesGaveUp.FindStringSubmatch(err.Error()); m != nil {
		f.attempts, _ = strconv.Atoi(m[1])
	}
	var ae *auth.Error
	switch {
	case errors.Is(err, ErrNoCredentials):
		f.kind = failNoCreds
	case errors.Is(err, errBadCredentials):
		f.kind = failBadCreds
	case errors.As(err, &ae):
		// The token endpoint refused the credentials (a revoked or
		// deleted key): its answer, never the credentials, is named.
		f.kind = failAccessDenied
		if ae.Response != nil {
			f.status = ae.Response.StatusCode
		}
		f.reason = "token refused"
	case f.status == 0 && signingFailed(err):
		f.kind = failBadCreds
	case f.status == 401 || f.status == 403:
		f.kind = failAccessDenied
	case errors.Is(err, storage.ErrBucketNotExist):
		f.kind = failNoBucket
	case errors.Is(err, storage.ErrObjectNotExist):
		f.kind = failNotFound
	case f.status == 404 && bucketOp:
		f.kind = failNoBucket
	case f.status == 404:
		f.kind = failNotFound
	case f.status >= 500 || f.status == 429 || f.status == 408:
		f.kind = failServer
	default:
		f.kind, f.netErr = storeclient.Network(err)
	}
	return f
}

// signingFailed reports whether err is the transport's failure to sign a
// request (a private key that does not parse, a token source that fails
// before any answer): a *url.Error around no network error.
func signingFailed(err error) bool {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return false
	}
	var ne net.Error
	if errors.As(ue.Err, &ne) || errors.Is(ue.Err, io.EOF) || errors.Is(ue.Err, io.ErrUnexpectedEOF) || errors.Is(ue.Err, context.Canceled) {
		return false
	}
	text := strings.ToLower(ue.Err.Error())
	for _, s := range []string{"private key", "credentials", "oauth2", "auth:", "token"} {
		if strings.Contains(text, s) {
			return true
		}
	}
	return false
}

// answer names the store's answer: "HTTP 403, forbidden".
func (f requestFailure) answer() string {
	var parts []string
	if f.status != 0 {
		parts = append(parts, fmt.Sprintf("HTTP %d", f.status))
	}
	if f.reason != "" {
		parts = append(parts, f.reason)
	}
	return strings.Join(parts, ", ")
}

// store names where requests go: GCS, or the emulator and its host.
func store() string {
	if h := os.Getenv("STORAGE_EMULATOR_HOST"); h != "" {
		return "the GCS emulator at " + h
	}
	return "GCS"
}

// describe turns a client error into one line that says what is wrong,
// with the store's HTTP status and reason, and what to do, in place of the
// client's text (response bodies, request URLs). No credential is ever
// named. action, if not empty, prefixes the line. A missing object wraps
// os.ErrNotExist.
func (c *ReplicaClient) describe(action string, bucketOp bool, err error) error {
	return c.describeAs(action, classify(err, bucketOp), err)
}

// describeAs is describe with err classified as f.
func (c *ReplicaClient) describeAs(action string, f requestFailure, err error) error {
	after := storeclient.After(f.attempts)
	var msg string
	switch f.kind {
	case failNotFound:
		return storeclient.Describe(action, os.ErrNotExist.Error(), errors.Join(os.ErrNotExist, err))
	case failNoCreds:
		msg = "no GCS credentials: " + noCredentialsHint
	case failBadCreds:
		msg = err.Error() // checkCredentialsFile's, in our words
		if !errors.Is(err, errBadCredentials) {
			msg = fmt.Sprintf("the GCS credentials (%s) cannot sign requests: %v: fix or replace them", credentialsSource(), storeclient.Innermost(err))
		}
	case failAccessDenied:
		msg = fmt.Sprintf("access denied to bucket %q at %s for %s (%s): check the credentials and that they may read and write objects in the bucket (roles/storage.objectAdmin)",
			c.Bucket, store(), credentialsSource(), storeclient.OrDefault(f.answer(), "HTTP 403"))
	case failNoBucket:
		msg = fmt.Sprintf("bucket %q does not exist at %s (%s): create it or fix the bucket name", c.Bucket, store(), storeclient.OrDefault(f.answer(), "HTTP 404"))
	case failUnreachable:
		msg = fmt.Sprintf("cannot reach %s%s (%v): is it running and reachable?", store(), after, f.netErr)
	case failServer:
		msg = fmt.Sprintf("%s failed the request%s (%s)", store(), after, f.answer())
		if f.message != "" {
			msg += ": " + f.message
		}
	case failCanceled:
		msg = storeclient.CanceledText(err)
	default:
		switch {
		case f.status != 0:
			msg = fmt.Sprintf("%s refused the request (%s)", store(), f.answer())
			if f.message != "" {
				msg += ": " + f.message
			}
		default:
			msg = storeclient.Innermost(err).Error() + after
		}
	}
	return storeclient.Describe(action, msg, err)
}
