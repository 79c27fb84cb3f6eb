// Command litestream replicates SQLite databases to replicas (a directory or
// S3-compatible object storage) and restores them. It is compatible with the
// replica layout, config file and command line of Litestream v0.3.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// command is one subcommand: it parses its own flags from args.
type command interface {
	Run(ctx context.Context, args []string) error
}

// commands lists the subcommands with a one-line summary each.
var commandList = []struct {
	name, summary string
	new           func(stdout, stderr io.Writer) command
}{
	{"replicate", "replicate databases continuously", func(o, e io.Writer) command { return &ReplicateCommand{stdout: o, stderr: e} }},
	{"restore", "restore a database from a replica", func(o, e io.Writer) command { return &RestoreCommand{stdout: o, stderr: e} }},
	{"databases", "list the databases in the config file", func(o, e io.Writer) command { return &DatabasesCommand{stdout: o, stderr: e} }},
	{"generations", "list the generations of a database's replicas", func(o, e io.Writer) command { return &GenerationsCommand{stdout: o, stderr: e} }},
	{"snapshots", "list the snapshots of a database's replicas", func(o, e io.Writer) command { return &SnapshotsCommand{stdout: o, stderr: e} }},
	{"wal", "list the WAL segments of a database's replicas", func(o, e io.Writer) command { return &WALCommand{stdout: o, stderr: e} }},
	{"version", "print the version", func(o, e io.Writer) command { return &VersionCommand{stdout: o} }},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run executes the command line and returns the exit code: 0 on success
// (and for -h), 1 on any error, reported as one line on stderr. With no
// command at all it prints the usage to stderr and returns 1, so that a
// script that forgot its command fails.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		printUsage(stderr)
		return 1
	}
	switch args[0] {
	case "help", "-h", "--help", "-help":
		if len(args) > 1 {
			return run(ctx, []string{args[1], "-h"}, stdout, stderr)
		}
		printUsage(stdout)
		return 0
	case "-version", "--version":
		args = append([]string{"version"}, args[1:]...)
	}
	for _, c := range commandList {
		if c.name == args[0] {
			err := c.new(stdout, stderr).Run(ctx, args[1:])
			switch {
			case err == nil, errors.Is(err, flag.ErrHelp):
				return 0
			case errors.Is(err, errExitCode):
				var ec exitCodeError
				errors.As(err, &ec)
				return ec.code
			default:
				fmt.Fprintln(stderr, "litestream "+args[0]+": "+oneLine(err.Error()))
				return 1
			}
		}
	}
	if strings.HasPrefix(args[0], "-") {
		fmt.Fprintf(stderr, "litestream: unknown flag %q: flags follow the command (litestream replicate -config PATH); run 'litestream help' for the commands\n", args[0])
		return 1
	}
	fmt.Fprintf(stderr, "litestream: unknown command %q%s; run 'litestream help' for the list\n", args[0], suggestCommand(args[0]))
	return 1
}

// suggestCommand proposes the command closest to a mistyped one: within two
// edits, or the only one it is a prefix of.
func suggestCommand(name string) string {
	best, bestD := "", 3
	var prefixOf []string
	for _, c := range commandList {
		if d := editDistance(name, c.name); d < bestD {
			best, bestD = c.name, d
		}
		if len(name) >= 2 && strings.HasPrefix(c.name, name) {
			prefixOf = append(prefixOf, c.name)
		}
	}
	if best == "" && len(prefixOf) == 1 {
		best = prefixOf[0]
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func printUsage(w io.Writer) {
	fmt.Fprintln(w, `litestream replicates SQLite databases to a directory or S3 and restores them.

Usage:

	litestream <command> [arguments]

Commands:`)
	fmt.Fprintln(w)
	for _, c := range commandList {
		fmt.Fprintf(w, "	%-12s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, `
Run 'litestream <command> -h' for a command's flags, and 'litestream version'
(or -version) for the version. With no command, litestream prints this text
to stderr and exits 1.
The config file is -config PATH, else $LITESTREAM_CONFIG, else /etc/litestream.yml.`)
}

// oneLine folds an error message onto one line.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// errExitCode marks an error that carries a process exit code (-exec).
var errExitCode = errors.New("exit code")

type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
func (e exitCodeError) Unwrap() error { return errExitCode }

// commandFlags is a command's flag set with its synopsis, so that -h prints
// a full usage text and a bad flag gives one error line.
type commandFlags struct {
	*flag.FlagSet
	name, synopsis, help string
}

// newFlagSet returns a flag set that reports errors instead of exiting.
// help is a paragraph that explains the command.
func newFlagSet(name, synopsis, help string) *commandFlags {
	fs := flag.NewFlagSet("litestream "+name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &commandFlags{FlagSet: fs, name: name, synopsis: synopsis, help: help}
}

// parse parses args; -h prints the usage to w and returns flag.ErrHelp.
func (f *commandFlags) parse(args []string, w io.Writer) error {
	err := f.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprintf(w, "Usage: litestream %s %s\n\n%s\n", f.name, f.synopsis, strings.TrimSpace(f.help))
		if hasFlags(f.FlagSet) {
			fmt.Fprintln(w, "\nFlags:")
			f.SetOutput(w)
			f.PrintDefaults()
			f.SetOutput(io.Discard)
		}
		return err
	} else if err != nil {
		return fmt.Errorf("%v (run 'litestream %s -h' for usage)", err, f.name)
	}
	return nil
}

func hasFlags(fs *flag.FlagSet) bool {
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	return n > 0
}
