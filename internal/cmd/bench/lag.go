package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/litestream-go/litestream"
	"github.com/litestream-go/litestream/file"
	"github.com/litestream-go/litestream/internal/s3test"
	"github.com/litestream-go/litestream/internal/sqlwriter"
	"github.com/litestream-go/litestream/s3"
)

// upload is a segment that became durable in the replica.
type upload struct {
	index int
	end   int64
	at    time.Time
}

// timedClient records when each segment write completed and where it ends.
type timedClient struct {
	litestream.ReplicaClient
	mu      sync.Mutex
	uploads []upload
}

func (c *timedClient) WriteSegment(ctx context.Context, pos litestream.Pos, r io.Reader) (litestream.SegmentInfo, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return litestream.SegmentInfo{}, err
	}
	dec, err := litestream.Codec{}.NewDecoder(bytes.NewReader(data))
	if err != nil {
		return litestream.SegmentInfo{}, err
	}
	n, err := io.Copy(io.Discard, dec)
	if err != nil {
		return litestream.SegmentInfo{}, err
	}
	info, err := c.ReplicaClient.WriteSegment(ctx, pos, bytes.NewReader(data))
	if err == nil {
		c.mu.Lock()
		c.uploads = append(c.uploads, upload{index: pos.Index, end: pos.Offset + n, at: time.Now()})
		c.mu.Unlock()
	}
	return info, err
}

// lag measures the time from an application's commit to the segment
// holding it being durable in the replica, at the default sync interval
// and at 100 ms, to the file replica and the local S3 server.
func (b *bench) lag(ctx context.Context) error {
	for _, kind := range []string{"s3", "file"} {
		for _, interval := range []time.Duration{time.Second, 100 * time.Millisecond} {
			lags, err := b.lagRun(ctx, kind, interval)
			if err != nil {
				return err
			}
			p := func(q float64) time.Duration { return quantile(lags, q) }
			target := interval + 250*time.Millisecond
			name := fmt.Sprintf("lag to %s, sync-interval %s", kind, interval)
			b.add(Figure{Section: "lag", Name: name + ", p50", Value: p(0.5).Seconds() * 1000, Unit: "ms"})
			b.add(Figure{Section: "lag", Name: name + ", p99", Value: p(0.99).Seconds() * 1000, Unit: "ms",
				Baseline: interval.Seconds() * 1000, BaseName: "sync interval", Ratio: p(0.99).Seconds() / interval.Seconds(),
				Target: fmt.Sprintf("<= %s", target), Met: met(kind != "s3" || p(0.99) <= target)})
			b.add(Figure{Section: "lag", Name: name + ", max", Value: quantile(lags, 1).Seconds() * 1000, Unit: "ms"})
		}
	}
	return nil
}

func (b *bench) lagRun(ctx context.Context, kind string, interval time.Duration) ([]time.Duration, error) {
	dir, err := os.MkdirTemp(b.dir, "lag-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.db")
	w, err := sqlwriter.Open(ctx, path, 0)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if _, err := w.Commit(ctx, 1, 100); err != nil {
		return nil, err
	}
	var inner litestream.ReplicaClient = file.NewReplicaClient(filepath.Join(dir, "replica"))
	if kind == "s3" {
		inner = &s3.ReplicaClient{Bucket: b.bucket, Path: filepath.Base(dir), Endpoint: b.s3.Endpoint(), AccessKeyID: s3test.AccessKey, SecretAccessKey: s3test.SecretKey}
	}
	client := &timedClient{ReplicaClient: inner}
	db := litestream.NewDB(path)
	db.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	db.MinCheckpointPageN, db.CheckpointInterval = 0, 0 // one shadow index for the whole run
	r := litestream.NewReplica("bench", client)
	r.SyncInterval = interval
	db.AddReplica(r)
	if err := db.Open(); err != nil {
		return nil, err
	}
	defer db.Close(ctx)
	for deadline := time.Now().Add(30 * time.Second); r.Pos().IsZero(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("replica never synced")
		}
	}
	type commit struct {
		at  time.Time
		end int64
	}
	var commits []commit
	dur := 6 * time.Second
	if b.quick {
		dur = 3 * time.Second
	}
	for start := time.Now(); time.Since(start) < dur; time.Sleep(20 * time.Millisecond) {
		if _, err := w.Commit(ctx, 1, 100); err != nil {
			return nil, err
		}
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			return nil, err
		}
		commits = append(commits, commit{at: time.Now(), end: fi.Size()})
	}
	index := r.Pos().Index
	time.Sleep(interval + 2*time.Second) // let the last commits ship
	client.mu.Lock()
	defer client.mu.Unlock()
	var lags []time.Duration
	for _, c := range commits {
		for _, u := range client.uploads {
			if u.index == index && u.end >= c.end {
				lags = append(lags, u.at.Sub(c.at))
				break
			}
		}
	}
	if len(lags) < len(commits) {
		return nil, fmt.Errorf("%d of %d commits never reached the replica", len(commits)-len(lags), len(commits))
	}
	return lags, nil
}
