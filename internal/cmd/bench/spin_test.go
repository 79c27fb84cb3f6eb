package main

import (
	"context"
	"syscall"
	"testing"
	"time"
)

// The spinner must burn CPU (else the CPU floor would be no floor), stop
// when told, and refuse a fraction it cannot keep.
func TestSpinBurnsCPUAndStops(t *testing.T) {
	for _, frac := range []float64{0, -1, 1.5} {
		if err := runSpin(context.Background(), frac); err == nil {
			t.Errorf("runSpin(%v) accepted", frac)
		}
	}
	cpu := func() time.Duration {
		var ru syscall.Rusage
		if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
			t.Fatal(err)
		}
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	before, start := cpu(), time.Now()
	if err := runSpin(ctx, 0.5); err != nil {
		t.Fatal(err)
	}
	if wall := time.Since(start); wall > 2*time.Second {
		t.Fatalf("spinner stopped %v after it was told, at 500ms", wall)
	}
	// 250 ms are due; a loaded machine may give it less, not nothing.
	if used := cpu() - before; used < 50*time.Millisecond {
		t.Fatalf("spinner used %v of CPU in 500ms at half a core", used)
	}
}
