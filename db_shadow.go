package litestream

import (
	"context"
	"fmt"

	"github.com/litestream-go/litestream/internal/walformat"
)

// copyNow copies new committed WAL frames into the shadow WAL now.
func (db *DB) copyNow(ctx context.Context) error {
	db.mu.Lock()
	defer db.mu.Unlock()
	return db.syncLocked(ctx)
}

// shadowPath returns the path of a shadow WAL file.
func (db *DB) shadowPath(generation string, index int) string {
	return db.shadowDir(generation) + "/" + shadowWALFileName(index)
}

// shadowFileSize returns the committed size of a shadow file of the current
// generation.
func (db *DB) shadowFileSize(index int) (int64, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.shadow == nil {
		return 0, errDBNotReady
	}
	if index > db.shadow.Index() {
		return 0, fmt.Errorf("shadow WAL index %s does not exist yet", FormatIndex(index))
	}
	return db.shadow.FileSize(index)
}

// shadowHas reports whether pos lies inside the current generation's shadow
// WAL, so that a replica at pos can continue from it.
func (db *DB) shadowHas(pos Pos) bool {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.shadow == nil || pos.Generation != db.generation || pos.Index > db.shadow.Index() {
		return false
	}
	size, err := db.shadow.FileSize(pos.Index)
	return err == nil && pos.Offset <= size && pos.Offset >= walformat.HeaderSize
}

// removeShadowBefore deletes shadow files that every replica has shipped,
// keeping one spare.
func (db *DB) removeShadowBefore() {
	min := -1
	for _, r := range db.Replicas {
		p := r.Pos()
		db.mu.Lock()
		gen := db.generation
		db.mu.Unlock()
		if p.Generation != gen {
			return // some replica still needs to find its place
		}
		if min < 0 || p.Index < min {
			min = p.Index
		}
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.shadow == nil || min < 2 {
		return
	}
	if err := db.shadow.RemoveBefore(min - 1); err != nil {
		db.Logger.Warn("cannot remove old shadow WAL files", "db", db.path, "error", err)
	}
}

// requestNewGeneration makes the next copy start a new generation, if gen
// is still the current one.
func (db *DB) requestNewGeneration(gen, reason string) {
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.generation == gen && db.newGenReason == "" {
		db.newGenReason = reason
	}
}
