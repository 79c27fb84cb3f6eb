package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/litestream-go/litestream"
)

// newTable returns a writer that aligns tab-separated columns.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0) }

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// writeJSON writes v as indented JSON and a newline.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// jsonHelp is the -json flag's text of the listing commands.
const jsonHelp = "print a JSON array of objects, one per row, for scripts (indexes and offsets as hex strings, times RFC 3339, sizes in bytes)"

// listRow is one row of a listing: its table line (tab-separated) and
// its JSON object.
type listRow struct {
	text string
	obj  any
}

// listArgs parses the flags shared by the listing commands.
func listArgs(name, synopsis, help string, args []string, stdout io.Writer, withGeneration bool) ([]*litestream.Replica, string, bool, error) {
	fs := newFlagSet(name, synopsis, help)
	cf := registerConfigFlags(fs)
	replicaName := fs.String("replica", "", "only this replica")
	asJSON := fs.Bool("json", false, jsonHelp)
	var generation *string
	if withGeneration {
		generation = fs.String("generation", "", "only this generation")
	}
	if err := fs.parse(args, stdout); err != nil {
		return nil, "", false, err
	}
	if fs.NArg() != 1 {
		return nil, "", false, errors.New("give exactly one database path or replica URL")
	}
	gen := ""
	if generation != nil {
		gen = *generation
		if gen != "" && !litestream.IsGeneration(gen) {
			return nil, "", false, fmt.Errorf("-generation %q is not a generation name (16 hex characters)", gen)
		}
	}
	replicas, _, err := resolveArg(cf, fs.Arg(0))
	if err != nil {
		return nil, "", false, err
	}
	if *replicaName != "" {
		i := slices.IndexFunc(replicas, func(r *litestream.Replica) bool { return r.Name == *replicaName })
		if i < 0 {
			return nil, "", false, fmt.Errorf("no replica named %q (replicas: %s)", *replicaName, replicaNameList(replicas))
		}
		replicas = replicas[i : i+1]
	}
	return replicas, gen, *asJSON, nil
}

func replicaNameList(rs []*litestream.Replica) string {
	names := make([]string, len(rs))
	for i, r := range rs {
		names[i] = r.Name
	}
	return strings.Join(names, ", ")
}

// resolveArg is resolveReplicas, and also takes an empty directory as an
// empty replica: one that no sync has reached yet has no generations/, and
// a database path is never a directory.
func resolveArg(cf configFlags, arg string) ([]*litestream.Replica, *DBConfig, error) {
	if ents, err := os.ReadDir(arg); err == nil && len(ents) == 0 {
		abs, err := filepath.Abs(arg)
		if err != nil {
			return nil, nil, err
		}
		arg = (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs)}).String()
	}
	if replicas, dbc, ok, err := resolveDirEntryArg(cf, arg); ok || err != nil {
		return replicas, dbc, err
	}
	return resolveReplicas(cf, arg)
}

// resolveDirEntryArg resolves a database path that no path entry of the
// config lists but a directory entry covers: its replicas are the entry's,
// under the database's relative path. The file need not exist (a removed
// database restores by its path). ok is false when no directory entry
// covers arg, or arg is no database path; resolveReplicas then decides.
func resolveDirEntryArg(cf configFlags, arg string) ([]*litestream.Replica, *DBConfig, bool, error) {
	if !isPlainPath(arg) {
		return nil, nil, false, nil
	}
	if fi, err := os.Stat(filepath.Join(arg, "generations")); err == nil && fi.IsDir() {
		return nil, nil, false, nil
	}
	cfg, err := cf.load()
	if err != nil || len(cfg.Dirs) == 0 || cfg.DBConfig(arg) != nil {
		return nil, nil, false, nil
	}
	p, err := expandPath(arg)
	if err != nil {
		return nil, nil, false, nil
	}
	var owner *DBConfig
	for _, d := range cfg.Dirs {
		rel, err := dirEntryRelPath(d, p)
		if err != nil {
			return nil, nil, true, fmt.Errorf("%s%w", atLine(d.Line), err)
		}
		if rel == "" {
			continue
		}
		if owner != nil {
			return nil, nil, true, fmt.Errorf("database %s is one of the databases of line %d (%s) and of line %d (%s): keep it in one entry", p, owner.Line, owner.label(), d.Line, d.label())
		}
		owner = d
	}
	if owner == nil {
		return nil, nil, false, nil
	}
	dbc, err := owner.dbConfigFor(p)
	if err != nil {
		return nil, nil, true, err
	}
	db, err := newDBFromConfig(dbc, slog.Default(), nil)
	if err != nil {
		return nil, nil, true, err
	}
	if len(db.Replicas) == 0 {
		return nil, nil, true, fmt.Errorf("%sdatabase %s: its directory entry has no replicas", atLine(owner.Line), p)
	}
	return db.Replicas, dbc, true, nil
}

// listEach runs list on every replica, in order, and writes the table of
// the rows of those that answered to stdout (with asJSON, a JSON array of
// the rows' objects). Each replica that fails gets
// a line of its own on stderr, in the form of a command's error line, and
// the others are still listed; only when none answered does it fail, with
// exit status 1 and nothing on stdout. list returns tab-separated rows and
// the generations the replica holds (for check).
//
// check, if set, sees the generations of the replicas that answered and
// may fail the listing, which then writes nothing to stdout.
func listEach(cmd string, stdout, stderr io.Writer, asJSON bool, header string, replicas []*litestream.Replica,
	list func(r *litestream.Replica) (rows []listRow, gens []string, err error), check func(gens []string) error) error {
	var rows []listRow
	var gens []string
	answered := 0
	for _, r := range replicas {
		rs, gs, err := list(r)
		if err != nil {
			fmt.Fprintln(stderr, "litestream "+cmd+": "+oneLine(err.Error()))
			continue
		}
		answered++
		rows, gens = append(rows, rs...), append(gens, gs...)
	}
	if answered == 0 {
		return exitCodeError{code: 1}
	}
	if check != nil {
		slices.Sort(gens)
		if err := check(slices.Compact(gens)); err != nil {
			return err
		}
	}
	if asJSON {
		objs := make([]any, len(rows))
		for i, row := range rows {
			objs[i] = row.obj
		}
		return writeJSON(stdout, objs)
	}
	tw := newTable(stdout)
	fmt.Fprintln(tw, header)
	for _, row := range rows {
		fmt.Fprintln(tw, row.text)
	}
	return tw.Flush()
}

// generationsOf returns the replica's generations, and of them those to
// list: only, if the replica holds it, or all.
func generationsOf(ctx context.Context, r *litestream.Replica, only string) (all, listed []string, err error) {
	all, err = r.Client.Generations(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("replica %s: %w", r.Name, err) // the client's error names the listing
	}
	if only == "" {
		return all, all, nil
	}
	if slices.Contains(all, only) {
		return all, []string{only}, nil
	}
	return all, nil, nil
}

const generationsHelp = `
Lists the generations of each replica: when each started and was last
updated, and how far behind now that is (lag). A replica that cannot be read
gets an error line on stderr and the others are still listed; the exit
status is 1 only when none could be read. With -json, the rows are a JSON
array of objects (lag also in seconds, as lag_seconds).

Examples:
	litestream generations /var/lib/app.db
	litestream generations -replica s3 /var/lib/app.db
	litestream generations s3://my-bucket/app
	litestream generations -json /var/lib/app.db
`

// GenerationsCommand lists generations.
type GenerationsCommand struct{ stdout, stderr io.Writer }

// Run prints name, generation, lag, start, end.
func (c *GenerationsCommand) Run(ctx context.Context, args []string) error {
	replicas, _, asJSON, err := listArgs("generations", "[flags] DB_PATH|REPLICA_URL", generationsHelp, args, c.stdout, false)
	if err != nil {
		return err
	}
	type generationJSON struct {
		Replica    string  `json:"replica"`
		Generation string  `json:"generation"`
		Lag        string  `json:"lag"`
		LagSeconds float64 `json:"lag_seconds"`
		Start      string  `json:"start"`
		End        string  `json:"end"`
	}
	return listEach("generations", c.stdout, c.stderr, asJSON, "name\tgeneration\tlag\tstart\tend", replicas,
		func(r *litestream.Replica) (rows []listRow, _ []string, err error) {
			infos, err := litestream.ListGenerations(ctx, r)
			if err != nil {
				return nil, nil, err
			}
			for _, g := range infos {
				lag := time.Since(g.End).Truncate(time.Second)
				rows = append(rows, listRow{
					fmt.Sprintf("%s\t%s\t%s\t%s\t%s", r.Name, g.Generation, lag, formatTime(g.Start), formatTime(g.End)),
					generationJSON{r.Name, g.Generation, lag.String(), lag.Seconds(), formatTime(g.Start), formatTime(g.End)},
				})
			}
			return rows, nil, nil
		}, nil)
}

const snapshotsHelp = `
Lists the snapshots of each replica. Indexes are hex; size is the stored
(compressed) size in bytes. A replica that cannot be read gets an error line
on stderr and the others are still listed; the exit status is 1 only when
none could be read. With -json, the rows are a JSON array of objects, the
index a hex string as in the table.

Examples:
	litestream snapshots /var/lib/app.db
	litestream snapshots -replica s3 /var/lib/app.db
	litestream snapshots /backups/app
	litestream snapshots -json /var/lib/app.db
`

// SnapshotsCommand lists snapshots.
type SnapshotsCommand struct{ stdout, stderr io.Writer }

// Run prints replica, generation, index, size, created.
func (c *SnapshotsCommand) Run(ctx context.Context, args []string) error {
	replicas, _, asJSON, err := listArgs("snapshots", "[flags] DB_PATH|REPLICA_URL", snapshotsHelp, args, c.stdout, false)
	if err != nil {
		return err
	}
	type snapshotRowJSON struct {
		Replica    string `json:"replica"`
		Generation string `json:"generation"`
		Index      string `json:"index"`
		Size       int64  `json:"size"`
		Created    string `json:"created"`
	}
	return listEach("snapshots", c.stdout, c.stderr, asJSON, "replica\tgeneration\tindex\tsize\tcreated", replicas,
		func(r *litestream.Replica) (rows []listRow, _ []string, err error) {
			_, gens, err := generationsOf(ctx, r, "")
			if err != nil {
				return nil, nil, err
			}
			for _, gen := range gens {
				snaps, err := r.Client.Snapshots(ctx, gen)
				if err != nil {
					return nil, nil, fmt.Errorf("replica %s: %w", r.Name, err)
				}
				for _, s := range snaps {
					rows = append(rows, listRow{
						fmt.Sprintf("%s\t%s\t%s\t%d\t%s", r.Name, gen, litestream.FormatIndex(s.Index), s.Size, formatTime(s.CreatedAt)),
						snapshotRowJSON{r.Name, gen, litestream.FormatIndex(s.Index), s.Size, formatTime(s.CreatedAt)},
					})
				}
			}
			return rows, nil, nil
		}, nil)
}

const walHelp = `
Lists the WAL segments of each replica. Index and offset are hex; size is
the stored (compressed) size in bytes. With -generation, only that
generation, which some replica must hold. A replica that cannot be read gets
an error line on stderr and the others are still listed; the exit status is
1 only when none could be read. With -json, the rows are a JSON array of
objects, index and offset hex strings as in the table.

Examples:
	litestream wal /var/lib/app.db
	litestream wal -replica s3 -generation 0123456789abcdef /var/lib/app.db
	litestream wal s3://my-bucket/app
	litestream wal -json -generation 0123456789abcdef /var/lib/app.db
`

// WALCommand lists WAL segments.
type WALCommand struct{ stdout, stderr io.Writer }

// Run prints replica, generation, index, offset, size, created.
func (c *WALCommand) Run(ctx context.Context, args []string) error {
	replicas, only, asJSON, err := listArgs("wal", "[flags] DB_PATH|REPLICA_URL", walHelp, args, c.stdout, true)
	if err != nil {
		return err
	}
	var check func(gens []string) error
	if only != "" {
		check = func(gens []string) error {
			if slices.Contains(gens, only) {
				return nil
			}
			if len(gens) == 0 {
				return fmt.Errorf("-generation %s: no replica has this generation (there are no generations)", only)
			}
			return fmt.Errorf("-generation %s: no replica has this generation (generations: %s)", only, strings.Join(gens, ", "))
		}
	}
	type segmentRowJSON struct {
		Replica    string `json:"replica"`
		Generation string `json:"generation"`
		Index      string `json:"index"`
		Offset     string `json:"offset"`
		Size       int64  `json:"size"`
		Created    string `json:"created"`
	}
	return listEach("wal", c.stdout, c.stderr, asJSON, "replica\tgeneration\tindex\toffset\tsize\tcreated", replicas,
		func(r *litestream.Replica) (rows []listRow, all []string, err error) {
			all, gens, err := generationsOf(ctx, r, only)
			if err != nil {
				return nil, nil, err
			}
			for _, g := range gens {
				segs, err := r.Client.Segments(ctx, g)
				if err != nil {
					return nil, nil, fmt.Errorf("replica %s: %w", r.Name, err)
				}
				for _, s := range segs {
					idx, off := litestream.FormatIndex(s.Index), litestream.FormatOffset(s.Offset)
					rows = append(rows, listRow{
						fmt.Sprintf("%s\t%s\t%s\t%s\t%d\t%s", r.Name, g, idx, off, s.Size, formatTime(s.CreatedAt)),
						segmentRowJSON{r.Name, g, idx, off, s.Size, formatTime(s.CreatedAt)},
					})
				}
			}
			return rows, all, nil
		}, check)
}

// DatabasesCommand lists the config file's databases.
type DatabasesCommand struct{ stdout, stderr io.Writer }

// Run prints path, replicas: one row per path entry, then one per
// database a directory entry holds now.
func (c *DatabasesCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("databases", "[flags]", "Lists the databases of the config file and the names of their replicas, with\nthe databases each directory entry (dir:) holds now; with -json, as a JSON\narray of {\"path\", \"replicas\"} objects.")
	cf := registerConfigFlags(fs)
	asJSON := fs.Bool("json", false, jsonHelp)
	if err := fs.parse(args, c.stdout); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	dbs := slices.Clone(cfg.DBs)
	for _, d := range cfg.Dirs {
		paths, err := dirEntryMatches(d)
		if err != nil {
			fmt.Fprintf(c.stderr, "litestream databases: %sdir %s: %s\n", atLine(d.Line), d.Dir, oneLine(err.Error()))
			continue
		}
		for _, p := range paths {
			dbc, err := d.dbConfigFor(p)
			if err != nil {
				fmt.Fprintf(c.stderr, "litestream databases: %s%s\n", atLine(d.Line), oneLine(err.Error()))
				continue
			}
			dbs = append(dbs, dbc)
		}
	}
	if *asJSON {
		type databaseJSON struct {
			Path     string   `json:"path"`
			Replicas []string `json:"replicas"`
		}
		out := []databaseJSON{}
		for _, db := range dbs {
			j := databaseJSON{Path: db.Path, Replicas: []string{}}
			for _, r := range db.Replicas {
				j.Replicas = append(j.Replicas, r.Name)
			}
			out = append(out, j)
		}
		return writeJSON(c.stdout, out)
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "path\treplicas")
	for _, db := range dbs {
		names := make([]string, len(db.Replicas))
		for i, r := range db.Replicas {
			names[i] = r.Name
		}
		fmt.Fprintf(tw, "%s\t%s\n", db.Path, strings.Join(names, ","))
	}
	return tw.Flush()
}
