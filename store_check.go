package litestream

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// CheckFailure is how a backend classes the error of one CheckStore
// request, for RetryStoreCheck.
type CheckFailure int

const (
	// CheckFinal: no retry will change it (credentials, bucket, path).
	CheckFinal CheckFailure = iota
	// CheckServerError: the store answered with a server error (5xx,
	// throttling); retried, and the last one wraps ErrStoreBusy.
	CheckServerError
	// CheckUnreachable: no connection reached the store, or it broke;
	// retried, and the last one is the network error.
	CheckUnreachable
	// CheckCanceled: the context ended the request.
	CheckCanceled
)

// RetryStoreCheck is the retry loop every backend's CheckStore shares. It
// runs try (one request, with no retries of its own) until it succeeds,
// fails for good (CheckFinal) or ctx ends, waiting from 250 ms to 2 s
// between attempts, and returns nil or describe's error: wrapping
// ErrStoreBusy when the store answered only with server errors. describe
// gets the error to report, the attempts it took and, when ctx's deadline
// cut the first request short with no earlier error, noAnswer ("no answer
// in 5s": the bound the caller chose, from start, when CheckStore was
// called), which it reports as the store being unreachable. A request cut short after an earlier one proves nothing: the
// earlier error is reported.
func RetryStoreCheck(ctx context.Context, start time.Time, try func() error, class func(error) CheckFailure, describe func(err error, attempts int, noAnswer string) error) error {
	var last error
	for attempt, wait := 1, 250*time.Millisecond; ; attempt, wait = attempt+1, min(2*wait, 2*time.Second) {
		err := try()
		if err == nil {
			return nil
		}
		k, n, noAnswer := class(err), attempt, ""
		if k == CheckCanceled && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			if last != nil {
				err, k, n = last, class(last), attempt-1
			} else {
				waited := time.Since(start)
				if deadline, ok := ctx.Deadline(); ok {
					waited = deadline.Sub(start)
				}
				k, noAnswer = CheckUnreachable, fmt.Sprintf("no answer in %s", waited.Round(100*time.Millisecond))
			}
		}
		if k != CheckServerError && k != CheckUnreachable || ctx.Err() != nil {
			if k == CheckServerError {
				return fmt.Errorf("%w: %w", ErrStoreBusy, describe(err, n, noAnswer))
			}
			return describe(err, n, noAnswer)
		}
		last = err
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
		case <-t.C:
		}
	}
}
