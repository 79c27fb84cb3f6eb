package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// resources measures the daemon's CPU per GB of WAL shipped at each load
// (cpu.go) and its peak memory at idle, under steady load and during one
// large transaction. BENCH_CPU_ONLY=1 runs the CPU loads alone.
func (b *bench) resources(ctx context.Context) error {
	if err := b.cpuPerGB(ctx); err != nil {
		return err
	}
	if os.Getenv("BENCH_CPU_ONLY") != "" {
		return nil
	}
	const limit = 64 << 20
	bigTx := 1 << 30
	steadyN := "4000"
	if b.quick {
		bigTx, steadyN = 64<<20, "500"
	}
	scenarios := []struct {
		name string
		load func(dbPath string) error
	}{
		{"idle", func(string) error { time.Sleep(5 * time.Second); return nil }},
		{"steady load", func(dbPath string) error {
			_, err := b.runWriter("-db", dbPath, "-n", steadyN, "-rows", "5", "-size", "2000", "-exact")
			return err
		}},
		{fmt.Sprintf("one %d MB transaction", bigTx>>20), func(dbPath string) error {
			_, err := b.runWriter("-db", dbPath, "-n", "2", "-big", fmt.Sprint(bigTx))
			return err
		}},
	}
	for _, s := range scenarios {
		dir, err := os.MkdirTemp(b.dir, "resources-")
		if err != nil {
			return err
		}
		dbPath := filepath.Join(dir, "app.db")
		if _, err := b.runWriter("-db", dbPath, "-n", "100"); err != nil {
			return err
		}
		d, err := b.startDaemon(dir, dbPath, "file")
		if err != nil {
			return err
		}
		if err := d.waitCaughtUp(time.Minute); err != nil {
			return err
		}
		if err := s.load(dbPath); err != nil {
			return err
		}
		if err := d.waitCaughtUp(5 * time.Minute); err != nil {
			return err
		}
		body, _ := d.metrics()
		walBytes := metricSum(body, "litestream_total_wal_bytes", "")
		cpu, rss, err := d.stop()
		if err != nil {
			return err
		}
		b.add(Figure{Section: "resources", Name: "peak RSS, " + s.name, Value: float64(rss) / (1 << 20), Unit: "MiB", Target: "< 64 MiB", Met: met(rss < limit)})
		if s.name == "steady load" {
			b.add(Figure{Section: "resources", Name: "CPU per GB of WAL shipped, steady load (5 rows of 2000 bytes a transaction), to file", Value: cpu.Seconds() / (walBytes / 1e9), Unit: "s/GB"})
		}
		os.RemoveAll(dir)
	}
	return nil
}
