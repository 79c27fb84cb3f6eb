package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/litestream-go/litestream"
)

// TestHealthShowsFailingSyncs: a database whose syncs fail makes /healthz
// unhealthy at once, with the reason, even while no replica has missed its
// window yet; a sync that fails must never go unseen.
func TestHealthShowsFailingSyncs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "app.db")
	if err := os.WriteFile(path, []byte(strings.Repeat("not a database ", 500)), 0o644); err != nil {
		t.Fatal(err)
	}
	db := litestream.NewDB(path)
	if err := db.Sync(context.Background()); err == nil {
		t.Fatal("sync of a file that is not a database succeeded")
	}
	now := time.Now()
	problems := healthProblems([]*litestream.DB{db}, time.Minute, now, now)
	if len(problems) != 1 || !strings.Contains(problems[0], "1 syncs in a row failed") || !strings.Contains(problems[0], "not a SQLite database") {
		t.Fatalf("health problems = %q", problems)
	}
}
