package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/litestream-go/litestream"
)

// ReplicateCommand runs the replication engine until it is stopped.
type ReplicateCommand struct {
	stdout, stderr io.Writer
}

const replicateHelp = `
Watches SQLite databases and replicates every committed transaction to their
replicas. With DB_PATH and one or more REPLICA_URLs no config file is needed;
otherwise every database of the config file is replicated.

A replica URL is a directory (a path or file:///abs/path), s3://BUCKET/PATH,
gcs://BUCKET/PATH, abs://[ACCOUNT@]CONTAINER/PATH or
sftp://USER[:PASSWORD]@HOST[:PORT]/PATH.
On SIGINT or SIGTERM, litestream makes a last sync of every database to every
replica and exits 0. With -exec it runs the application as a child process,
forwards those signals to it, and exits with its exit code after a last sync.
With -restore-if-db-not-exists, a missing database is first restored from its
replicas (before the child starts), then replicated in a new generation.

Examples:
	litestream replicate /var/lib/app.db /var/backups/app
	litestream replicate /var/lib/app.db s3://my-bucket/app
	litestream replicate -config /etc/litestream.yml
	litestream replicate -restore-if-db-not-exists -exec "myapp -serve"
`

// Run parses flags, starts every database and waits for a signal.
func (c *ReplicateCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("replicate", "[flags] [DB_PATH REPLICA_URL...]", replicateHelp)
	configPath := registerConfigFlags(fs)
	execCmd := fs.String("exec", "", "run this command as a child process; exit when it exits, with its exit code")
	restoreIfMissing := fs.Bool("restore-if-db-not-exists", false, "restore each missing database from its replicas before replicating it (a fresh database if none holds a backup)")
	if err := fs.parse(args, c.stdout); err != nil {
		return err
	}
	cfg, err := loadReplicateConfig(fs, configPath)
	if err != nil {
		return err
	}
	logger, err := newLogger(cfg.Logging, c.stderr)
	if err != nil {
		return err
	}
	slog.SetDefault(logger)
	logger.Info("starting litestream", "version", version())
	for _, v := range cfg.EmptyVars {
		logger.Warn("a variable in the config file is unset or empty; the key it fills is empty", "variable", v)
	}
	if *execCmd != "" {
		if cfg.Exec != "" && cfg.Exec != *execCmd {
			logger.Warn("the -exec flag overrides the config file's exec", "flag", *execCmd, "config", cfg.Exec)
		}
		cfg.Exec = *execCmd
	}
	for _, n := range cfg.Notes {
		logger.Info("config: " + n)
	}
	for _, w := range cfg.Warnings {
		logger.Warn("config: " + w)
	}
	switch {
	case len(cfg.DBs) == 0 && len(cfg.Dirs) == 0 && cfg.Exec == "":
		return errors.New("no databases to replicate: list them under dbs: in the config file, or pass DB_PATH REPLICA_URL")
	case len(cfg.DBs) == 0 && len(cfg.Dirs) == 0:
		// As in v0.3: the child runs, and litestream exits with it.
		logger.Warn("the config file lists no databases: running the exec command without replicating anything")
	}

	ops := &litestream.OpCounter{}
	// One inotify instance for every database: an idle one then costs no
	// look at its files. Without it, each looks at its WAL every 25 ms.
	notifier, err := litestream.NewWALNotifier()
	if err != nil {
		logger.Warn("cannot watch the databases' files; each database's WAL is looked at every 25 ms instead", "error", err)
		notifier = nil
	} else {
		defer notifier.Close()
	}
	var dbs []*litestream.DB
	for _, dbc := range cfg.DBs {
		db, err := newDBFromConfig(dbc, logger, ops)
		if err != nil {
			return err
		}
		dbs = append(dbs, db)
	}
	set := newDBSet()
	monitors, found, err := startDirEntries(cfg, set, ops, notifier, logger)
	if err != nil {
		return err
	}
	if err := checkStores(ctx, append(slices.Clip(dbs), found...), logger); err != nil {
		return err
	}
	if err := restoreMissing(ctx, dbs, cfg.DBs, *restoreIfMissing, logger); err != nil {
		return err
	}
	dbs = append(dbs, found...)
	for _, db := range dbs {
		set.add(db)
	}
	if cfg.Addr != "" {
		srv, err := startHTTPServer(cfg.Addr, set, ops, cfg.HealthWindow.D(DefaultHealthWindow), cfg.Pprof, logger)
		if err != nil {
			return err
		}
		defer srv.shutdown()
	}
	for _, db := range dbs {
		if err := openAndLog(db, notifier, logger); err != nil {
			return err
		}
	}
	// The directory monitors and the heartbeat run until the last sync
	// begins: no database is added or removed during closeAll.
	bgCtx, stopBackground := context.WithCancel(context.Background())
	var bg sync.WaitGroup
	for _, m := range monitors {
		bg.Add(1)
		go func() { defer bg.Done(); m.run(bgCtx) }()
	}
	if hb := newHeartbeat(cfg, set, logger); hb != nil {
		bg.Add(1)
		go func() { defer bg.Done(); hb.run(bgCtx) }()
	}
	logger.Info("replication started", "databases", set.len(), "directory_entries", len(monitors))
	stopAll := func() error {
		stopBackground()
		bg.Wait()
		return closeAll(set.list(), logger)
	}

	exitCode := 0
	if cfg.Exec != "" {
		code, err := runChild(ctx, cfg.Exec, logger)
		if err != nil {
			_ = stopAll()
			return err
		}
		exitCode = code
	} else {
		<-ctx.Done()
		logger.Info("signal received, making a last sync")
	}
	if err := stopAll(); err != nil {
		return err
	}
	if exitCode != 0 {
		return exitCodeError{code: exitCode}
	}
	return nil
}

// startupCheckTimeout bounds the startup check of the replicas' stores:
// long enough for a store started beside litestream (docker compose, say)
// to come up.
var startupCheckTimeout = 10 * time.Second

// checkStores checks, in parallel, every replica's store that can be
// checked (litestream.StoreChecker), before any database is opened or
// -exec's child started. A configuration that cannot work (credentials,
// bucket, region) or a store no connection reaches within
// startupCheckTimeout is an error naming the replica: a wrong endpoint, or
// a network that is down, is better fixed now than found in the logs
// later. A store that answered only with server errors is there and may
// recover: replication starts, with a warning, and the shadow WAL keeps
// every commit until it does.
func checkStores(ctx context.Context, dbs []*litestream.DB, logger *slog.Logger) error {
	type check struct {
		db  *litestream.DB
		r   *litestream.Replica
		err error
	}
	var checks []*check
	for _, db := range dbs {
		for _, r := range db.Replicas {
			if _, ok := r.Client.(litestream.StoreChecker); ok {
				checks = append(checks, &check{db: db, r: r})
			}
		}
	}
	inParallel(len(checks), func(i int) {
		c := checks[i]
		cctx, cancel := context.WithTimeout(ctx, startupCheckTimeout)
		defer cancel()
		c.err = c.r.Client.(litestream.StoreChecker).CheckStore(cctx)
	})
	if ctx.Err() != nil {
		return errors.New("stopped during the startup check of the replicas")
	}
	var errs []string
	for _, c := range checks {
		switch {
		case c.err == nil:
		case errors.Is(c.err, litestream.ErrStoreBusy):
			logger.Warn("the replica's store fails at startup; replicating anyway: the shadow WAL keeps every commit until the store accepts it",
				"db", c.db.Path(), "replica", c.r.Name, "error", c.err)
		default:
			logger.Error("the replica's store cannot be used", "db", c.db.Path(), "replica", c.r.Name, "error", c.err)
			errs = append(errs, fmt.Sprintf("replica %s of %s: %v", c.r.Name, c.db.Path(), c.err))
		}
	}
	if len(errs) > 0 {
		return errors.New(strings.Join(errs, "; "))
	}
	return nil
}

// maxParallel bounds the startup checks and the last syncs that run at
// once: enough to hide a store's latency, few enough that a thousand
// databases do not open a thousand connections at once.
const maxParallel = 32

// inParallel calls f(0) ... f(n-1), at most maxParallel at once, and
// returns when every call has.
func inParallel(n int, f func(i int)) {
	sem := make(chan struct{}, maxParallel)
	var wg sync.WaitGroup
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// closeAll makes the last sync of every database, maxParallel at once. A
// second signal, or five minutes, cuts it short. Each failure is logged on
// its own line and named in the error.
func closeAll(dbs []*litestream.DB, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	errs := make([]error, len(dbs))
	inParallel(len(dbs), func(i int) {
		if err := dbs[i].Close(ctx); err != nil {
			logger.Error("last sync failed", "db", dbs[i].Path(), "error", err)
			errs[i] = fmt.Errorf("%s: %w", dbs[i].Path(), err)
		}
	})
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("last sync incomplete: %w", err)
	}
	logger.Info("last sync done; exiting", "databases", len(dbs))
	return nil
}

// newLogger builds the slog logger the config asks for.
func newLogger(lc LoggingConfig, stderr io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch lc.Level {
	case "", "info":
		level = slog.LevelInfo
	case "debug":
		level = slog.LevelDebug
	case "warn":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("logging.level %q: use debug, info, warn or error", lc.Level)
	}
	var w io.Writer = os.Stdout
	if lc.Stderr {
		w = stderr
	}
	opts := &slog.HandlerOptions{Level: level}
	if lc.Type == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return slog.New(slog.NewTextHandler(w, opts)), nil
}
