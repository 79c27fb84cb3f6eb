package main

import (
	"context"
	"fmt"
	"io"
)

// VersionCommand prints the version stamped at build time.
type VersionCommand struct{ stdout io.Writer }

// Run prints the version.
func (c *VersionCommand) Run(ctx context.Context, args []string) error {
	fs := newFlagSet("version", "", "Prints the version of this build.")
	if err := fs.parse(args, c.stdout); err != nil {
		return err
	}
	fmt.Fprintln(c.stdout, Version)
	return nil
}
