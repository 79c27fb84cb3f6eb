package main

import (
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/litestream-go/litestream"
)

// DefaultHealthWindow is how recent every replica's last successful sync
// must be for /healthz to answer 200.
const DefaultHealthWindow = time.Minute

// httpServer serves /metrics, /healthz and, only when asked, /debug/pprof.
type httpServer struct {
	srv *http.Server
	ln  net.Listener
}

// startHTTPServer binds addr now, so that a bad address fails at start, and
// serves in the background until shutdown.
func startHTTPServer(addr string, dbs *dbSet, ops *litestream.OpCounter, window time.Duration, withPprof bool, logger *slog.Logger) (*httpServer, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("addr %q: cannot listen for metrics (%v): choose a free host:port, or remove addr to turn metrics off", addr, err)
	}
	// The Go runtime's and the process's metrics (go_*, process_*) are
	// there as in v0.3, which served the default registry: dashboards
	// graph them.
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	mux := http.NewServeMux()
	mux.Handle("/metrics", metricsHandler(newMetricsCollector(dbs, ops), reg, logger))
	started := time.Now()
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		if problems := healthProblems(dbs.list(), window, started, time.Now()); len(problems) > 0 {
			http.Error(w, "unhealthy: "+strings.Join(problems, "; "), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	if withPprof {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	s := &httpServer{srv: &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}, ln: ln}
	go func() {
		if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			logger.Error("metrics server stopped", "error", err)
		}
	}()
	logger.Info("serving metrics", "addr", ln.Addr().String(), "pprof", withPprof)
	return s, nil
}

// metricsHandler serves the engine's families (metricsCollector.writeText)
// and then the registry's (the Go runtime's and the process's), in the
// text format, gzipped when the scraper accepts it.
func metricsHandler(c *metricsCollector, reg prometheus.Gatherer, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
		var out io.Writer = w
		if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
			w.Header().Set("Content-Encoding", "gzip")
			gz := gzip.NewWriter(w)
			defer gz.Close()
			out = gz
		}
		if err := c.writeText(out); err != nil {
			logger.Debug("metrics scrape", "error", err)
			return
		}
		mfs, err := reg.Gather()
		if err != nil {
			logger.Warn("metrics: the process's metrics", "error", err)
		}
		for _, mf := range mfs {
			if _, err := expfmt.MetricFamilyToText(out, mf); err != nil {
				logger.Debug("metrics scrape", "error", err)
				return
			}
		}
	})
}

// Addr returns the bound address.
func (s *httpServer) Addr() string { return s.ln.Addr().String() }

// shutdown stops the server.
func (s *httpServer) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = s.srv.Shutdown(ctx)
}

// healthProblems lists why the process is unhealthy: a database that is
// not replicating, or a replica whose last successful sync is older than
// the window (after a grace period of one window from start) and that
// lacks a commit or failed its last sync.
func healthProblems(dbs []*litestream.DB, window time.Duration, started, now time.Time) []string {
	var out []string
	grace := now.Sub(started) < window
	for _, db := range dbs {
		if st := db.Stats(); st.FailedSyncs > 0 {
			// A database whose WAL cannot be copied is unhealthy at once,
			// even while its replicas still report successful syncs of
			// what they have.
			out = append(out, fmt.Sprintf("database %s: %d syncs in a row failed, for %s: %s", db.Path(), st.FailedSyncs,
				now.Sub(st.FailingSince).Round(time.Second), oneLine(st.LastSyncErr.Error())))
			continue
		}
		if db.Stats().Generation == "" {
			if !grace {
				out = append(out, fmt.Sprintf("database %s is not being replicated yet", db.Path()))
			}
			continue
		}
		for _, r := range db.Replicas {
			st := r.Status()
			last := st.LastSync
			if last.IsZero() {
				last = started
			}
			// An idle replica that holds everything syncs only now and then
			// (litestream.Replica.run): caught up with no error is healthy.
			if now.Sub(last) <= window || (st.LastSyncErr == nil && !st.LastSync.IsZero() && db.ReplicaLag(st.Pos, now) == 0) {
				continue
			}
			msg := fmt.Sprintf("replica %s of %s: no successful sync for %s", r.Name, db.Path(), now.Sub(last).Round(time.Second))
			if st.LastSyncErr != nil {
				msg += ": " + oneLine(st.LastSyncErr.Error())
			}
			out = append(out, msg)
		}
	}
	return out
}
