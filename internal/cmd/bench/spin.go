package main

import (
	"context"
	"fmt"
	"runtime"
	"time"
)

// The spinner is the overhead figures' second reference: a process that
// keeps a given fraction of one core busy and does nothing else (no I/O,
// no locks). Run at the cores the replicator used, it measures what that
// much CPU alone costs the application on this machine; the bare copy
// measures what the I/O alone costs.

// spinCmd is the bench binary's own first argument that makes it the
// spinner, a process of its own as a replicator is.
const spinCmd = "spin"

// spinPeriod is the spinner's cycle: it spins for its fraction of each
// period and sleeps the rest, as a replicator's work comes in bursts.
const spinPeriod = 25 * time.Millisecond

// runSpin keeps frac of one core busy until ctx ends.
func runSpin(ctx context.Context, frac float64) error {
	if frac <= 0 || frac > 1 {
		return fmt.Errorf("spin: fraction %v is not in (0, 1]", frac)
	}
	on := time.Duration(float64(spinPeriod) * frac)
	x := uint64(1)
	for ctx.Err() == nil {
		start := time.Now()
		for time.Since(start) < on {
			for i := 0; i < 1000; i++ {
				x = x*6364136223846793005 + 1442695040888963407
			}
		}
		runtime.KeepAlive(x) // so the loop is not optimised away
		select {
		case <-ctx.Done():
		case <-time.After(spinPeriod - on):
		}
	}
	return nil
}
