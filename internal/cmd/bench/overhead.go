package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"
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
	// Runs of a few seconds, median of nine: shorter runs measured
	// scheduling noise on a shared 2-core machine, and the WAL file's first
	// growth, more than the engine.
	loads := []workload{{"1 row/tx", 20000, 1, 100, 9}, {"1000 rows/tx", 300, 1000, 100, 9}}
	if b.quick {
		loads = []workload{{"1 row/tx", 300, 1, 100, 1}, {"1000 rows/tx", 10, 1000, 100, 1}}
	}
	kinds := []string{"", "file", "s3"}
	// Each run's files are removed only after all runs: on a disk mounted
	// with discard, a removal trims in the background and slowed the next
	// run, which in this order is always of the same kind.
	var dirs []string
	defer func() {
		for _, d := range dirs {
			os.RemoveAll(d)
		}
	}()
	for _, w := range loads {
		// Interleaved (none, file, s3, none, ...) so that a slow spell of
		// the shared machine hits every kind alike.
		times := map[string][]time.Duration{}
		for i := 0; i < w.rep; i++ {
			for _, kind := range kinds {
				t, dir, err := b.writerTime(w.n, w.rows, w.size, kind)
				dirs = append(dirs, dir)
				if err != nil {
					return err
				}
				times[kind] = append(times[kind], t)
			}
		}
		baseTPS := float64(w.n) / median(times[""]).Seconds()
		for _, kind := range kinds[1:] {
			tps := float64(w.n) / median(times[kind]).Seconds()
			ratio := tps / baseTPS
			b.add(Figure{Section: "overhead", Name: fmt.Sprintf("commits/s, %s, replicating to %s", w.name, kind), Value: tps, Unit: "tx/s",
				Baseline: baseTPS, BaseName: "no replication", Ratio: ratio, Target: ">= 0.95", Met: met(ratio >= 0.95)})
		}
	}
	return nil
}

// median returns the middle of ds.
func median(ds []time.Duration) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}

// writerTime returns the wall time of the writer on a fresh database, with
// replicate to kind running ("" for none), and the directory of the run,
// which the caller removes.
func (b *bench) writerTime(n, rows, size int, kind string) (time.Duration, string, error) {
	dir, err := os.MkdirTemp(b.dir, "overhead-")
	if err != nil {
		return 0, "", err
	}
	dbPath := filepath.Join(dir, "app.db")
	// The table exists before timing starts, so both runs time only commits.
	if _, err := b.runWriter("-db", dbPath, "-n", "1"); err != nil {
		return 0, dir, err
	}
	var d *daemon
	if kind != "" {
		if d, err = b.startDaemon(dir, dbPath, kind); err != nil {
			return 0, dir, err
		}
		if err := d.waitCaughtUp(time.Minute); err != nil {
			return 0, dir, err
		}
	}
	// What earlier runs left dirty in the page cache is written out now,
	// not during this run.
	syscall.Sync()
	t, err := b.runWriter("-db", dbPath, "-n", fmt.Sprint(n), "-rows", fmt.Sprint(rows), "-size", fmt.Sprint(size), "-exact")
	if d != nil {
		if _, _, serr := d.stop(); serr != nil && err == nil {
			err = serr
		}
	}
	return t, dir, err
}
