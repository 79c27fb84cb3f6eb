package sftp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strings"
	"syscall"

	"github.com/pkg/sftp"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/internal/storeclient"
)

// failure is what went wrong with a request, as far as the replica cares.
type failure int

const (
	failOther       failure = iota
	failNotFound            // the file or directory does not exist
	failPermission          // the server refuses the user access to a path
	failAuth                // the server refuses the login
	failHostKey             // the server's host key is not the one pinned
	failConfig              // a setting that cannot work (no user, unreadable key file)
	failUnreachable         // no connection: refused, DNS failure, timeout
	failConnLost            // the connection broke during a request
	failServer              // the server closed the connection during the handshake
	failCanceled            // the caller's context ended
	failBody                // reading the caller's body failed
)

// transient reports whether a retry may cure the failure.
func (f requestFailure) transient() bool {
	return f.kind == failUnreachable || f.kind == failConnLost || f.kind == failServer
}

// check classes f for litestream.RetryStoreCheck: a lost connection is
// retried like one never made.
func (f requestFailure) check() litestream.CheckFailure {
	switch f.kind {
	case failServer:
		return litestream.CheckServerError
	case failUnreachable, failConnLost:
		return litestream.CheckUnreachable
	case failCanceled:
		return litestream.CheckCanceled
	}
	return litestream.CheckFinal
}

// requestFailure is what describe reads from an error.
type requestFailure struct {
	kind     failure
	attempts int   // attempts made
	netErr   error // the network error, for failUnreachable and failConnLost
}

func classify(err error) requestFailure {
	var f requestFailure
	var de *dialError
	var ce *configError
	var he *hostKeyError
	var be *bodyError
	var dnsErr *net.DNSError
	var oe *net.OpError
	var ne net.Error
	isDial := errors.As(err, &de)
	lost := errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
	timeout := errors.As(err, &ne) && ne.Timeout()
	switch {
	case errors.As(err, &be):
		f.kind = failBody
	case errors.As(err, &ce):
		f.kind = failConfig
	case errors.As(err, &he):
		f.kind = failHostKey
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded): // a net.Error too: test it first
		f.kind = failCanceled
	case isDial && de.stage == "connect":
		f.kind, f.netErr = failUnreachable, de.err
	case isDial && strings.Contains(de.err.Error(), "unable to authenticate"):
		f.kind = failAuth
	case isDial && lost:
		f.kind = failServer
	case isDial && timeout:
		f.kind, f.netErr = failUnreachable, fmt.Errorf("no answer to the SSH %s", de.stage)
	case errors.Is(err, os.ErrNotExist):
		f.kind = failNotFound
	case errors.Is(err, os.ErrPermission):
		f.kind = failPermission
	case lost || !isDial && errors.As(err, &oe):
		f.kind, f.netErr = failConnLost, err
	case errors.As(err, &dnsErr):
		f.kind, f.netErr = failUnreachable, dnsErr
	case timeout:
		f.kind, f.netErr = failConnLost, errors.New("no answer")
	}
	return f
}

// describe turns an error into one line that says what is wrong and what
// to do. action, if not empty, prefixes the line.
func (c *ReplicaClient) describe(action string, err error) error {
	return c.describeAs(action, classify(err), err)
}

// describeAs is describe with err classified as f. It names the user, the
// server and the key file, never the password (invariant 6).
func (c *ReplicaClient) describeAs(action string, f requestFailure, err error) error {
	server := "the SFTP server " + c.Addr()
	after := storeclient.After(f.attempts)
	var msg string
	switch f.kind {
	case failNotFound:
		if action == "" {
			return os.ErrNotExist
		}
		return storeclient.Describe(action, os.ErrNotExist.Error(), err)
	case failAuth:
		msg = fmt.Sprintf("%s refused the login of user %q with %s: check user, %s", server, c.User, c.authTried(), c.authFix())
	case failHostKey:
		var he *hostKeyError
		errors.As(err, &he)
		msg = he.msg
	case failConfig:
		var ce *configError
		errors.As(err, &ce)
		msg = ce.msg
	case failBody:
		var be *bodyError
		errors.As(err, &be)
		msg = be.Error()
	case failPermission:
		msg = fmt.Sprintf("%s denies user %q access (permission denied): check the owner and mode of path %q there", server, c.User, c.Path)
	case failUnreachable:
		msg = fmt.Sprintf("cannot reach %s%s (%v): is it running and reachable?", server, after, netText(f.netErr))
	case failConnLost:
		msg = fmt.Sprintf("the connection to %s broke%s (%v)", server, after, netText(f.netErr))
	case failServer:
		msg = fmt.Sprintf("%s closed the connection during the SSH handshake%s: it may be overloaded (sshd's MaxStartups) or not an SSH server", server, after)
	case failCanceled:
		msg = storeclient.CanceledText(err)
	default:
		var se *sftp.StatusError
		var de *dialError
		switch {
		case errors.As(err, &se):
			msg = fmt.Sprintf("%s failed the request%s (%s)", server, after, statusText(se))
		case errors.As(err, &de):
			msg = fmt.Sprintf("cannot open an SFTP session with %s (%s: %v)", server, de.stage, de.err)
		default:
			msg = err.Error() + after
		}
	}
	return storeclient.Describe(action, msg, err)
}

// authTried names the login methods configured.
func (c *ReplicaClient) authTried() string {
	var m []string
	if c.Password != "" {
		m = append(m, "a password")
	}
	if c.KeyPath != "" {
		m = append(m, "the key in key-path "+c.KeyPath)
	}
	return strings.Join(m, " and ")
}

func (c *ReplicaClient) authFix() string {
	switch {
	case c.Password != "" && c.KeyPath != "":
		return "password and key-path (the key's public half must be in the user's authorized_keys)"
	case c.KeyPath != "":
		return "key-path (its public half must be in the user's authorized_keys)"
	default:
		return "password"
	}
}

// netText returns a network error's text without Go's "read tcp A->B:"
// framing where the operation says nothing more.
func netText(err error) string {
	if err == nil {
		return "no answer"
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return oe.Error()
	}
	if errors.Is(err, sftp.ErrSSHFxConnectionLost) || errors.Is(err, io.EOF) {
		return "connection lost"
	}
	return storeclient.Innermost(err).Error()
}

// statusText returns an SFTP status as "Failure, SSH_FX_FAILURE: msg".
func statusText(se *sftp.StatusError) string {
	return strings.TrimPrefix(se.Error(), "sftp: ")
}
