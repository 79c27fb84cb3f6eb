package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/litestream-go/litestream"
)

// restoreMissing restores, before replication starts, each database that
// asks for it (restore-if-db-not-exists, or the flag for all) and whose file
// does not exist, from its own replicas. It runs before any database is
// opened and before -exec's child starts, so the application never sees a
// database that is about to be replaced. A database whose replicas hold no
// backup starts empty, and the log says so. It is idempotent: a database
// that exists, restored by an earlier start or not, is left alone.
//
// Replication then starts a new generation: the restored file has no WAL
// that continues any shadow WAL, so the engine cannot prove continuity.
func restoreMissing(ctx context.Context, dbs []*litestream.DB, cfgs []*DBConfig, all bool, logger *slog.Logger) error {
	for i, db := range dbs {
		if !all && !cfgs[i].RestoreIfDBNotExists {
			continue
		}
		path := db.Path()
		if _, err := os.Lstat(path); err == nil {
			logger.Info("database exists; not restored", "db", path)
			continue
		} else if !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("database %s: %w", path, err)
		}
		if len(db.Replicas) == 0 {
			logger.Warn("database is missing and has no replicas to restore it from; it starts empty", "db", path)
			continue
		}
		opt := litestream.RestoreOptions{Index: litestream.NoIndex, Logger: logger}
		plan, err := litestream.PlanRestore(ctx, db.Replicas, opt)
		if errors.Is(err, litestream.ErrNoBackup) {
			logger.Info("database is missing and no replica holds a backup of it; it starts empty", "db", path)
			continue
		} else if err != nil {
			return fmt.Errorf("restore %s before replicating (restore-if-db-not-exists): %w", path, err)
		}
		logger.Info("database is missing; restoring it before replicating", "db", path, "from", plan.String())
		start := time.Now()
		if err := litestream.Restore(ctx, plan, path, opt); err != nil {
			return fmt.Errorf("restore %s before replicating (restore-if-db-not-exists): %w", path, err)
		}
		logger.Info("database restored; replicating it in a new generation", "db", path, "took", time.Since(start).Round(time.Millisecond))
	}
	return nil
}
