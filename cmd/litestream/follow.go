package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/litestream-go/litestream"
)

// restore -follow: the flags, their checks and the follower's run, called
// from RestoreCommand.Run. The follower itself is litestream.Follower
// (follow.go of the root package, which states why readers only ever see
// the primary's committed states).

// followFlags are restore's -follow and -follow-interval.
type followFlags struct {
	follow   *bool
	interval *time.Duration
}

// registerFollowFlags adds -follow and -follow-interval to restore's flags.
func registerFollowFlags(fs *commandFlags) *followFlags {
	return &followFlags{
		follow: fs.Bool("follow", false, "after the restore, keep the output current as a live read replica until stopped "+
			"(resumes from its sidecar .NAME-follow; see the README's follower section)"),
		interval: fs.Duration("follow-interval", litestream.DefaultFollowInterval, "with -follow: how often to ask the replica for new WAL segments"),
	}
}

// enabled reports whether -follow was given.
func (f *followFlags) enabled() bool { return *f.follow }

// check refuses what a follower cannot do, before anything is read: a
// point in time (it follows the latest), an output that exists and was not
// made by a follower (naming the sidecar it expected). -follow-interval
// alone is refused too: it means nothing without -follow.
func (f *followFlags) check(output, index, timestamp, generation string) error {
	if !f.enabled() {
		if *f.interval != litestream.DefaultFollowInterval {
			return errors.New("-follow-interval needs -follow")
		}
		return nil
	}
	switch {
	case index != "":
		return errors.New("-follow and -index: a follower follows the latest state; restore to an index without -follow")
	case timestamp != "":
		return errors.New("-follow and -timestamp: a follower follows the latest state; restore to a time without -follow")
	case generation != "":
		return errors.New("-follow and -generation: a follower follows the newest generation, and the primary's next ones")
	case *f.interval <= 0:
		return fmt.Errorf("-follow-interval %s: must be positive", *f.interval)
	}
	return litestream.CheckFollowOutput(output)
}

// followRun is what restore passes to the follower.
type followRun struct {
	Replicas        []*litestream.Replica
	Output          string
	ReplicaName     string // -replica
	Parallelism     int    // -parallelism, for the first restore and resyncs
	Verbose         bool   // -v
	IfReplicaExists bool   // -if-replica-exists: no backup is a quiet success
	Config          configFlags
	FromConfig      bool // the argument was a database of the config file
	Stdout, Stderr  io.Writer
}

// run restores the output if it is not there and follows the replica until
// ctx ends (SIGINT, SIGTERM), then exits 0. With addr in the config file it
// serves /metrics (litestream_follow_position, litestream_follow_lag_seconds)
// and /healthz.
func (f *followFlags) run(ctx context.Context, r followRun) error {
	var cfg *Config
	if r.FromConfig || *r.Config.path != "" {
		c, err := r.Config.load()
		if err != nil {
			return err
		}
		cfg = c
	}
	level := slog.LevelInfo
	if r.Verbose {
		level = slog.LevelDebug
	}
	opts := &slog.HandlerOptions{Level: level}
	var logger *slog.Logger
	if cfg != nil && cfg.Logging.Type == "json" {
		logger = slog.New(slog.NewJSONHandler(r.Stderr, opts))
	} else {
		logger = slog.New(slog.NewTextHandler(r.Stderr, opts))
	}
	fl := litestream.NewFollower(r.Replicas, r.Output, litestream.FollowOptions{
		ReplicaName: r.ReplicaName, Interval: *f.interval, Parallelism: r.Parallelism, Logger: logger,
	})
	if cfg != nil && cfg.Addr != "" {
		srv, err := startFollowHTTP(cfg.Addr, r.Output, fl, *f.interval, logger)
		if err != nil {
			return err
		}
		defer srv.Shutdown(context.Background())
	}
	fmt.Fprintf(r.Stderr, "following into %s every %s; stop with SIGINT or SIGTERM\n", r.Output, *f.interval)
	err := fl.Run(ctx)
	if errors.Is(err, litestream.ErrNoBackup) && r.IfReplicaExists {
		fmt.Fprintf(r.Stdout, "no backup found; nothing restored (-if-replica-exists): %v\n", err)
		return nil
	}
	if err != nil {
		return err
	}
	st := fl.Status()
	fmt.Fprintf(r.Stderr, "stopped following %s at %s\n", r.Output, st.Pos)
	return nil
}

// followHealthWindow is how long the follower may go without a good poll
// before /healthz fails, at least.
const followHealthWindow = time.Minute

// startFollowHTTP binds addr and serves the follower's metrics and health.
func startFollowHTTP(addr, output string, fl *litestream.Follower, interval time.Duration, logger *slog.Logger) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("addr %q: cannot listen for metrics (%v): choose a free host:port, or remove addr to turn metrics off", addr, err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(newFollowCollector(output, fl), collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	window := max(followHealthWindow, 10*interval)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if p := followHealthProblem(fl.Status(), window, time.Now()); p != "" {
			http.Error(w, "unhealthy: "+p, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "error", err)
		}
	}()
	logger.Info("serving metrics", "addr", ln.Addr().String())
	return srv, nil
}

// followHealthProblem says why a follower is unhealthy, or "": its last
// poll failed (the replica is gone or unreadable), or it has not been
// current for longer than window.
func followHealthProblem(st litestream.FollowStatus, window time.Duration, now time.Time) string {
	switch {
	case st.LastErr != nil:
		return fmt.Sprintf("cannot follow replica %s for %s, serving %s: %s", st.Replica, now.Sub(st.FailingSince).Round(time.Second),
			st.Pos, oneLine(st.LastErr.Error()))
	case st.CurrentAt.IsZero():
		return "" // starting: the first restore is under way
	case now.Sub(st.CurrentAt) > window:
		return fmt.Sprintf("not known to be current for %s (serving %s)", now.Sub(st.CurrentAt).Round(time.Second), st.Pos)
	}
	return ""
}

// followCollector exports the follower's status at scrape time.
type followCollector struct {
	output   string
	fl       *litestream.Follower
	pos, lag *prometheus.Desc
}

func newFollowCollector(output string, fl *litestream.Follower) *followCollector {
	return &followCollector{
		output: output, fl: fl,
		pos: prometheus.NewDesc("litestream_follow_position",
			"Position the follower database holds: its shadow WAL index (part=\"index\") and the offset in it (part=\"offset\").",
			[]string{"db", "generation", "part"}, nil),
		lag: prometheus.NewDesc("litestream_follow_lag_seconds",
			"Seconds since the follower last found the replica holding nothing newer than what it serves: its lag behind the replica "+
				"(the primary's sync-interval comes on top).",
			[]string{"db"}, nil),
	}
}

func (c *followCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.pos; ch <- c.lag }

func (c *followCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.fl.Status()
	if st.Pos.IsZero() {
		return
	}
	gauge := prometheus.GaugeValue
	ch <- prometheus.MustNewConstMetric(c.pos, gauge, float64(st.Pos.Index), c.output, st.Pos.Generation, "index")
	ch <- prometheus.MustNewConstMetric(c.pos, gauge, float64(st.Pos.Offset), c.output, st.Pos.Generation, "offset")
	if !st.CurrentAt.IsZero() {
		ch <- prometheus.MustNewConstMetric(c.lag, gauge, time.Since(st.CurrentAt).Seconds(), c.output)
	}
}
