package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/litestream-go/litestream"
)

// RestoreCommand rebuilds a database from a replica.
type RestoreCommand struct {
	stdout, stderr io.Writer
}

const restoreHelp = `
Restores a database from its replicas, to the latest state or to a point in
time. The argument is a database path from the config file (its replicas are
searched, and it is the default output path) or a replica URL (then -o is
required). Restore never overwrites: it writes next to the output and renames
into place, so the output is either absent or a complete, checked database.

Of several replicas, restore reads the one that reaches furthest; of those
that reach as far, the cheapest: a local directory over object storage, then
the fewest stored bytes. The "restoring" line names the choice and why;
-replica NAME overrides it.

Examples:
	litestream restore /var/lib/app.db
	litestream restore -o /tmp/app.db s3://my-bucket/app
	litestream restore -o /tmp/app.db -timestamp 2026-11-24T10:00:00Z /var/lib/app.db
`

// Run restores.
func (c *RestoreCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("restore", "[flags] DB_PATH|REPLICA_URL", restoreHelp)
	cf := registerConfigFlags(fs)
	output := fs.String("o", "", "output path (default: the database path; required with a replica URL)")
	replicaName := fs.String("replica", "", "restore from this replica only (default: the one that reaches furthest, the cheapest of those)")
	generation := fs.String("generation", "", "restore from this generation (default: the newest)")
	indexStr := fs.String("index", "", "restore up to and including this WAL index, in hex as shown by 'litestream wal'")
	timestampStr := fs.String("timestamp", "", "restore the state as of this time, RFC 3339 (2026-11-24T10:00:00Z)")
	parallelism := fs.Int("parallelism", 8, "WAL segments downloaded at once")
	ifDBNotExists := fs.Bool("if-db-not-exists", false, "succeed quietly if the output already exists")
	ifReplicaExists := fs.Bool("if-replica-exists", false, "succeed quietly if there is no backup to restore")
	verbose := fs.Bool("v", false, "verbose: also log each step of the restore and its timings")
	if err := fs.parse(args, c.stdout); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("give exactly one database path or replica URL")
	}
	opt := litestream.RestoreOptions{ReplicaName: *replicaName, Generation: *generation, Index: litestream.NoIndex, Parallelism: *parallelism}
	if *indexStr != "" {
		idx, err := litestream.ParseIndex(*indexStr)
		if err != nil {
			return fmt.Errorf("-index: %w", err)
		}
		opt.Index = idx
	}
	if *timestampStr != "" {
		t, err := time.Parse(time.RFC3339Nano, *timestampStr)
		if err != nil {
			return fmt.Errorf("-timestamp %q is not an RFC 3339 time such as 2026-11-24T10:00:00Z", *timestampStr)
		}
		opt.Timestamp = t
	}
	if opt.Index != litestream.NoIndex && !opt.Timestamp.IsZero() {
		return errors.New("use -index or -timestamp, not both")
	}
	if *parallelism < 1 {
		return errors.New("-parallelism must be at least 1")
	}

	replicas, dbc, err := resolveArg(cf, fs.Arg(0))
	if err != nil {
		return err
	}
	out := *output
	if out == "" {
		if dbc == nil {
			return errors.New("-o is required when restoring from a replica URL")
		}
		out = dbc.Path
	}
	// Before planning, which reads the replica: an output that exists, or
	// another database's -wal, -shm or -journal beside it, fails at once.
	if fi, err := os.Stat(out); err == nil && fi.IsDir() {
		name := "restored.db"
		if dbc != nil {
			name = filepath.Base(dbc.Path)
		}
		return fmt.Errorf("%s is a directory: give a file path, such as %s", out, filepath.Join(out, name))
	}
	if err := litestream.CheckRestoreOutput(out); errors.Is(err, litestream.ErrOutputExists) {
		if *ifDBNotExists {
			fmt.Fprintf(c.stdout, "%s already exists; nothing restored (-if-db-not-exists)\n", out)
			return nil
		}
		return fmt.Errorf("%s already exists: restore never overwrites; remove it, choose another -o, or pass -if-db-not-exists", out)
	} else if err != nil {
		return err
	}

	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelDebug
	}
	logger := slog.New(slog.NewTextHandler(c.stderr, &slog.HandlerOptions{Level: level}))
	opt.Logger = logger
	plan, err := litestream.PlanRestore(ctx, replicas, opt)
	if errors.Is(err, litestream.ErrNoBackup) && *ifReplicaExists {
		fmt.Fprintf(c.stdout, "no backup found; nothing restored (-if-replica-exists): %v\n", err)
		return nil
	} else if err != nil {
		return err
	}
	fmt.Fprintf(c.stderr, "restoring %s from %s\n", out, plan)
	progress := newProgressPrinter(c.stderr)
	opt.Progress = progress.update
	start := time.Now()
	if err := litestream.Restore(ctx, plan, out, opt); errors.Is(err, litestream.ErrOutputExists) && *ifDBNotExists {
		fmt.Fprintf(c.stdout, "%s appeared while restoring; nothing restored (-if-db-not-exists)\n", out)
		return nil
	} else if errors.Is(err, litestream.ErrAgeNoIdentity) && dbc == nil {
		return fmt.Errorf("%w (a replica URL carries no keys: restore by the database path, from a config file that has them)", err)
	} else if err != nil {
		return err
	}
	progress.finish()
	fmt.Fprintf(c.stderr, "restored %s in %s\n", out, time.Since(start).Round(time.Millisecond))
	return nil
}

// progressPrinter prints download progress at most once a second, for
// long restores.
type progressPrinter struct {
	w       io.Writer
	mu      sync.Mutex
	last    time.Time
	printed bool
}

func newProgressPrinter(w io.Writer) *progressPrinter {
	return &progressPrinter{w: w, last: time.Now()}
}

func (p *progressPrinter) update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if time.Since(p.last) < time.Second || total == 0 {
		return
	}
	p.last = time.Now()
	p.printed = true
	fmt.Fprintf(p.w, "downloaded %.1f of %.1f MB (%d%%)\n", float64(done)/1e6, float64(total)/1e6, done*100/total)
}

func (p *progressPrinter) finish() {}
