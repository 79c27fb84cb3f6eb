package litestream

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestQuickCheckFindsDamage: the check that every restore ends with (through
// a memory map) rejects a database with a damaged b-tree page, and accepts
// the undamaged one.
func TestQuickCheckFindsDamage(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT)"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 500; i++ {
		if _, err := db.ExecContext(ctx, "INSERT INTO t (v) VALUES (?)", strings.Repeat("v", 200)); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	if err := quickCheck(ctx, path); err != nil {
		t.Fatalf("undamaged database: %v", err)
	}
	// Page 3 is a leaf of t (page 2 is its root, an interior page by now):
	// scramble its cell pointers.
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, 2*4096+8); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := quickCheck(ctx, path); err == nil {
		t.Fatal("quick_check accepted a damaged page")
	}
}
