package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/litestream-go/litestream"
)

// A dirMonitor keeps the databases of one directory entry in the dbSet.
// What must hold:
//  1. A database is replicated once its file is a regular file that starts
//     with SQLite's header; an empty or shorter file that may still become
//     one waits, quietly, in pending; anything else is skipped with at most
//     a debug line (classify).
//  2. With watch, every directory the entry covers is watched before it is
//     scanned (scanTree), so a database created in between is seen by the
//     scan or by an event, never by neither.
//  3. A database whose file is gone is taken out of the set before its
//     Close (a last sync, bounded by removeTimeout), so nothing reads a
//     closing database as a live one; run returns only after those Closes.
//  4. Only run's goroutine touches the maps below: no lock.

// sqliteHeader starts every SQLite database file.
var sqliteHeader = []byte("SQLite format 3\x00")

// removeTimeout bounds the last sync of a database whose file was removed.
const removeTimeout = time.Minute

// pendingRecheck is how often files that may still become databases are
// looked at again, while there are any.
const pendingRecheck = time.Second

// dirMissingRecheck is how often a missing dir is looked for, beside the
// watch on its nearest existing ancestor.
const dirMissingRecheck = 5 * time.Second

// dirMonitor finds and follows the databases of one directory entry.
type dirMonitor struct {
	entry  *DBConfig
	others []*DBConfig // the other directory entries (invariant 2 of dir_config.go)
	set    *dbSet
	// open builds, opens and logs a database of the entry; it is called
	// from run only.
	open   func(dbc *DBConfig) (*litestream.DB, error)
	logger *slog.Logger

	dbs     map[string]*litestream.DB // replicated by this entry
	pending map[string]bool           // files that may still become databases
	noted   map[string]string         // path → the last thing said of it, so it is said once
	watched map[string]bool
	closing sync.WaitGroup
}

// newDirMonitor returns a monitor of entry; all is every directory entry.
func newDirMonitor(entry *DBConfig, all []*DBConfig, set *dbSet, open func(*DBConfig) (*litestream.DB, error), logger *slog.Logger) *dirMonitor {
	m := &dirMonitor{entry: entry, set: set, open: open, logger: logger,
		dbs: map[string]*litestream.DB{}, pending: map[string]bool{}, noted: map[string]string{}, watched: map[string]bool{}}
	for _, o := range all {
		if o != entry {
			m.others = append(m.others, o)
		}
	}
	return m
}

// fileClass is what a file under the directory is to the entry.
type fileClass int

const (
	notDatabase fileClass = iota
	maybeDatabase
	isDatabase
)

// classify says whether the file at p is a database (invariant 1). It
// never writes, and reads at most the header's 16 bytes.
func classify(p string) (fileClass, error) {
	fi, err := os.Lstat(p)
	if err != nil {
		return notDatabase, err
	}
	if !fi.Mode().IsRegular() {
		return notDatabase, nil
	}
	f, err := os.Open(p)
	if err != nil {
		return notDatabase, err
	}
	defer f.Close()
	buf := make([]byte, len(sqliteHeader))
	n, err := io.ReadFull(f, buf)
	switch {
	case err == nil:
		if bytes.Equal(buf, sqliteHeader) {
			return isDatabase, nil
		}
		return notDatabase, nil
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		if bytes.HasPrefix(sqliteHeader, buf[:n]) {
			return maybeDatabase, nil
		}
		return notDatabase, nil
	}
	return notDatabase, err
}

// dirEntryMatches returns the databases the entry holds now, by a scan that opens
// nothing but the candidates' first bytes: what `litestream databases`
// lists and what replicate starts with. A missing dir holds none.
func dirEntryMatches(entry *DBConfig) ([]string, error) {
	var out []string
	err := walkEntry(entry, entry.Dir, nil, func(p string) {
		if _, err := dirEntryRelPath(entry, p); err != nil {
			return
		}
		if c, _ := classify(p); c == isDatabase {
			out = append(out, p)
		}
	})
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return out, err
}

// walkEntry walks root (entry.Dir or below it) in lexical order: onDir for
// every directory the entry covers, onFile for every other entry whose
// name matches. Symbolic links below root are not followed; meta
// directories, and subdirectories without recursive, are not entered.
func walkEntry(entry *DBConfig, root string, onDir func(string) error, onFile func(string)) error {
	start := root
	if fi, err := os.Stat(root); err == nil && fi.IsDir() {
		start = root + string(filepath.Separator) // a dir that is a link to a directory is walked
	}
	return filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		p = filepath.Clean(p)
		if err != nil {
			if p == root {
				return err
			}
			return nil // gone meanwhile, or unreadable: the next event says
		}
		if d.IsDir() {
			if p != root && (!entry.Recursive || isMetaDirName(d.Name())) {
				return filepath.SkipDir
			}
			if onDir != nil {
				return onDir(p)
			}
			return nil
		}
		if p != root && entry.matchesName(d.Name()) {
			onFile(p)
		}
		return nil
	})
}

// adopt records a database replicate started before run.
func (m *dirMonitor) adopt(db *litestream.DB) { m.dbs[db.Path()] = db }

// run follows the directory until ctx ends: it waits for dir to exist,
// then, with watch, watches and scans it and follows its events; without
// watch it scans it once. It returns after the Closes of removed databases.
func (m *dirMonitor) run(ctx context.Context) {
	defer m.closing.Wait()
	for ctx.Err() == nil {
		if !m.waitForDir(ctx) {
			return
		}
		if !m.entry.Watch {
			m.scanOnce()
			m.followPending(ctx)
			return
		}
		if !m.watch(ctx) {
			return
		}
		// dir itself was removed: its databases are stopped; wait for it
		// to come back.
	}
}

// waitForDir returns once dir is a directory (true), or ctx ended (false).
// It says so once when dir is missing, and watches its nearest existing
// ancestor meanwhile.
func (m *dirMonitor) waitForDir(ctx context.Context) bool {
	said := false
	for {
		fi, err := os.Stat(m.entry.Dir)
		switch {
		case err == nil && fi.IsDir():
			if said {
				m.logger.Info("directory appeared; replicating its databases", "dir", m.entry.Dir, "line", m.entry.Line)
			}
			return true
		case err == nil:
			if !said {
				m.logger.Error("dir is not a directory; waiting for a directory there", "dir", m.entry.Dir, "line", m.entry.Line)
			}
		case errors.Is(err, fs.ErrNotExist):
			if !said {
				m.logger.Warn("directory does not exist yet; waiting for it", "dir", m.entry.Dir, "line", m.entry.Line)
			}
		default:
			if !said {
				m.logger.Error("directory cannot be read; waiting for it", "dir", m.entry.Dir, "line", m.entry.Line, "error", err)
			}
		}
		said = true
		if !m.waitAncestor(ctx) {
			return false
		}
	}
}

// waitAncestor waits for a change in the nearest existing ancestor of dir,
// or dirMissingRecheck; false when ctx ended.
func (m *dirMonitor) waitAncestor(ctx context.Context) bool {
	t := time.NewTimer(dirMissingRecheck)
	defer t.Stop()
	var events <-chan fsnotify.Event
	if w, err := fsnotify.NewWatcher(); err == nil {
		defer w.Close()
		for a := filepath.Dir(m.entry.Dir); ; a = filepath.Dir(a) {
			if w.Add(a) == nil || a == filepath.Dir(a) {
				break
			}
		}
		events = w.Events
	}
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
	case <-events:
	}
	return true
}

// scanOnce starts every database the directory holds now.
func (m *dirMonitor) scanOnce() {
	err := walkEntry(m.entry, m.entry.Dir, nil, m.consider)
	if err != nil {
		m.logger.Error("directory scan failed", "dir", m.entry.Dir, "line", m.entry.Line, "error", err)
	}
	m.warnIfEmpty()
}

// warnIfEmpty warns when the pattern matches no database.
func (m *dirMonitor) warnIfEmpty() {
	if len(m.dbs) == 0 && len(m.pending) == 0 {
		msg := "the pattern matches no database in the directory"
		if m.entry.Watch {
			msg += "; databases created later are picked up"
		}
		m.logger.Warn(msg, "dir", m.entry.Dir, "pattern", m.entry.Pattern, "line", m.entry.Line)
	}
}

// followPending looks at pending files again every pendingRecheck until
// none is left, or until ctx ends.
func (m *dirMonitor) followPending(ctx context.Context) {
	t := time.NewTicker(pendingRecheck)
	defer t.Stop()
	for len(m.pending) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			m.recheckPending()
		}
	}
}

// recheckPending considers every pending file again.
func (m *dirMonitor) recheckPending() {
	for p := range m.pending {
		m.consider(p)
	}
}

// watch watches dir (and, with recursive, its subdirectories), scans it and
// follows its events until ctx ends (false) or dir is removed (true).
func (m *dirMonitor) watch(ctx context.Context) bool {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		m.logger.Error("cannot watch the directory; scanning it once instead", "dir", m.entry.Dir, "line", m.entry.Line, "error", err)
		m.scanOnce()
		m.followPending(ctx)
		<-ctx.Done()
		return false
	}
	defer w.Close()
	clear(m.watched)
	m.scanTree(w, m.entry.Dir)
	if !m.watched[m.entry.Dir] {
		if _, err := os.Stat(m.entry.Dir); err != nil {
			return true // gone meanwhile: wait for it again
		}
		m.logger.Error("cannot watch the directory; scanning it once instead", "dir", m.entry.Dir, "line", m.entry.Line)
		m.scanOnce()
		m.followPending(ctx)
		<-ctx.Done()
		return false
	}
	m.warnIfEmpty()
	t := time.NewTicker(pendingRecheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case err, ok := <-w.Errors:
			if !ok {
				return false
			}
			// An overflow lost events: look at everything again.
			m.logger.Warn("directory watch reported an error; scanning the directory again", "dir", m.entry.Dir, "error", err)
			m.scanTree(w, m.entry.Dir)
			m.dropMissing()
		case ev, ok := <-w.Events:
			if !ok {
				return false
			}
			if m.handle(w, ev) {
				return true
			}
		case <-t.C:
			if len(m.pending) > 0 {
				m.recheckPending()
			}
		}
	}
}

// scanTree watches every directory from root down that the entry covers,
// each before it is read (invariant 2), and considers every file.
func (m *dirMonitor) scanTree(w *fsnotify.Watcher, root string) {
	err := walkEntry(m.entry, root, func(d string) error {
		if m.watched[d] {
			return nil
		}
		if err := w.Add(d); err != nil {
			if d == root && root == m.entry.Dir {
				return err
			}
			m.logger.Error("cannot watch a subdirectory; databases created in it later are not seen", "dir", d, "error", err)
			return nil
		}
		m.watched[d] = true
		return nil
	}, m.consider)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		m.logger.Error("directory scan failed", "dir", root, "line", m.entry.Line, "error", err)
	}
}

// handle acts on one event; it reports whether dir itself is gone.
func (m *dirMonitor) handle(w *fsnotify.Watcher, ev fsnotify.Event) bool {
	p := filepath.Clean(ev.Name)
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		if p == m.entry.Dir {
			if _, err := os.Stat(p); err != nil {
				m.logger.Warn("directory removed; its databases are stopped, and it is waited for", "dir", p, "line", m.entry.Line)
				m.dropUnder(p)
				return true
			}
		}
		if m.watched[p] {
			delete(m.watched, p)
			_ = w.Remove(p) // already gone with the directory, usually
			m.stopMissingUnder(p)
		}
		if _, ok := m.dbs[p]; ok && !isRegularFile(p) {
			m.stop(p)
		}
		delete(m.pending, p)
		delete(m.noted, p)
		return false
	}
	base := filepath.Base(p)
	if main, ok := sqliteSidecarOf(base); ok {
		if full := filepath.Join(filepath.Dir(p), main); m.pending[full] {
			m.consider(full)
		}
		return false
	}
	if _, known := m.dbs[p]; known {
		return false
	}
	fi, err := os.Lstat(p)
	if err != nil {
		return false
	}
	if fi.IsDir() {
		if ev.Has(fsnotify.Create) && m.entry.Recursive && !isMetaDirName(base) {
			m.scanTree(w, p)
		}
		return false
	}
	if m.entry.matchesName(base) {
		m.consider(p)
	}
	return false
}

// sqliteSidecarOf returns the database name of SQLite's -wal, -shm or
// -journal file name.
func sqliteSidecarOf(base string) (string, bool) {
	for _, suffix := range []string{"-wal", "-shm", "-journal"} {
		if main, ok := strings.CutSuffix(base, suffix); ok && main != "" {
			return main, true
		}
	}
	return "", false
}

// consider starts the database at p if it is one of the entry's and not
// yet replicated; it says once why a file that looks like one is not.
func (m *dirMonitor) consider(p string) {
	if _, ok := m.dbs[p]; ok {
		return
	}
	rel, err := dirEntryRelPath(m.entry, p)
	if err != nil {
		m.note(p, slog.LevelWarn, "refused: "+err.Error())
		return
	}
	if rel == "" {
		return
	}
	if fi, err := os.Lstat(p); err == nil && fi.Mode()&fs.ModeSymlink != 0 {
		m.note(p, slog.LevelWarn, "refused: a symbolic link (it can lead out of the directory, or to a database replicated under another name)")
		return
	}
	class, err := classify(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		delete(m.pending, p)
		delete(m.noted, p)
		return
	case err != nil:
		m.note(p, slog.LevelWarn, "cannot be read: "+err.Error())
		return
	case class == maybeDatabase:
		m.pending[p] = true
		return
	case class == notDatabase:
		delete(m.pending, p)
		m.note(p, slog.LevelDebug, "not a SQLite database; skipped")
		return
	}
	delete(m.pending, p)
	if o := m.claimedElsewhere(p); o != nil {
		m.note(p, slog.LevelError, fmt.Sprintf("refused: it is one of the databases of line %d (%s) and of line %d (%s); keep it in one entry",
			m.entry.Line, m.entry.label(), o.Line, o.label()))
		return
	}
	dbc, err := m.entry.dbConfigFor(p)
	if err != nil {
		m.note(p, slog.LevelError, "refused: "+err.Error())
		return
	}
	db, err := m.open(dbc)
	if err != nil {
		m.note(p, slog.LevelError, "cannot be replicated: "+err.Error())
		return
	}
	m.dbs[p] = db
	delete(m.noted, p)
}

// claimedElsewhere returns another directory entry that covers p, or nil.
func (m *dirMonitor) claimedElsewhere(p string) *DBConfig {
	for _, o := range m.others {
		if o.covers(p) {
			return o
		}
	}
	return nil
}

// note logs what is said of p, unless it was the last thing said of it.
func (m *dirMonitor) note(p string, level slog.Level, msg string) {
	if m.noted[p] == msg {
		return
	}
	m.noted[p] = msg
	m.logger.Log(context.Background(), level, "database of a directory entry "+msg, "db", p, "line", m.entry.Line)
}

// isRegularFile reports whether p is a regular file now.
func isRegularFile(p string) bool {
	fi, err := os.Lstat(p)
	return err == nil && fi.Mode().IsRegular()
}

// dropMissing stops every database whose file is gone and forgets pending
// and noted files that are gone: after the watch lost events.
func (m *dirMonitor) dropMissing() {
	for p := range m.dbs {
		if !isRegularFile(p) {
			m.stop(p)
		}
	}
	for p := range m.pending {
		if _, err := os.Lstat(p); err != nil {
			delete(m.pending, p)
		}
	}
	for p := range m.noted {
		if _, err := os.Lstat(p); err != nil {
			delete(m.noted, p)
		}
	}
}

// stopMissingUnder stops every database below dir whose file is gone (a
// subdirectory removed or renamed away).
func (m *dirMonitor) stopMissingUnder(dir string) {
	prefix := dir + string(filepath.Separator)
	for p := range m.dbs {
		if strings.HasPrefix(p, prefix) && !isRegularFile(p) {
			m.stop(p)
		}
	}
	for p := range m.pending {
		if strings.HasPrefix(p, prefix) {
			delete(m.pending, p)
		}
	}
}

// dropUnder stops every database at or below dir.
func (m *dirMonitor) dropUnder(dir string) {
	prefix := dir + string(filepath.Separator)
	for p := range m.dbs {
		if strings.HasPrefix(p, prefix) {
			m.stop(p)
		}
	}
	clear(m.pending)
	clear(m.noted)
}

// stop takes the database at p out of the set, then closes it after a
// last sync in the background (invariant 3).
func (m *dirMonitor) stop(p string) {
	db := m.dbs[p]
	delete(m.dbs, p)
	delete(m.noted, p)
	m.set.remove(p)
	m.logger.Info("database removed; stopping it after a last sync", "db", p)
	m.closing.Add(1)
	go func() {
		defer m.closing.Done()
		ctx, cancel := context.WithTimeout(context.Background(), removeTimeout)
		defer cancel()
		if err := db.Close(ctx); err != nil {
			m.logger.Warn("last sync of a removed database incomplete", "db", p, "error", err)
			return
		}
		m.logger.Info("removed database stopped", "db", p)
	}()
}
