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
the fewest stored bytes. The "restoring" line names the choice and why. If a
file it needs is missing or damaged, it names the file and the replica and
restores from the next replica that reaches the same point, or else the
nearest earlier one, and says so. A replica that cannot be listed is passed
over with a warning. -replica NAME pins one replica and fails instead.

-dry-run prints the plan (replica, generation, snapshot, segments, the
position reached and its time) and writes nothing; with -json, as one JSON
object. The result is checked with SQLite before it is moved into place:
-integrity-check quick (PRAGMA quick_check, the default), full (PRAGMA
integrity_check, slower) or none.

With -follow, restore keeps the output current as a live read replica until
SIGINT or SIGTERM: applications read it with SQLite at any time and see only
states the primary committed. Its position is kept in a sidecar file beside
the output (.NAME-follow), so a restart on the same output resumes.

Examples:
	litestream restore /var/lib/app.db
	litestream restore -follow -o /data/replica.db s3://my-bucket/app
	litestream restore -o /tmp/app.db s3://my-bucket/app
	litestream restore -o /tmp/app.db -timestamp 2026-11-24T10:00:00Z /var/lib/app.db
	litestream restore -dry-run -json /var/lib/app.db
	litestream restore -integrity-check full -o /tmp/app.db /var/lib/app.db
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
	follow := registerFollowFlags(fs)
	dryRun := fs.Bool("dry-run", false, "print the plan (replica, generation, snapshot, segments, position reached and its time) and write nothing")
	asJSON := fs.Bool("json", false, "with -dry-run: print the plan as one JSON object")
	checkStr := fs.String("integrity-check", "quick", "check of the result before it is moved into place: quick (PRAGMA quick_check), full (PRAGMA integrity_check) or none")
	if err := fs.parse(args, c.stdout); err != nil {
		return err
	}
	check, err := litestream.ParseIntegrityCheck(*checkStr)
	if err != nil {
		return fmt.Errorf("-integrity-check %q: give none, quick or full", *checkStr)
	}
	if *asJSON && !*dryRun {
		return errors.New("-json prints the plan of a dry run: give -dry-run too")
	}
	if fs.NArg() != 1 {
		return errors.New("give exactly one database path or replica URL")
	}
	opt := litestream.RestoreOptions{ReplicaName: *replicaName, Generation: *generation, Index: litestream.NoIndex, Parallelism: *parallelism, IntegrityCheck: check}
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
	if err := follow.check(out, *indexStr, *timestampStr, *generation); err != nil {
		return err
	}
	if follow.enabled() {
		return follow.run(ctx, followRun{Replicas: replicas, Output: out, ReplicaName: *replicaName, Parallelism: *parallelism,
			Verbose: *verbose, IfReplicaExists: *ifReplicaExists, Config: cf, FromConfig: dbc != nil, Stdout: c.stdout, Stderr: c.stderr})
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
		if *ifDBNotExists && *dryRun {
			return c.printNothing(*asJSON, out, fmt.Sprintf("%s already exists; nothing would be restored (-if-db-not-exists)", out))
		}
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
		if *dryRun {
			return c.printNothing(*asJSON, out, fmt.Sprintf("no backup found; nothing would be restored (-if-replica-exists): %v", err))
		}
		fmt.Fprintf(c.stdout, "no backup found; nothing restored (-if-replica-exists): %v\n", err)
		return nil
	} else if err != nil {
		return err
	}
	if *dryRun {
		return printDryRun(c.stdout, *asJSON, out, plan, check)
	}
	fmt.Fprintf(c.stderr, "restoring %s from %s\n", out, plan)
	opt.OnFallback = func(failed, next *litestream.RestorePlan, how string, err error) {
		fmt.Fprintf(c.stderr, "%s; restoring from replica %s instead, which %s: %s\n", oneLine(err.Error()), next.Replica.Name, how, next)
	}
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

// printNothing says, for a dry run, that the restore would do nothing.
func (c *RestoreCommand) printNothing(asJSON bool, out, why string) error {
	if asJSON {
		return writeJSON(c.stdout, dryRunJSON{Output: out, WouldRestore: false, Reason: why})
	}
	fmt.Fprintln(c.stdout, "dry run: "+why)
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

// dryRunJSON is the plan of restore -dry-run -json. Indexes and offsets
// are hex strings, as everywhere; sizes are stored (compressed) bytes.
type dryRunJSON struct {
	Output         string             `json:"output"`
	WouldRestore   bool               `json:"would_restore"`
	Reason         string             `json:"reason,omitempty"` // why nothing would be restored
	Replica        string             `json:"replica,omitempty"`
	ReplicaType    string             `json:"replica_type,omitempty"`
	Generation     string             `json:"generation,omitempty"`
	Snapshot       *snapshotJSON      `json:"snapshot,omitempty"`
	SegmentCount   int                `json:"segment_count"`
	SegmentBytes   int64              `json:"segment_bytes"`
	Segments       []segmentJSON      `json:"segments,omitempty"`
	StoredBytes    int64              `json:"stored_bytes"`
	Position       *positionJSON      `json:"position,omitempty"`
	Reach          string             `json:"reach,omitempty"`
	Time           string             `json:"time,omitempty"`
	IntegrityCheck string             `json:"integrity_check,omitempty"`
	Choice         string             `json:"choice,omitempty"`
	Fallbacks      []dryRunFallbackJS `json:"fallbacks,omitempty"`
}

type snapshotJSON struct {
	Index   string `json:"index"`
	Size    int64  `json:"size"`
	Created string `json:"created"`
}

type segmentJSON struct {
	Index   string `json:"index"`
	Offset  string `json:"offset"`
	Size    int64  `json:"size"`
	Created string `json:"created"`
}

type positionJSON struct {
	Generation string `json:"generation"`
	Index      string `json:"index"`
	Offset     string `json:"offset"`
}

type dryRunFallbackJS struct {
	Replica     string `json:"replica"`
	ReplicaType string `json:"replica_type"`
	Reach       string `json:"reach"`
	StoredBytes int64  `json:"stored_bytes"`
}

// printDryRun prints what restoring plan to out would do, as text or as
// one JSON object; it writes nothing else.
func printDryRun(w io.Writer, asJSON bool, out string, plan *litestream.RestorePlan, check litestream.IntegrityCheck) error {
	var segBytes int64
	for _, s := range plan.Segments {
		segBytes += s.Size
	}
	if asJSON {
		j := dryRunJSON{
			Output: out, WouldRestore: true, Replica: plan.Replica.Name, ReplicaType: plan.Replica.Client.Type(),
			Generation: plan.Generation,
			Snapshot: &snapshotJSON{Index: litestream.FormatIndex(plan.Snapshot.Index), Size: plan.Snapshot.Size,
				Created: formatTime(plan.Snapshot.CreatedAt)},
			SegmentCount: len(plan.Segments), SegmentBytes: segBytes, Segments: []segmentJSON{}, StoredBytes: plan.Size(),
			Position: &positionJSON{Generation: plan.Target.Generation, Index: litestream.FormatIndex(plan.Target.Index),
				Offset: litestream.FormatOffset(plan.Target.Offset)},
			Reach: plan.Reach(), Time: formatTime(plan.Time()), IntegrityCheck: string(check), Choice: plan.Choice,
		}
		for _, s := range plan.Segments {
			j.Segments = append(j.Segments, segmentJSON{litestream.FormatIndex(s.Index), litestream.FormatOffset(s.Offset), s.Size, formatTime(s.CreatedAt)})
		}
		for _, f := range plan.Fallbacks {
			j.Fallbacks = append(j.Fallbacks, dryRunFallbackJS{f.Replica.Name, f.Replica.Client.Type(), f.Reach(), f.Size()})
		}
		return writeJSON(w, j)
	}
	tw := newTable(w)
	fmt.Fprintf(tw, "dry run: nothing written\n")
	fmt.Fprintf(tw, "output:\t%s\n", out)
	fmt.Fprintf(tw, "replica:\t%s (%s)\n", plan.Replica.Name, plan.Replica.Client.Type())
	fmt.Fprintf(tw, "generation:\t%s\n", plan.Generation)
	fmt.Fprintf(tw, "snapshot:\t%s, %d bytes, %s\n", litestream.SnapshotName(plan.Snapshot.Index), plan.Snapshot.Size, formatTime(plan.Snapshot.CreatedAt))
	fmt.Fprintf(tw, "segments:\t%d, %d bytes\n", len(plan.Segments), segBytes)
	// One line per index: a day's history is tens of thousands of segments.
	for i := 0; i < len(plan.Segments); {
		j, n := i, int64(0)
		for ; j < len(plan.Segments) && plan.Segments[j].Index == plan.Segments[i].Index; j++ {
			n += plan.Segments[j].Size
		}
		first, last := plan.Segments[i], plan.Segments[j-1]
		fmt.Fprintf(tw, "\tindex %s: %d, %d bytes, %s to %s\n", litestream.FormatIndex(first.Index), j-i, n,
			litestream.SegmentName(first.Index, first.Offset), litestream.SegmentName(last.Index, last.Offset))
		i = j
	}
	fmt.Fprintf(tw, "position:\t%s (reaches %s)\n", plan.Target, plan.Reach())
	fmt.Fprintf(tw, "time:\t%s\n", formatTime(plan.Time()))
	fmt.Fprintf(tw, "download:\t%d stored bytes\n", plan.Size())
	fmt.Fprintf(tw, "check:\t%s\n", check)
	if plan.Choice != "" {
		fmt.Fprintf(tw, "chose:\t%s\n", plan.Choice)
	}
	for _, f := range plan.Fallbacks {
		fmt.Fprintf(tw, "fallback:\t%s (%s), reaches %s, %d stored bytes\n", f.Replica.Name, f.Replica.Client.Type(), f.Reach(), f.Size())
	}
	return tw.Flush()
}
