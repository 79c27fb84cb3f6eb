package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/litestream-go/litestream"
)

// The heartbeat (heartbeat-url) tells a dead man's switch (Healthchecks.io
// and the like) that replication works, by its silence when it does not:
//  1. A GET goes out only when every database in the set, and at least
//     one, has a generation and no failing copy, and every replica's last
//     sync succeeded within the heartbeat interval (healthyForHeartbeat).
//  2. At most one GET per interval, counted from the last attempt, so a
//     failing endpoint is not hammered.
//  3. The URL's query string and user info (where services put their
//     token) appear in no log line and no error: only heartbeatURLForLog.

const (
	defaultHeartbeatInterval = 5 * time.Minute // as v0.5
	minHeartbeatInterval     = time.Minute     // as v0.5: the services' shortest period
	heartbeatTimeout         = 30 * time.Second
	heartbeatCheckInterval   = 15 * time.Second // how often the conditions are looked at
)

// checkHeartbeat validates heartbeat-url and heartbeat-interval.
func (c *Config) checkHeartbeat() error {
	if c.HeartbeatURL == "" {
		if c.HeartbeatInterval != nil {
			c.Warnings = append(c.Warnings, "heartbeat-interval is set but heartbeat-url is not: no heartbeat is sent")
		}
		return nil
	}
	u, err := url.Parse(c.HeartbeatURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("heartbeat-url %s: give an http:// or https:// URL with a host", heartbeatURLForLog(c.HeartbeatURL))
	}
	if c.HeartbeatInterval != nil && time.Duration(*c.HeartbeatInterval) < minHeartbeatInterval {
		return fmt.Errorf("heartbeat-interval %s: must be at least %s", time.Duration(*c.HeartbeatInterval), minHeartbeatInterval)
	}
	return nil
}

// heartbeatURLForLog returns scheme://host/path of a URL: never its user
// info, query or fragment.
func heartbeatURLForLog(s string) string {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return "(a URL that does not parse, not shown)"
	}
	return (&url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}).String()
}

// heartbeat pings its URL while every database replicates.
type heartbeat struct {
	url      string
	interval time.Duration // how recent every sync must be, and the time between pings
	check    time.Duration // how often the conditions are looked at
	dbs      *dbSet
	client   *http.Client
	logger   *slog.Logger

	last     time.Time // of the last attempt
	withheld string    // why the last check sent nothing, "" when it could
}

// newHeartbeat returns the config's heartbeat over dbs, nil when off.
func newHeartbeat(cfg *Config, dbs *dbSet, logger *slog.Logger) *heartbeat {
	if cfg.HeartbeatURL == "" {
		return nil
	}
	interval := cfg.HeartbeatInterval.D(defaultHeartbeatInterval)
	return &heartbeat{
		url: cfg.HeartbeatURL, interval: interval, check: min(heartbeatCheckInterval, interval),
		dbs: dbs, client: &http.Client{Timeout: heartbeatTimeout}, logger: logger,
	}
}

// run looks at the conditions every check interval and pings when they
// hold, until ctx ends.
func (h *heartbeat) run(ctx context.Context) {
	h.logger.Info("heartbeat on", "url", heartbeatURLForLog(h.url), "interval", h.interval.String())
	t := time.NewTicker(h.check)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.beat(ctx, time.Now())
		}
	}
}

// beat sends one ping if one is due and every database is healthy; it
// reports whether it sent one (successfully or not).
func (h *heartbeat) beat(ctx context.Context, now time.Time) bool {
	if !h.last.IsZero() && now.Sub(h.last) < h.interval {
		return false
	}
	if why := healthyForHeartbeat(h.dbs.list(), h.interval, now); why != "" {
		if why != h.withheld {
			h.logger.Info("heartbeat withheld", "reason", why)
		}
		h.withheld = why
		return false
	}
	if h.withheld != "" {
		h.logger.Info("heartbeat resumed: every database replicates")
		h.withheld = ""
	}
	h.last = now
	if err := h.ping(ctx); err != nil {
		h.logger.Warn("heartbeat failed", "url", heartbeatURLForLog(h.url), "error", err)
	} else {
		h.logger.Debug("heartbeat sent", "url", heartbeatURLForLog(h.url))
	}
	return true
}

// ping makes the GET; its error never holds the URL.
func (h *heartbeat) ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, h.url, nil)
	if err != nil {
		return errors.New("the URL does not make a request")
	}
	resp, err := h.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // url.Error's text quotes the whole URL
		}
		return fmt.Errorf("GET: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("GET: status %s", resp.Status)
	}
	return nil
}

// healthyForHeartbeat returns why no heartbeat may be sent now, or "" when
// one may (invariant 1).
func healthyForHeartbeat(dbs []*litestream.DB, interval time.Duration, now time.Time) string {
	if len(dbs) == 0 {
		return "no database is being replicated"
	}
	for _, db := range dbs {
		st := db.Stats()
		switch {
		case st.FailedSyncs > 0:
			return fmt.Sprintf("database %s: its last %d syncs failed", db.Path(), st.FailedSyncs)
		case st.Generation == "":
			return fmt.Sprintf("database %s is not being replicated yet", db.Path())
		}
		for _, r := range db.Replicas {
			rs := r.Status()
			switch {
			case rs.LastSyncErr != nil:
				return fmt.Sprintf("replica %s of %s: its last sync failed", r.Name, db.Path())
			case rs.LastSync.IsZero():
				return fmt.Sprintf("replica %s of %s has not synced yet", r.Name, db.Path())
			case now.Sub(rs.LastSync) > interval && db.ReplicaLag(rs.Pos, now) > 0:
				// An idle replica that holds everything syncs only now and
				// then (litestream.Replica.run): caught up counts as synced.
				return fmt.Sprintf("replica %s of %s: no successful sync for %s", r.Name, db.Path(), now.Sub(rs.LastSync).Round(time.Second))
			}
		}
	}
	return ""
}
