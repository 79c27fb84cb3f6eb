package litestream

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/litestream-go/litestream/internal/sqlwriter"
)

// openEngineWithWriter opens the test writer on a new database, with its
// autocheckpoint off (the test runs any checkpoint), and a DB on it with no
// replica; both are closed when the test ends. commit writes n one-row
// transactions.
func openEngineWithWriter(t *testing.T) (db *DB, w *sqlwriter.Writer, commit func(n int)) {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "app.db")
	w, err := sqlwriter.Open(ctx, path, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	db = NewDB(path)
	checkInvariantsOnClose(t, db)
	db.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	t.Cleanup(func() { db.Close(ctx) })
	commit = func(n int) {
		t.Helper()
		for i := 0; i < n; i++ {
			if _, err := w.Commit(ctx, 1, 100); err != nil {
				t.Fatal(err)
			}
		}
	}
	return db, w, commit
}
