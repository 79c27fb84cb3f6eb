package storeclient

import (
	"context"
	"sync"
)

// ForEach calls do with each of names, workers calls at a time, and stops
// feeding names at do's first error or when ctx ends. It returns do's
// first error, after the calls under way have ended; when ctx ended first
// and no call failed, context.Cause(ctx). The ctx do gets is canceled at
// the first error. A do that returns nil for a missing object makes a
// delete where missing is not an error.
func ForEach(ctx context.Context, workers int, names []string, do func(ctx context.Context, name string) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		once  sync.Once
		first error
		next  = make(chan string)
	)
	for range min(workers, len(names)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for name := range next {
				if err := do(ctx, name); err != nil {
					once.Do(func() { first = err; cancel() })
				}
			}
		}()
	}
feed:
	for _, name := range names {
		select {
		case next <- name:
		case <-ctx.Done():
			break feed // a call failed, or the caller gave up
		}
	}
	close(next)
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return first
}
