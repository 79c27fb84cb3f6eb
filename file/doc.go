// Package file is the directory replica backend: snapshots and WAL segments
// stored as files under a local directory, in the layout of Litestream v0.3
// (SPEC section 1), so that v0.3 restores what this package writes and the
// other way round.
//
// Every write goes to a temporary file ending in ".tmp" in the target
// directory, is fsynced, renamed into place and its directory fsynced: a
// reader never sees half a file and a crash leaves either the old state or
// the new one. Listings ignore every name that is not part of the layout,
// including such temporary files. Timestamps are file modification times.
// Every method refuses a generation or position that
// litestream.ValidateGeneration or Pos.Validate rejects before it builds a
// path, so no name reaches outside the replica directory.
package file
