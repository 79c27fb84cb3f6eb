package litestream

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// What restore trusts of a directory replica (restore_files_test.go): only
// regular files, in real directories, under the names they were listed by.
//   - A snapshot or segment name that is not a regular file (a FIFO, a
//     symlink, a directory) fails the replica, naming it: the file client's
//     listing skips such entries, and a plan without them may quietly end
//     earlier than the replica does.
//   - A symlink where a directory of the layout belongs (generations/, a
//     generation, snapshots/, wal/) is not followed: it fails the replica.
//   - A name padded past 8 hex digits is opened by that name, not by the
//     canonical one the position would give; two names of one position fail.

// rootedClient is a replica client over a local directory (file).
type rootedClient interface {
	Type() string
	Root() string
}

// localRoot returns the directory of a file replica, or "".
func localRoot(r *Replica) string {
	if c, ok := r.Client.(rootedClient); ok && c.Type() == "file" {
		return c.Root()
	}
	return ""
}

// listedNames maps the positions of a generation's files to the names
// they were listed under, where those differ from the canonical names.
type listedNames struct {
	snapshots map[int]string
	segments  map[Pos]string
}

// errUntrusted is a directory replica holding what is not a regular file
// of its layout; it names every such entry.
type errUntrusted struct{ problems []string }

func (e errUntrusted) Error() string {
	s := strings.Join(e.problems[:min(len(e.problems), 5)], "; ")
	if len(e.problems) > 5 {
		s += fmt.Sprintf("; and %d more", len(e.problems)-5)
	}
	return s + ": restore reads only regular files in real directories; remove or replace these"
}

// auditGenerationsDir checks the generations directory of a directory
// replica and the entries in it named as generations.
func auditGenerationsDir(root string) error {
	var problems []string
	dir := filepath.Join(root, GenerationsDir())
	if p := notRealDir(dir); p != "" {
		return errUntrusted{[]string{p}}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil // the client's listing reports it
	}
	for _, e := range ents {
		if IsGeneration(e.Name()) && !e.IsDir() {
			problems = append(problems, describeEntry(filepath.Join(dir, e.Name()), e.Type(), "a generation directory"))
		}
	}
	if len(problems) > 0 {
		return errUntrusted{problems}
	}
	return nil
}

// auditGeneration checks one generation of a directory replica and
// returns the names its files were listed under.
func auditGeneration(root, gen string) (listedNames, error) {
	names := listedNames{snapshots: map[int]string{}, segments: map[Pos]string{}}
	var problems []string
	genDir := filepath.Join(root, filepath.FromSlash(GenerationDir(gen)))
	if p := notRealDir(genDir); p != "" {
		return names, errUntrusted{[]string{p}}
	}
	check := func(rel string, parse func(name string) (key any, canonical string, ok bool)) {
		dir := filepath.Join(root, filepath.FromSlash(rel))
		if p := notRealDir(dir); p != "" {
			problems = append(problems, p)
			return
		}
		ents, err := os.ReadDir(dir) // sorted by name
		if err != nil {
			return // missing, or the client's listing reports it
		}
		// Only a padded name can share a position with another name: of
		// 100,000 segments, only those are kept (by canonical name).
		padded := map[string]string{}
		for _, e := range ents {
			key, canonical, ok := parse(e.Name())
			if !ok {
				continue
			}
			p := filepath.Join(dir, e.Name())
			if !e.Type().IsRegular() {
				problems = append(problems, describeEntry(p, e.Type(), "a regular file"))
				continue
			}
			if e.Name() == canonical {
				continue
			}
			if other, dup := padded[canonical]; dup {
				problems = append(problems, fmt.Sprintf("%s and %s name the same position", filepath.Join(dir, other), e.Name()))
				continue
			}
			padded[canonical] = e.Name()
			switch k := key.(type) {
			case int:
				names.snapshots[k] = e.Name()
			case Pos:
				names.segments[k] = e.Name()
			}
		}
		for canonical, name := range padded {
			if _, found := slices.BinarySearchFunc(ents, canonical, func(e fs.DirEntry, n string) int { return strings.Compare(e.Name(), n) }); found {
				problems = append(problems, fmt.Sprintf("%s and %s name the same position", filepath.Join(dir, canonical), name))
			}
		}
	}
	check(SnapshotsDir(gen), func(name string) (any, string, bool) {
		i, err := ParseSnapshotName(name)
		return i, SnapshotName(i), err == nil
	})
	check(SegmentsDir(gen), func(name string) (any, string, bool) {
		i, off, err := ParseSegmentName(name)
		return Pos{Generation: gen, Index: i, Offset: off}, SegmentName(i, off), err == nil
	})
	if len(problems) > 0 {
		return names, errUntrusted{problems}
	}
	return names, nil
}

// notRealDir describes dir when it is a symlink or not a directory, and
// returns "" when it is a directory or missing.
func notRealDir(dir string) string {
	fi, err := os.Lstat(dir)
	if err != nil || fi.IsDir() {
		return ""
	}
	return describeEntry(dir, fi.Mode().Type(), "a directory")
}

// describeEntry says what the entry at p is instead of want.
func describeEntry(p string, t fs.FileMode, want string) string {
	kind := "not " + want
	switch {
	case t&fs.ModeSymlink != 0:
		kind = "a symbolic link, not followed"
	case t&fs.ModeNamedPipe != 0:
		kind = "a named pipe (FIFO)"
	case t&fs.ModeSocket != 0:
		kind = "a socket"
	case t&fs.ModeDevice != 0:
		kind = "a device"
	case t.IsDir():
		kind = "a directory"
	}
	return fmt.Sprintf("%s is %s, not %s", p, kind, want)
}

// snapshotName and segmentName return the names the plan's files were
// listed under.
func (p *RestorePlan) snapshotName() string {
	if n, ok := p.listed.snapshots[p.Snapshot.Index]; ok {
		return n
	}
	return SnapshotName(p.Snapshot.Index)
}

func (p *RestorePlan) segmentName(s SegmentInfo) string {
	if n, ok := p.listed.segments[s.Pos()]; ok {
		return n
	}
	return SegmentName(s.Index, s.Offset)
}

// openSnapshot and openSegment open the stored bytes of the plan's files:
// through the client, or, for a name listed padded past 8 digits, by that
// name in the replica's directory.
func (p *RestorePlan) openSnapshot(ctx context.Context) (io.ReadCloser, error) {
	if n, ok := p.listed.snapshots[p.Snapshot.Index]; ok {
		return openListed(filepath.Join(localRoot(p.Replica), filepath.FromSlash(SnapshotsDir(p.Generation)), n))
	}
	return p.Replica.Client.OpenSnapshot(ctx, p.Generation, p.Snapshot.Index)
}

func (p *RestorePlan) openSegment(ctx context.Context, s SegmentInfo) (io.ReadCloser, error) {
	if n, ok := p.listed.segments[s.Pos()]; ok {
		return openListed(filepath.Join(localRoot(p.Replica), filepath.FromSlash(SegmentsDir(p.Generation)), n))
	}
	return p.Replica.Client.OpenSegment(ctx, s.Pos())
}

// openListed opens a regular file of a directory replica, refusing
// anything else (checked before opening: a FIFO would block the open).
func openListed(path string) (io.ReadCloser, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, errNoRetry{errors.New(describeEntry(path, fi.Mode().Type(), "a regular file"))}
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	if fi2, err := f.Stat(); err != nil || !os.SameFile(fi, fi2) {
		f.Close()
		return nil, errNoRetry{fmt.Errorf("%s changed while it was opened", path)}
	}
	return f, nil
}
