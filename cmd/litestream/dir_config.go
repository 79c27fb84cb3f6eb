package main

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"strings"
)

// A directory entry of the config (dir: instead of path:) stands for every
// database in its directory whose base name matches its pattern. What must
// hold, and where it is kept:
//  1. Each database replicates under its path relative to dir, appended to
//     every replica's path or URL, and only there: a relative path that is
//     not local (.., absolute, empty) is refused (relativeDBPath), so no
//     database writes outside its entry's replica roots.
//  2. No database belongs to two entries: a path entry inside a directory
//     entry, and two directory entries with one dir and pattern, are refused
//     at load (checkDirOverlaps); two entries that overlap otherwise refuse,
//     at runtime, each file that both match (dirMonitor.claimedElsewhere).
//  3. Two directory entries never share a replica root, nor nest: their
//     templates go through checkReplicaDests as path entries' replicas do.
//  4. No database's replica root lies inside another's: a database under a
//     subdirectory whose name matches the pattern (a/b.db/c.db beside
//     a/b.db) is refused (dirEntryRelPath), since b.db's replica root would
//     hold c.db's.

// normalizeDir checks and expands a directory entry's own keys.
func (db *DBConfig) normalizeDir() error {
	at := atLine(db.Line)
	switch {
	case db.Dir == "":
		return fmt.Errorf("%spattern, recursive and watch belong to a directory entry: give dir: DIRECTORY too, or remove them", at)
	case db.Path != "":
		return fmt.Errorf("%sa database entry has either path (one database) or dir (a directory of databases), not both", at)
	case db.Pattern == "":
		return fmt.Errorf("%sdir %s has no pattern: give the databases' names, such as pattern: \"*.db\"", at, db.Dir)
	case strings.ContainsRune(db.Pattern, '/') || strings.ContainsRune(db.Pattern, filepath.Separator):
		return fmt.Errorf("%spattern %q matches base names only and cannot hold a slash: use recursive: true for subdirectories", at, db.Pattern)
	case db.MetaPath != "":
		return fmt.Errorf("%smeta-path does not apply to a directory entry: each database of dir %s keeps its own default meta directory", at, db.Dir)
	case db.RestoreIfDBNotExists:
		return fmt.Errorf("%srestore-if-db-not-exists does not apply to a directory entry: name each database to restore in its own path entry", at)
	}
	if _, err := path.Match(db.Pattern, ""); err != nil {
		return fmt.Errorf("%spattern %q is not a valid pattern (*, ?, [a-z], \\ to escape): %w", at, db.Pattern, err)
	}
	d, err := expandPath(db.Dir)
	if err != nil {
		return fmt.Errorf("%sdir: %w", at, err)
	}
	db.Dir = d
	return nil
}

// label names an entry in messages: its path, or its directory and pattern.
func (db *DBConfig) label() string {
	if db.Dir == "" {
		return db.Path
	}
	return fmt.Sprintf("directory %s (%s)", db.Dir, db.Pattern)
}

// matchesName reports whether a base name is one of the entry's databases
// by name: it matches the pattern and is none of SQLite's own files.
func (db *DBConfig) matchesName(base string) bool {
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if strings.HasSuffix(base, suffix) {
			return false
		}
	}
	ok, err := path.Match(db.Pattern, base)
	return err == nil && ok
}

// covers reports whether the directory entry's walk reaches p, a clean
// absolute path, and its name matches: p lies in dir (or, with recursive,
// below it, through no meta directory) and its base name matches.
func (db *DBConfig) covers(p string) bool {
	rel, err := dirEntryRelPath(db, p)
	return err == nil && rel != ""
}

// dirEntryRelPath returns p's path relative to the entry's dir, slash
// separated, when the entry covers p; "" when it does not (another
// directory, too deep without recursive, a name that does not match), and
// an error when it would but must be refused (invariants 1 and 4).
func dirEntryRelPath(db *DBConfig, p string) (string, error) {
	rel, err := filepath.Rel(db.Dir, p)
	if err != nil || rel == "." || strings.HasPrefix(rel, ".."+string(filepath.Separator)) || rel == ".." {
		return "", nil
	}
	dirs := strings.Split(filepath.ToSlash(filepath.Dir(rel)), "/")
	if dirs[0] == "." {
		dirs = nil
	}
	if len(dirs) > 0 && !db.Recursive {
		return "", nil
	}
	if !db.matchesName(filepath.Base(rel)) {
		return "", nil
	}
	for _, d := range dirs {
		if isMetaDirName(d) {
			return "", nil
		}
	}
	if _, err := relativeDBPath(rel); err != nil {
		return "", err
	}
	for _, d := range dirs {
		if db.matchesName(d) {
			return "", fmt.Errorf("database %s lies under a directory named %s, which the pattern %q matches: its replica path would lie inside the replica path of a database of that name; rename the directory", p, d, db.Pattern)
		}
	}
	return filepath.ToSlash(rel), nil
}

// isMetaDirName reports whether a directory name is litestream's meta
// directory of a database (.NAME-litestream).
func isMetaDirName(name string) bool {
	return strings.HasPrefix(name, ".") && strings.HasSuffix(name, "-litestream") && len(name) > len(".-litestream")
}

// relativeDBPath checks a database's path relative to its entry's dir and
// returns it slash separated: it must be local (no .., not absolute, not
// empty), so that appended to a replica root it stays inside that root.
func relativeDBPath(rel string) (string, error) {
	if !filepath.IsLocal(rel) {
		return "", fmt.Errorf("relative path %q leaves the directory: refused, as its replica path would leave the replica's root", rel)
	}
	slashed := filepath.ToSlash(rel)
	for _, part := range strings.Split(slashed, "/") {
		if part == ".." || part == "." || part == "" {
			return "", fmt.Errorf("relative path %q is not clean: refused", rel)
		}
	}
	return slashed, nil
}

// dbConfigFor returns the path entry that replicates the database at p
// (clean, absolute) for its directory entry: the entry's settings, its
// default meta directory, and each replica's path or URL with p's path
// relative to dir appended.
func (db *DBConfig) dbConfigFor(p string) (*DBConfig, error) {
	rel, err := dirEntryRelPath(db, p)
	if err != nil {
		return nil, err
	}
	if rel == "" {
		return nil, fmt.Errorf("database %s is not one of %s", p, db.label())
	}
	out := *db
	out.Path, out.Dir, out.Pattern, out.Recursive, out.Watch = p, "", "", false, false
	out.Replicas = make([]*ReplicaConfig, len(db.Replicas))
	for i, r := range db.Replicas {
		if out.Replicas[i], err = replicaUnder(r, rel); err != nil {
			return nil, fmt.Errorf("%sdatabase %s: %w", atLine(r.Line), p, err)
		}
	}
	return &out, nil
}

// replicaUnder returns a copy of a normalized replica config whose root is
// rel (slash separated, local) below the template's.
func replicaUnder(r *ReplicaConfig, rel string) (*ReplicaConfig, error) {
	if _, err := relativeDBPath(filepath.FromSlash(rel)); err != nil {
		return nil, err
	}
	c := *r
	if r.Age != nil {
		age := *r.Age
		c.Age = &age
	}
	switch {
	case r.Type == "file":
		c.Path = filepath.Join(r.Path, filepath.FromSlash(rel))
	case r.URL != "":
		u, err := url.Parse(r.URL)
		if err != nil {
			return nil, fmt.Errorf("replica %s: url: %w", r.Name, errors.Unwrap(err))
		}
		switch {
		case u.Path == "" || u.Path == "/":
			u.Path = "/" + rel
		default:
			u.Path = strings.TrimSuffix(u.Path, "/") + "/" + rel
		}
		u.RawPath = ""
		c.URL = u.String()
	default:
		c.Path = joinKey(r.Path, rel)
	}
	return &c, nil
}

// joinKey appends rel to an object-store key prefix or SFTP path, keeping
// a leading slash if the prefix has one.
func joinKey(prefix, rel string) string {
	if strings.Trim(prefix, "/") == "" {
		if strings.HasPrefix(prefix, "/") {
			return "/" + rel
		}
		return rel
	}
	return strings.TrimSuffix(prefix, "/") + "/" + rel
}

// checkDirOverlaps refuses a path entry that a directory entry covers, and
// two directory entries with one dir and one pattern whose walks meet
// (invariant 2); the error names both lines.
func checkDirOverlaps(paths, dirs []*DBConfig) error {
	for _, d := range dirs {
		for _, p := range paths {
			if d.covers(p.Path) {
				return fmt.Errorf("%sdatabase %s is also one of the databases of %s (line %d): list it in one entry only", atLine(p.Line), p.Path, d.label(), d.Line)
			}
		}
	}
	for i, a := range dirs {
		for _, b := range dirs[:i] {
			if a.Pattern == b.Pattern && (a.Dir == b.Dir || b.Recursive && within(b.Dir, a.Dir) || a.Recursive && within(a.Dir, b.Dir)) {
				return fmt.Errorf("%s%s matches the same databases as %s (line %d): keep one entry", atLine(a.Line), a.label(), b.label(), b.Line)
			}
		}
	}
	return nil
}

// within reports whether directory inner lies in or below outer.
func within(outer, inner string) bool {
	rel, err := filepath.Rel(outer, inner)
	return err == nil && filepath.IsLocal(rel) || rel == "."
}
