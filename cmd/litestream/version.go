package main

import (
	"context"
	"fmt"
	"io"
	"runtime/debug"
)

// Version is the release this binary is, set at build time with
// -ldflags "-X main.Version=v1.2.3". When it is unset, version() reads the
// build info instead, so that a plain go build still names its commit.
var Version string

// version returns Version; else the main module's version that the go
// command stamped (a tag, or a pseudo-version naming the commit, "+dirty"
// when the tree had changes); else the commit from the VCS build settings;
// else "(development build)" (built with -buildvcs=false or outside git).
func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(development build)"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	var rev string
	var modified bool
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	if rev == "" {
		return "(development build)"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	v := "devel-" + rev
	if modified {
		v += "+dirty"
	}
	return v
}

// VersionCommand prints the version.
type VersionCommand struct{ stdout io.Writer }

// Run prints the version.
func (c *VersionCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("version", "", "Prints the version of this build: the release it was built as, else the commit\nit was built from (with +dirty when the tree had changes).")
	if err := fs.parse(args, c.stdout); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, version())
	return nil
}
