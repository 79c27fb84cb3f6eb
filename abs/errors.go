package abs

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
)

// ErrNoAccountKey is wrapped by the error of a client that has an account
// name but no key in its config nor in LITESTREAM_AZURE_ACCOUNT_KEY.
var ErrNoAccountKey = errors.New("no Azure account key")

// failure is what went wrong with a request, as far as the replica cares:
// storeclient's kinds and Azure's own.
type failure = storeclient.Kind

const (
	failOther        = storeclient.Other
	failNotFound     = storeclient.NotFound // the blob does not exist
	failAccessDenied = storeclient.AccessDenied
	failUnreachable  = storeclient.Unreachable
	failServer       = storeclient.ServerError
	failCanceled     = storeclient.Canceled

	failNoContainer = storeclient.FirstOwnKind // the container does not exist
)

// check classes f for litestream.RetryStoreCheck.
func (f requestFailure) check() litestream.CheckFailure { return f.kind.Check() }

// requestFailure is what describe and classify read from an SDK error.
type requestFailure struct {
	kind    failure
	code    string // the service's error code, e.g. AuthorizationFailure
	status  int    // HTTP status; 0 without an answer
	netErr  error  // the network error, for failUnreachable
	message string // for failUnreachable without netErr: what happened
}

func classify(err error) requestFailure {
	var f requestFailure
	var re *azcore.ResponseError
	if errors.As(err, &re) {
		f.code, f.status = re.ErrorCode, re.StatusCode
	}
	switch {
	case f.code == "AuthenticationFailed" || f.code == "AuthorizationFailure" ||
		strings.HasPrefix(f.code, "AuthorizationPermission") || f.code == "InvalidAuthenticationInfo" || f.status == 403:
		f.kind = failAccessDenied
	case f.code == "ContainerNotFound":
		f.kind = failNoContainer
	case f.code == "BlobNotFound" || f.status == 404:
		f.kind = failNotFound
	case f.status >= 500 || f.status == 429 || f.status == 408 || f.code == "ServerBusy" || f.code == "OperationTimedOut":
		f.kind = failServer
	case f.status != 0:
		f.kind = failOther
	default:
		f.kind, f.netErr = storeclient.Network(err)
		var dnsErr *net.DNSError
		if f.kind == failUnreachable && errors.As(err, &dnsErr) {
			f.netErr = dnsErr // the lookup that failed, without the dial around it
		}
	}
	return f
}

// answer names the service's answer: "AuthorizationFailure, HTTP 403".
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
// the service's error code and HTTP status, and what to do, in place of the
// SDK's text (request ids, the request URL, the response body). The account
// is named; its key never is. action, if not empty, prefixes the line.
func (c *ReplicaClient) describe(action string, err error) error {
	return c.describeAs(action, classify(err), err)
}

// describeAs is describe with err classified as f.
func (c *ReplicaClient) describeAs(action string, f requestFailure, err error) error {
	endpoint := c.endpoint()
	var msg string
	switch f.kind {
	case failNotFound:
		if action == "" {
			return fmt.Errorf("%w", os.ErrNotExist)
		}
		return fmt.Errorf("%s: %w", action, os.ErrNotExist)
	case failAccessDenied:
		msg = fmt.Sprintf("access denied for storage account %q on container %q (%s): the account key is wrong, or the account lacks access: check account-key (or LITESTREAM_AZURE_ACCOUNT_KEY) and account-name", c.AccountName, c.Bucket, storeclient.OrDefault(f.answer(), "HTTP 403"))
	case failNoContainer:
		msg = fmt.Sprintf("container %q does not exist in storage account %q at %s (%s): create it or fix the container name (bucket)", c.Bucket, c.AccountName, endpoint, f.answer())
	case failUnreachable:
		cause := f.message
		if f.netErr != nil {
			cause = f.netErr.Error()
		}
		msg = fmt.Sprintf("cannot reach the Azure Blob Storage endpoint %s (%s): is it running and reachable, and the account name right?", endpoint, cause)
	case failServer:
		msg = fmt.Sprintf("the Azure Blob Storage endpoint %s failed the request (%s)", endpoint, f.answer())
	case failCanceled:
		msg = storeclient.CanceledText(err)
	default:
		switch {
		case f.code != "" || f.status != 0:
			msg = fmt.Sprintf("the Azure Blob Storage endpoint %s refused the request (%s)", endpoint, f.answer())
		default:
			msg = storeclient.Innermost(err).Error()
		}
	}
	return storeclient.Describe(action, msg, err)
}
