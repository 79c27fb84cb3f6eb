package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/litestream-go/litestream"
)

// newTable returns a writer that aligns tab-separated columns.
func newTable(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 8, 2, ' ', 0) }

func formatTime(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// listArgs parses the flags shared by the listing commands.
func listArgs(name, synopsis, help string, args []string, stdout io.Writer, withGeneration bool) ([]*litestream.Replica, string, error) {
	fs := newFlagSet(name, synopsis, help)
	cf := registerConfigFlags(fs)
	replicaName := fs.String("replica", "", "only this replica")
	var generation *string
	if withGeneration {
		generation = fs.String("generation", "", "only this generation")
	}
	if err := fs.parse(args, stdout); err != nil {
		return nil, "", err
	}
	if fs.NArg() != 1 {
		return nil, "", errors.New("give exactly one database path or replica URL")
	}
	replicas, _, err := resolveReplicas(cf, fs.Arg(0))
	if err != nil {
		return nil, "", err
	}
	if *replicaName != "" {
		var keep []*litestream.Replica
		for _, r := range replicas {
			if r.Name == *replicaName {
				keep = append(keep, r)
			}
		}
		if len(keep) == 0 {
			return nil, "", fmt.Errorf("no replica named %q", *replicaName)
		}
		replicas = keep
	}
	gen := ""
	if generation != nil {
		gen = *generation
		if gen != "" && !litestream.IsGeneration(gen) {
			return nil, "", fmt.Errorf("-generation %q is not a generation name (16 hex characters)", gen)
		}
	}
	return replicas, gen, nil
}

// generationsOf lists the generations to show: one, or all.
func generationsOf(ctx context.Context, r *litestream.Replica, only string) ([]string, error) {
	if only != "" {
		return []string{only}, nil
	}
	gens, err := r.Client.Generations(ctx)
	if err != nil {
		return nil, fmt.Errorf("replica %s: list generations: %w", r.Name, err)
	}
	return gens, nil
}

// GenerationsCommand lists generations.
type GenerationsCommand struct{ stdout, stderr io.Writer }

// Run prints name, generation, lag, start, end.
func (c *GenerationsCommand) Run(ctx context.Context, args []string) error {
	replicas, _, err := listArgs("generations", "[flags] DB_PATH|REPLICA_URL",
		"Lists the generations of each replica: when each started and was last updated, and how far behind now that is (lag).", args, c.stdout, false)
	if err != nil {
		return err
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "name\tgeneration\tlag\tstart\tend")
	for _, r := range replicas {
		infos, err := litestream.ListGenerations(ctx, r)
		if err != nil {
			return err
		}
		for _, g := range infos {
			lag := time.Since(g.End).Truncate(time.Second)
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Name, g.Generation, lag, formatTime(g.Start), formatTime(g.End))
		}
	}
	return tw.Flush()
}

// SnapshotsCommand lists snapshots.
type SnapshotsCommand struct{ stdout, stderr io.Writer }

// Run prints replica, generation, index, size, created.
func (c *SnapshotsCommand) Run(ctx context.Context, args []string) error {
	replicas, _, err := listArgs("snapshots", "[flags] DB_PATH|REPLICA_URL",
		"Lists the snapshots of each replica. Indexes are hex; size is the stored (compressed) size in bytes.", args, c.stdout, false)
	if err != nil {
		return err
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "replica\tgeneration\tindex\tsize\tcreated")
	for _, r := range replicas {
		gens, err := generationsOf(ctx, r, "")
		if err != nil {
			return err
		}
		for _, gen := range gens {
			snaps, err := r.Client.Snapshots(ctx, gen)
			if err != nil {
				return fmt.Errorf("replica %s: %w", r.Name, err)
			}
			for _, s := range snaps {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", r.Name, gen, litestream.FormatIndex(s.Index), s.Size, formatTime(s.CreatedAt))
			}
		}
	}
	return tw.Flush()
}

// WALCommand lists WAL segments.
type WALCommand struct{ stdout, stderr io.Writer }

// Run prints replica, generation, index, offset, size, created.
func (c *WALCommand) Run(ctx context.Context, args []string) error {
	replicas, gen, err := listArgs("wal", "[flags] DB_PATH|REPLICA_URL",
		"Lists the WAL segments of each replica. Index and offset are hex; size is the stored (compressed) size in bytes.", args, c.stdout, true)
	if err != nil {
		return err
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "replica\tgeneration\tindex\toffset\tsize\tcreated")
	for _, r := range replicas {
		gens, err := generationsOf(ctx, r, gen)
		if err != nil {
			return err
		}
		for _, g := range gens {
			segs, err := r.Client.Segments(ctx, g)
			if err != nil {
				return fmt.Errorf("replica %s: %w", r.Name, err)
			}
			for _, s := range segs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", r.Name, g, litestream.FormatIndex(s.Index), litestream.FormatOffset(s.Offset), s.Size, formatTime(s.CreatedAt))
			}
		}
	}
	return tw.Flush()
}

// DatabasesCommand lists the config file's databases.
type DatabasesCommand struct{ stdout, stderr io.Writer }

// Run prints path, replicas.
func (c *DatabasesCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("databases", "[flags]", "Lists the databases of the config file and the names of their replicas.")
	cf := registerConfigFlags(fs)
	if err := fs.parse(args, c.stdout); err != nil {
		return err
	}
	cfg, err := cf.load()
	if err != nil {
		return err
	}
	tw := newTable(c.stdout)
	fmt.Fprintln(tw, "path\treplicas")
	for _, db := range cfg.DBs {
		names := ""
		for i, r := range db.Replicas {
			if i > 0 {
				names += ","
			}
			names += r.Name
		}
		fmt.Fprintf(tw, "%s\t%s\n", db.Path, names)
	}
	return tw.Flush()
}
