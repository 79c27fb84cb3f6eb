package main

import (
	"fmt"
	"log/slog"

	"github.com/litestream-go/litestream"
)

// startDirEntries builds a monitor for each directory entry of cfg, and the
// databases each holds now (not opened: replicate checks their stores and
// opens them with the path entries' databases). Each monitor adds the
// databases created later to set, and takes out those removed.
func startDirEntries(cfg *Config, set *dbSet, ops *litestream.OpCounter, notifier *litestream.WALNotifier, logger *slog.Logger) ([]*dirMonitor, []*litestream.DB, error) {
	open := func(dbc *DBConfig) (*litestream.DB, error) {
		db, err := newDBFromConfig(dbc, logger, ops)
		if err != nil {
			return nil, err
		}
		if !set.add(db) {
			return nil, fmt.Errorf("database %s is already replicated", dbc.Path)
		}
		if err := openAndLog(db, notifier, logger); err != nil {
			set.remove(db.Path())
			return nil, err
		}
		return db, nil
	}
	var monitors []*dirMonitor
	var found []*litestream.DB
	for _, entry := range cfg.Dirs {
		m := newDirMonitor(entry, cfg.Dirs, set, open, logger)
		paths, err := dirEntryMatches(entry)
		if err != nil {
			return nil, nil, fmt.Errorf("%sdir %s: %w", atLine(entry.Line), entry.Dir, err)
		}
		for _, p := range paths {
			if m.claimedElsewhere(p) != nil {
				continue // run refuses it, with the error line
			}
			dbc, err := entry.dbConfigFor(p)
			if err != nil {
				continue // run refuses it, with the error line
			}
			db, err := newDBFromConfig(dbc, logger, ops)
			if err != nil {
				return nil, nil, err
			}
			m.adopt(db)
			found = append(found, db)
		}
		monitors = append(monitors, m)
	}
	return monitors, found, nil
}

// openAndLog opens db, told of its files' changes by notifier (nil: its
// monitor looks every 25 ms), and logs where each of its replicas writes.
func openAndLog(db *litestream.DB, notifier *litestream.WALNotifier, logger *slog.Logger) error {
	db.Notifier = notifier
	if err := db.Open(); err != nil {
		return fmt.Errorf("open %s: %w", db.Path(), err)
	}
	for _, r := range db.Replicas {
		logger.Info("replicating", append([]any{"db", db.Path()}, replicaLogAttrs(r)...)...)
	}
	return nil
}
