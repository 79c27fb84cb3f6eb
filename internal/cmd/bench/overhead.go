package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"
)

// overhead measures application commit throughput with replicate running,
// divided by the throughput without it, for small and large transactions.
func (b *bench) overhead(ctx context.Context) error {
	type workload struct {
		name      string
		n, rows   int
		size, rep int
	}
	// Runs of a second or more, median of five: shorter runs measured
	// scheduling noise on a shared 2-core machine more than the engine.
	loads := []workload{{"1 row/tx", 5000, 1, 100, 5}, {"1000 rows/tx", 60, 1000, 100, 5}}
	if b.quick {
		loads = []workload{{"1 row/tx", 300, 1, 100, 1}, {"1000 rows/tx", 10, 1000, 100, 1}}
	}
	for _, w := range loads {
		base, err := b.writerTime(w.n, w.rows, w.size, w.rep, "")
		if err != nil {
			return err
		}
		for _, kind := range []string{"file", "s3"} {
			with, err := b.writerTime(w.n, w.rows, w.size, w.rep, kind)
			if err != nil {
				return err
			}
			tps := float64(w.n) / with.Seconds()
			baseTPS := float64(w.n) / base.Seconds()
			ratio := tps / baseTPS
			b.add(Figure{Section: "overhead", Name: fmt.Sprintf("commits/s, %s, replicating to %s", w.name, kind), Value: tps, Unit: "tx/s",
				Baseline: baseTPS, BaseName: "no replication", Ratio: ratio, Target: ">= 0.95", Met: met(ratio >= 0.95)})
		}
	}
	return nil
}

// writerTime returns the median wall time of the writer over rep fresh
// databases, with replicate to kind running ("" for none).
func (b *bench) writerTime(n, rows, size, rep int, kind string) (time.Duration, error) {
	var times []time.Duration
	for i := 0; i < rep; i++ {
		dir, err := os.MkdirTemp(b.dir, "overhead-")
		if err != nil {
			return 0, err
		}
		dbPath := filepath.Join(dir, "app.db")
		// The table exists before timing starts, so both runs time only commits.
		if _, err := b.runWriter("-db", dbPath, "-n", "1"); err != nil {
			return 0, err
		}
		var d *daemon
		if kind != "" {
			if d, err = b.startDaemon(dir, dbPath, kind); err != nil {
				return 0, err
			}
			if err := d.waitCaughtUp(time.Minute); err != nil {
				return 0, err
			}
		}
		t, err := b.runWriter("-db", dbPath, "-n", fmt.Sprint(n), "-rows", fmt.Sprint(rows), "-size", fmt.Sprint(size), "-exact")
		if d != nil {
			if _, _, serr := d.stop(); serr != nil && err == nil {
				err = serr
			}
		}
		if err != nil {
			return 0, err
		}
		times = append(times, t)
		os.RemoveAll(dir)
	}
	sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
	return times[len(times)/2], nil
}
