package main

import (
	"slices"
	"strings"
	"sync"

	"github.com/litestream-go/litestream"
)

// dbSet is the set of databases the process replicates, keyed by path. A
// directory entry adds and removes databases while the process runs, so
// the HTTP server, the metrics and the heartbeat read it at each use
// rather than keeping a slice from startup. It is safe for concurrent use;
// a nil *dbSet is empty.
type dbSet struct {
	mu  sync.Mutex
	dbs map[string]*litestream.DB
}

// newDBSet returns a set holding dbs.
func newDBSet(dbs ...*litestream.DB) *dbSet {
	s := &dbSet{dbs: make(map[string]*litestream.DB, len(dbs))}
	for _, db := range dbs {
		s.dbs[db.Path()] = db
	}
	return s
}

// add puts db in the set; it reports false, and changes nothing, when a
// database with its path is there already.
func (s *dbSet) add(db *litestream.DB) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.dbs[db.Path()]; ok {
		return false
	}
	s.dbs[db.Path()] = db
	return true
}

// remove takes the database at path out of the set and returns it (nil
// when it was not there).
func (s *dbSet) remove(path string) *litestream.DB {
	s.mu.Lock()
	defer s.mu.Unlock()
	db := s.dbs[path]
	delete(s.dbs, path)
	return db
}

// get returns the database at path, or nil.
func (s *dbSet) get(path string) *litestream.DB {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.dbs[path]
}

// list returns the databases now in the set, sorted by path.
func (s *dbSet) list() []*litestream.DB {
	if s == nil {
		return nil
	}
	s.mu.Lock()
	out := make([]*litestream.DB, 0, len(s.dbs))
	for _, db := range s.dbs {
		out = append(out, db)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b *litestream.DB) int { return strings.Compare(a.Path(), b.Path()) })
	return out
}

// len returns how many databases are in the set.
func (s *dbSet) len() int {
	if s == nil {
		return 0
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.dbs)
}
