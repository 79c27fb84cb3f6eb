package s3

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
)

// ErrNoCredentials is wrapped by the error of a request for which the AWS
// default chain (environment, shared config, instance role) found no
// credentials, and none were configured.
var ErrNoCredentials = errors.New("no S3 credentials")

// noCredentialsHint says where credentials go.
const noCredentialsHint = "set LITESTREAM_ACCESS_KEY_ID and LITESTREAM_SECRET_ACCESS_KEY, or access-key-id in the config"

// failure is what went wrong with a request, as far as the replica cares:
// storeclient's kinds and S3's own.
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
	failNoCreds     = storeclient.FirstOwnKind + iota // no credentials to sign with
	failNoBucket                                      // the bucket does not exist
	failWrongRegion                                   // the bucket is in another region
)

// check classes f for litestream.RetryStoreCheck.
func (f requestFailure) check() litestream.CheckFailure { return f.kind.Check() }

// requestFailure is what describe and classify read from an SDK error.
type requestFailure struct {
	kind     failure
	code     string // the store's error code, e.g. SignatureDoesNotMatch
	message  string // the store's error message
	status   int    // HTTP status; 0 without an answer
	attempts int    // attempts made, when the retryer gave up
	netErr   error  // the network error, for failUnreachable
}

func classify(err error) requestFailure {
	var f requestFailure
	var ae smithy.APIError
	if errors.As(err, &ae) {
		f.code, f.message = ae.ErrorCode(), ae.ErrorMessage()
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		f.status = re.HTTPStatusCode()
	}
	var me *retry.MaxAttemptsError
	if errors.As(err, &me) {
		f.attempts = me.Attempt
	}
	switch {
	case errors.Is(err, ErrNoCredentials):
		f.kind = failNoCreds
	// XAdminUserNotFound: versitygw's answer (a 404) to an unknown key id.
	case f.code == "AccessDenied" || f.code == "InvalidAccessKeyId" || f.code == "SignatureDoesNotMatch" ||
		f.code == "InvalidToken" || f.code == "ExpiredToken" || f.code == "XAdminUserNotFound" || f.status == 403:
		f.kind = failAccessDenied
	case f.code == "NoSuchBucket":
		f.kind = failNoBucket
	case f.code == "NoSuchKey" || f.status == 404:
		f.kind = failNotFound
	case f.code == "PermanentRedirect" || f.code == "AuthorizationHeaderMalformed" || f.code == "IllegalLocationConstraintException" || f.status == 301:
		f.kind = failWrongRegion
	case f.status >= 500 || f.code == "SlowDown" || f.code == "Throttling" || f.code == "RequestTimeout":
		f.kind = failServer
	case errors.As(err, new(*smithy.DeserializationError)) || f.status >= 200 && f.status < 300:
		// A success whose answer was cut short or unreadable: a retry
		// may pass, as after a 5xx.
		f.kind = failServer
		if f.message == "" {
			f.message = "its answer was cut short or unreadable"
		}
	default:
		f.kind, f.netErr = storeclient.Network(err)
	}
	return f
}

// answer names the store's answer: "SignatureDoesNotMatch, HTTP 403".
func (f requestFailure) answer() string {
	var parts []string
	if f.code != "" {
		parts = append(parts, f.code)
	}
	if f.status != 0 {
		parts = append(parts, fmt.Sprintf("HTTP %d", f.status))
	}
	return strings.Join(parts, ", ")
}

// describe turns an SDK error into one line that says what is wrong, with
// the store's error code and HTTP status, and what to do, in place of the
// SDK's text (attempt counts, request and host ids, the request URL). The
// access key id is named; the secret never is. action, if not empty,
// prefixes the line.
func (c *ReplicaClient) describe(action string, err error) error {
	return c.describeAs(action, classify(err), err)
}

// describeAs is describe with err classified as f.
func (c *ReplicaClient) describeAs(action string, f requestFailure, err error) error {
	endpoint := storeclient.OrDefault(c.Endpoint, "AWS S3")
	after := storeclient.After(f.attempts)
	var msg string
	switch f.kind {
	case failNotFound:
		if action == "" {
			return os.ErrNotExist
		}
		return fmt.Errorf("%s: %w", action, os.ErrNotExist)
	case failNoCreds:
		msg = "no S3 credentials: " + noCredentialsHint
	case failAccessDenied:
		msg = fmt.Sprintf("access denied for access key id %q on bucket %q (%s): check the key id, the secret and the bucket's permissions", c.keyID, c.Bucket, storeclient.OrDefault(f.answer(), "HTTP 403"))
	case failNoBucket:
		msg = fmt.Sprintf("bucket %q does not exist at %s (%s): create it or fix the bucket name", c.Bucket, endpoint, f.answer())
	case failWrongRegion:
		msg = fmt.Sprintf("bucket %q is in another region than %q (%s): set region to the bucket's region", c.Bucket, storeclient.OrDefault(c.Region, "us-east-1"), storeclient.OrDefault(f.answer(), "HTTP 301"))
	case failUnreachable:
		msg = fmt.Sprintf("cannot reach the S3 endpoint %s%s (%v): is it running and reachable?", endpoint, after, f.netErr)
	case failServer:
		msg = fmt.Sprintf("the S3 endpoint %s failed the request%s (%s)", endpoint, after, f.answer())
		if f.message != "" {
			msg += ": " + f.message
		}
	case failCanceled:
		msg = storeclient.CanceledText(err)
	default:
		switch {
		case f.code != "" || f.status != 0:
			msg = fmt.Sprintf("the S3 endpoint %s refused the request (%s)", endpoint, f.answer())
			if f.message != "" {
				msg += ": " + f.message
			}
		default:
			msg = storeclient.Innermost(err).Error() + after
		}
	}
	return storeclient.Describe(action, msg, err)
}
