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
// holding it being durable in the replica, and the segment uploads per
// minute, to the file replica and the local S3 server: back-to-back
// commits (every 20 ms) at the default sync interval and at 100 ms, and
// sparse ones (every 2 s) at the default, which ship at once.
func (b *bench) lag(ctx context.Context) error {
	loads := []struct {
		name     string
		interval time.Duration
		every    time.Duration
		target   time.Duration
	}{
		{"back-to-back commits", time.Second, 20 * time.Millisecond, time.Second + 250*time.Millisecond},
		{"back-to-back commits", 100 * time.Millisecond, 20 * time.Millisecond, 350 * time.Millisecond},
		{"a commit every 2s", time.Second, 2 * time.Second, 100 * time.Millisecond},
	}
	for _, kind := range []string{"s3", "file"} {
		for _, l := range loads {
			run, err := b.lagRun(ctx, kind, l.interval, l.every)
			if err != nil {
				return err
			}
			lags := run.lags
			p := func(q float64) time.Duration { return quantile(lags, q) }
			name := fmt.Sprintf("lag to %s, %s, sync-interval %s", kind, l.name, l.interval)
			b.add(Figure{Section: "lag", Name: name + ", p50", Value: p(0.5).Seconds() * 1000, Unit: "ms"})
			b.add(Figure{Section: "lag", Name: name + ", p99", Value: p(0.99).Seconds() * 1000, Unit: "ms",
				Baseline: l.interval.Seconds() * 1000, BaseName: "sync interval", Ratio: p(0.99).Seconds() / l.interval.Seconds(),
				Target: fmt.Sprintf("<= %s", l.target), Met: met(kind != "s3" || p(0.99) <= l.target)})
			b.add(Figure{Section: "lag", Name: name + ", max", Value: quantile(lags, 1).Seconds() * 1000, Unit: "ms"})
			// At most one upload per sync interval, whatever the load: the
			// rate between the run's first upload and its last (5% allowed
			// for the time an upload takes to complete varying).
			perMin := float64(run.uploads-1) / run.uploadSpan.Minutes()
			limit := time.Minute.Seconds() / l.interval.Seconds()
			b.add(Figure{Section: "lag", Name: name + ", segment uploads per minute", Value: perMin, Unit: "/min",
				Target: fmt.Sprintf("<= %.0f", limit), Met: met(run.uploads > 1 && perMin <= 1.05*limit)})
		}
	}
	return nil
}

// lagResult is one lag run: each commit's lag, and the segment uploads
// of the run's commits with the time from the first to the last.
type lagResult struct {
	lags       []time.Duration
	uploads    int
	uploadSpan time.Duration
}

func (b *bench) lagRun(ctx context.Context, kind string, interval, every time.Duration) (lagResult, error) {
	dir, err := os.MkdirTemp(b.dir, "lag-")
	if err != nil {
		return lagResult{}, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "app.db")
	w, err := sqlwriter.Open(ctx, path, 0)
	if err != nil {
		return lagResult{}, err
	}
	defer w.Close()
	if _, err := w.Commit(ctx, 1, 100); err != nil {
		return lagResult{}, err
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
		return lagResult{}, err
	}
	defer db.Close(ctx)
	for deadline := time.Now().Add(30 * time.Second); r.Pos().IsZero(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			return lagResult{}, fmt.Errorf("replica never synced")
		}
	}
	type commit struct {
		at  time.Time
		end int64
	}
	var commits []commit
	dur := 6 * time.Second
	if every > time.Second {
		dur = 20 * every // 20 commits
	}
	if b.quick {
		dur /= 2
	}
	// The first commit comes a sync interval after the replica's first
	// upload, as a sparse one would.
	time.Sleep(interval)
	client.mu.Lock()
	uploadsBefore := len(client.uploads)
	client.mu.Unlock()
	start := time.Now()
	for ; time.Since(start) < dur; time.Sleep(every) {
		if _, err := w.Commit(ctx, 1, 100); err != nil {
			return lagResult{}, err
		}
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			return lagResult{}, err
		}
		commits = append(commits, commit{at: time.Now(), end: fi.Size()})
	}
	index := r.Pos().Index
	time.Sleep(interval + 2*time.Second) // let the last commits ship
	client.mu.Lock()
	defer client.mu.Unlock()
	run := client.uploads[uploadsBefore:]
	if len(run) == 0 {
		return lagResult{}, fmt.Errorf("no upload")
	}
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
		return lagResult{}, fmt.Errorf("%d of %d commits never reached the replica", len(commits)-len(lags), len(commits))
	}
	return lagResult{lags: lags, uploads: len(run), uploadSpan: run[len(run)-1].at.Sub(run[0].at)}, nil
}
