package litestream

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// ValidationResult is the outcome of one replica validation.
type ValidationResult struct {
	Pos          Pos
	OK           bool
	LiveChecksum string // of the database at Pos
	ReplicaSum   string // of the replica restored to Pos
}

// Validate restores the replica to a position and compares it, page by page
// through a checksum, with the database at exactly that position. Both
// sides are read through SQLite's sqlite_dbpage, so they are page images at
// the same commit, and a mismatch means the replica differs from the
// database there, never that the two were read at different moments.
func (r *Replica) Validate(ctx context.Context) (ValidationResult, error) {
	res, err := r.validate(ctx)
	r.statusMu.Lock()
	if err == nil && res.OK {
		r.status.ValidationsOK++
	} else {
		r.status.ValidationsFailed++
	}
	r.statusMu.Unlock()
	switch {
	case err != nil:
		r.logger().Error("validation failed to run", "error", err)
	case !res.OK:
		r.logger().Error("validation mismatch: the replica differs from the database", "position", res.Pos.String(),
			"database_checksum", res.LiveChecksum, "replica_checksum", res.ReplicaSum)
	default:
		r.logger().Info("validation ok", "position", res.Pos.String(), "checksum", res.LiveChecksum)
	}
	return res, err
}

func (r *Replica) validate(ctx context.Context) (ValidationResult, error) {
	db := r.db
	pos, live, err := db.pinnedChecksum(ctx)
	if err != nil {
		return ValidationResult{}, err
	}
	res := ValidationResult{Pos: pos, LiveChecksum: live}
	// Ship at least up to pos.
	for {
		if err := r.Sync(ctx); err != nil {
			return res, fmt.Errorf("validation: sync: %w", err)
		}
		p := r.Pos()
		if p.Generation != pos.Generation {
			return res, fmt.Errorf("validation: a new generation started; skipped")
		}
		if !p.Less(pos) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	tmpDir, err := os.MkdirTemp(db.metaPath, validationTempPattern)
	if err != nil {
		return res, fmt.Errorf("validation: %w", err)
	}
	defer os.RemoveAll(tmpDir)
	opt := RestoreOptions{Generation: pos.Generation, Index: pos.Index, until: &pos, Logger: db.Logger}
	plan, err := PlanRestore(ctx, []*Replica{r}, opt)
	if err != nil {
		return res, fmt.Errorf("validation: %w", err)
	}
	out := filepath.Join(tmpDir, "db")
	if err := Restore(ctx, plan, out, opt); err != nil {
		return res, fmt.Errorf("validation: %w", err)
	}
	conn, err := sql.Open("sqlite", sqliteDSN(out))
	if err != nil {
		return res, err
	}
	defer conn.Close()
	c, err := conn.Conn(ctx)
	if err != nil {
		return res, err
	}
	defer c.Close()
	if res.ReplicaSum, err = pageChecksum(ctx, c); err != nil {
		return res, fmt.Errorf("validation: checksum of the restored replica: %w", err)
	}
	res.OK = res.ReplicaSum == res.LiveChecksum
	return res, nil
}

// pinnedChecksum copies the WAL to its end under the write lock, opens a
// read transaction there, releases the lock, and checksums the database as
// of that position.
func (db *DB) pinnedChecksum(ctx context.Context) (Pos, string, error) {
	db.mu.Lock()
	if err := db.syncLocked(ctx); err != nil {
		db.mu.Unlock()
		return Pos{}, "", err
	}
	conn, err := db.conns.db.Conn(ctx)
	if err != nil {
		db.mu.Unlock()
		return Pos{}, "", err
	}
	defer conn.Close()
	// Never hand a connection with an open transaction back to the pool:
	// it would pin the WAL. (A rollback without a transaction just fails.)
	defer conn.ExecContext(context.Background(), "ROLLBACK") //nolint:errcheck
	pos, err := func() (Pos, error) {
		if err := db.conns.lockWrite(ctx); err != nil {
			return Pos{}, err
		}
		defer db.unlockWrite(ctx) //nolint:errcheck
		if err := db.copyWAL(ctx); err != nil {
			return Pos{}, err
		}
		if _, err := conn.ExecContext(ctx, "BEGIN"); err != nil {
			return Pos{}, err
		}
		var n int
		if err := conn.QueryRowContext(ctx, "SELECT COUNT(1) FROM _litestream_seq").Scan(&n); err != nil {
			return Pos{}, err
		}
		return Pos{Generation: db.generation, Index: db.shadow.Index(), Offset: db.shadow.Size()}, nil
	}()
	db.mu.Unlock()
	if err != nil {
		return Pos{}, "", fmt.Errorf("validation: pin the database: %w", err)
	}
	sum, err := pageChecksum(ctx, conn)
	if err != nil {
		return Pos{}, "", fmt.Errorf("validation: checksum of the database: %w", err)
	}
	return pos, sum, nil
}

// pageChecksum hashes every page of the database as the connection sees it.
func pageChecksum(ctx context.Context, conn *sql.Conn) (string, error) {
	rows, err := conn.QueryContext(ctx, "SELECT pgno, data FROM sqlite_dbpage ORDER BY pgno")
	if err != nil {
		return "", err
	}
	defer rows.Close()
	h := sha256.New()
	var n int64
	for rows.Next() {
		var pgno int64
		var data []byte
		if err := rows.Scan(&pgno, &data); err != nil {
			return "", err
		}
		h.Write(data)
		n++
	}
	if err := rows.Err(); err != nil {
		return "", err
	}
	return fmt.Sprintf("%d pages, sha256 %s", n, hex.EncodeToString(h.Sum(nil))[:16]), nil
}

// validationTempPattern names the directory a validation restores into:
// validationTempPrefix, random characters, validationTempSuffix.
const (
	validationTempPrefix  = "validate-"
	validationTempSuffix  = ".tmp"
	validationTempPattern = validationTempPrefix + "*" + validationTempSuffix
)

// removeValidationLeftovers removes the directories of validations that a
// kill cut short (each holds a restored copy of the database), if they
// were last changed before start (Open calls it before its replicas run,
// so none is this process's own).
func (db *DB) removeValidationLeftovers(start time.Time) {
	// Listed and matched literally, not globbed: the meta path may hold
	// [ or *, and a glob could then reach another database's directory.
	ents, _ := os.ReadDir(db.metaPath)
	n := 0
	for _, e := range ents {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), validationTempPrefix) || !strings.HasSuffix(e.Name(), validationTempSuffix) {
			continue
		}
		d := filepath.Join(db.metaPath, e.Name())
		fi, err := os.Stat(d)
		if err != nil || !fi.ModTime().Before(start) {
			continue
		}
		if err := os.RemoveAll(d); err != nil {
			db.Logger.Warn("cannot remove the directory of an interrupted validation", "db", db.path, "dir", d, "error", err)
			continue
		}
		n++
	}
	if n > 0 {
		db.Logger.Info("removed the directories of interrupted validations", "db", db.path, "dirs", n)
	}
}
