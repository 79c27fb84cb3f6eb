// Package storeclient holds what the backends' replica clients share: the
// classes of a failed request and their one-line descriptions, the
// resumed download, the parallel deletes, the listing of snapshots and
// segments, the ReplicaClient methods of an object store (ObjectStore),
// and temporary file names. Each backend keeps what is specific to its
// SDK: which of its errors means what, its requests and its wording.
//
// Invariants of a description (every backend keeps them):
//  1. It is one line that says what is wrong and what to do; the SDK's
//     error stays in its chain (Described.Unwrap), for errors.Is and
//     errors.As.
//  2. It never names a secret (a key, a password): the caller builds msg
//     from names it may show.
package storeclient

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/litestream-go/litestream"
)

// Kind is what went wrong with a request, as far as the replica cares. A
// backend numbers its own kinds from FirstOwnKind.
type Kind int

const (
	// Other is a failure no other kind names.
	Other Kind = iota
	// NotFound: the object does not exist.
	NotFound
	// AccessDenied: the store rejects the credentials or their rights.
	AccessDenied
	// Unreachable: no connection, a DNS failure, a timeout.
	Unreachable
	// ServerError: a 5xx or throttling answer.
	ServerError
	// Canceled: the caller's context ended.
	Canceled
	// FirstOwnKind is the first kind a backend may define.
	FirstOwnKind
)

// Check classes k for litestream.RetryStoreCheck: server errors and
// unreachable stores are retried, a backend's own kinds are final.
func (k Kind) Check() litestream.CheckFailure {
	switch k {
	case ServerError:
		return litestream.CheckServerError
	case Unreachable:
		return litestream.CheckUnreachable
	case Canceled:
		return litestream.CheckCanceled
	}
	return litestream.CheckFinal
}

// Network classes an error that carries no answer of the store: Canceled
// when the caller's context ended, Unreachable with the network error to
// name when no connection was made or it timed out, else Other.
func Network(err error) (Kind, error) {
	var oe *net.OpError
	var dnsErr *net.DNSError
	var ne net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return Canceled, nil
	case errors.As(err, &oe):
		return Unreachable, oe
	case errors.As(err, &dnsErr):
		return Unreachable, dnsErr
	case errors.Is(err, context.DeadlineExceeded): // a net.Error too: test it first
		return Canceled, nil
	case errors.As(err, &ne) && ne.Timeout():
		return Unreachable, ne
	}
	return Other, nil
}

// Described is a failed request in our words: Error is the one line of
// the description, and Unwrap returns the error it describes.
type Described struct {
	Msg string
	Err error
}

func (e *Described) Error() string { return e.Msg }
func (e *Described) Unwrap() error { return e.Err }

// Describe returns msg, after "action: " when action is not empty, as a
// *Described around err.
func Describe(action, msg string, err error) error {
	if action != "" {
		msg = action + ": " + msg
	}
	return &Described{Msg: msg, Err: err}
}

// CanceledText is the text of the context error that err is or wraps:
// context.Canceled's, else context.DeadlineExceeded's.
func CanceledText(err error) string {
	if errors.Is(err, context.Canceled) {
		return context.Canceled.Error()
	}
	return context.DeadlineExceeded.Error()
}

// After says how many attempts a request took, " after 3 attempts", or
// nothing for one.
func After(attempts int) string {
	if attempts > 1 {
		return fmt.Sprintf(" after %d attempts", attempts)
	}
	return ""
}

// Innermost returns the last error of err's chain (the first of a join).
func Innermost(err error) error {
	for {
		var next error
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			next = u.Unwrap()
		case interface{ Unwrap() []error }:
			if es := u.Unwrap(); len(es) > 0 {
				next = es[0]
			}
		}
		if next == nil {
			return err
		}
		err = next
	}
}

// OrDefault returns s, or def when s is empty.
func OrDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
