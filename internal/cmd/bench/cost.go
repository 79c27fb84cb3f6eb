package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// cost counts object-store requests while idle (per minute) and per 1000
// transactions under load, by operation, from the daemon's own metrics.
func (b *bench) cost(ctx context.Context) error {
	dir, err := os.MkdirTemp(b.dir, "cost-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dbPath := filepath.Join(dir, "app.db")
	if _, err := b.runWriter("-db", dbPath, "-n", "10"); err != nil {
		return err
	}
	d, err := b.startDaemon(dir, dbPath, "s3")
	if err != nil {
		return err
	}
	defer d.stop()
	if err := d.waitCaughtUp(time.Minute); err != nil {
		return err
	}
	time.Sleep(2 * time.Second)
	ops := func() map[string]float64 {
		body, _ := d.metrics()
		out := map[string]float64{}
		for _, op := range []string{"GET", "PUT", "LIST", "DELETE"} {
			out[op] = metricSum(body, "litestream_replica_operation_total", `operation="`+op+`"`)
		}
		return out
	}
	idle := 30 * time.Second
	if b.quick {
		idle = 10 * time.Second
	}
	before := ops()
	time.Sleep(idle)
	after := ops()
	var total float64
	for _, op := range []string{"GET", "PUT", "LIST", "DELETE"} {
		total += after[op] - before[op]
	}
	perMin := total / idle.Minutes()
	b.add(Figure{Section: "cost", Name: fmt.Sprintf("requests per minute while idle (%s measured)", idle), Value: perMin, Unit: "req/min", Target: "0", Met: met(perMin == 0)})

	before = ops()
	if _, err := b.runWriter("-db", dbPath, "-n", "1000", "-rows", "1", "-size", "100", "-exact", "-every", "5ms"); err != nil {
		return err
	}
	if err := d.waitCaughtUp(time.Minute); err != nil {
		return err
	}
	after = ops()
	for _, op := range []string{"PUT", "GET", "LIST", "DELETE"} {
		b.add(Figure{Section: "cost", Name: op + " requests per 1000 transactions (1 tx per 5 ms, sync-interval 1s)", Value: after[op] - before[op], Unit: "req"})
	}
	return nil
}
