package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// cpuTarget is issue 24's target for the daemon's CPU per GB of WAL
// shipped, at each load and to each kind of replica.
const cpuTarget = 1.5 // s/GB

// cpuPerGB measures the daemon's CPU time (user and system) per GB of WAL
// shipped under the overhead section's three loads (100-byte rows of
// random bytes, 1, 100 and 1000 rows per transaction), to a file replica
// and to the local S3 server. The time counted runs from the load's start
// to the replica's catching up with it, so it includes the engine's
// checkpoints and its polling while the load runs; the daemon's start and
// its first snapshot are not counted.
func (b *bench) cpuPerGB(ctx context.Context) error {
	type load struct {
		name    string
		n, rows int
	}
	// Each load writes about 100 to 200 MB of WAL, several seconds of it:
	// the CPU clock counts in 10 ms ticks.
	loads := []load{{"1 row/tx", 20000, 1}, {"100 rows/tx", 6000, 100}, {"1000 rows/tx", 1000, 1000}}
	if b.quick {
		loads = []load{{"1 row/tx", 2000, 1}, {"100 rows/tx", 600, 100}, {"1000 rows/tx", 100, 1000}}
	}
	// The median of three runs: single runs on the shared machine moved
	// by a third from one to the next.
	reps := 3
	if b.quick {
		reps = 1
	}
	for _, l := range loads {
		for _, kind := range []string{"file", "s3"} {
			var runs []float64
			for range reps {
				if err := ctx.Err(); err != nil {
					return err
				}
				cpu, walBytes, err := b.cpuRun(kind, l.n, l.rows)
				if err != nil {
					return fmt.Errorf("%s to %s: %w", l.name, kind, err)
				}
				runs = append(runs, cpu.Seconds()/(float64(walBytes)/1e9))
				fmt.Fprintf(os.Stderr, "   %s to %s: %.2f s of CPU for %.1f MB of WAL\n", l.name, kind, cpu.Seconds(), float64(walBytes)/1e6)
			}
			perGB := quantile(runs, 0.5)
			b.add(Figure{Section: "resources", Name: fmt.Sprintf("CPU per GB of WAL shipped, %s, to %s", l.name, kind),
				Value: perGB, Unit: "s/GB", Target: fmt.Sprintf("<= %.1f s/GB", cpuTarget), Met: met(perGB <= cpuTarget)})
		}
	}
	return nil
}

// cpuRun runs one load against a daemon replicating to kind and returns
// the daemon's CPU time from the load's start until the replica caught up,
// and the WAL bytes shipped in that time.
func (b *bench) cpuRun(kind string, n, rows int) (time.Duration, int64, error) {
	dir, err := os.MkdirTemp(b.dir, "cpu-")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	dbPath := filepath.Join(dir, "app.db")
	if _, err := b.runWriter("-db", dbPath, "-n", "1"); err != nil {
		return 0, 0, err
	}
	d, err := b.startDaemon(dir, dbPath, kind)
	if err != nil {
		return 0, 0, err
	}
	stopped := false
	defer func() {
		if !stopped {
			d.stop()
		}
	}()
	if err := d.waitCaughtUp(time.Minute); err != nil {
		return 0, 0, err
	}
	body, err := d.metrics()
	if err != nil {
		return 0, 0, err
	}
	wal0, cpu0 := metricSum(body, "litestream_total_wal_bytes", ""), procCPU(d.cmd.Process.Pid)
	if _, err := b.runWriter("-db", dbPath, "-n", fmt.Sprint(n), "-rows", fmt.Sprint(rows), "-size", "100", "-exact"); err != nil {
		return 0, 0, err
	}
	if err := d.waitCaughtUp(5 * time.Minute); err != nil {
		return 0, 0, err
	}
	cpu1 := procCPU(d.cmd.Process.Pid)
	if body, err = d.metrics(); err != nil {
		return 0, 0, err
	}
	wal := int64(metricSum(body, "litestream_total_wal_bytes", "") - wal0)
	stopped = true
	if _, _, err := d.stop(); err != nil {
		return 0, 0, err
	}
	if wal <= 0 {
		return 0, 0, fmt.Errorf("no WAL shipped")
	}
	return cpu1 - cpu0, wal, nil
}
